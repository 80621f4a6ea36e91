/**
 * Small helpers over @kubernetes/client-node 2.x for the operator: loading the config, reading
 * `ApiException`s, keys, owner references, the BenchmarkRun status merge-patch, and create-or-get
 * for children with deterministic names.
 */
import {
  ApiException, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions,
  type KubernetesObject, type V1OwnerReference,
} from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, API_VERSION_FULL, type BenchmarkRunStatus } from '../api/schema.ts';

export const BENCHMARKRUN_KIND = 'BenchmarkRun';
export const BENCHMARKRUN_PLURAL = 'benchmarkruns';
export const RUN_LABEL = 'swarmbench.io/run';
export const ATTEMPT_LABEL = 'swarmbench.io/attempt';
export const CATEGORY_LABEL = 'swarmbench.io/category';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'swarmbench';

/**
 * The client configuration: `KUBECONFIG` (every pod of the test cluster has one, pointing at its
 * service-account token), else `~/.kube/config`, else the in-cluster service account files of a
 * real pod. With `SWARMBENCH_IN_CLUSTER_PATH_PREFIX` set and no KUBECONFIG, the in-cluster files
 * are read under that prefix.
 */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  const prefix = process.env.SWARMBENCH_IN_CLUSTER_PATH_PREFIX;
  if (!process.env.KUBECONFIG && prefix && process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster(prefix);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (KUBECONFIG, ~/.kube/config or in-cluster service account)');
  return kc;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The HTTP status of an API error (ApiException, or a watch error with statusCode), else undefined. */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.statusCode === 'number') return e.statusCode;
    if (typeof e.code === 'number' && e.code >= 100 && e.code < 600) return e.code;
  }
  return undefined;
}

/** The `metav1.Status` body of an API error, parsed when it came as a string. */
export function statusBody(err: unknown): { reason?: string; message?: string; code?: number } | undefined {
  if (!(err instanceof ApiException)) return undefined;
  let b: unknown = err.body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return { message: b as string };
    }
  }
  return b && typeof b === 'object' ? (b as { reason?: string; message?: string; code?: number }) : undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
/** 409: AlreadyExists on create, Conflict (stale resourceVersion) on update. */
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
export const isAlreadyExists = (err: unknown): boolean => statusCode(err) === 409 && statusBody(err)?.reason !== 'Conflict';
export const isGone = (err: unknown): boolean => statusCode(err) === 410;
export const isForbidden = (err: unknown): boolean => statusCode(err) === 403;

/** A one-line description of an API error: code, reason and the server's message. */
export function describeError(err: unknown): string {
  const code = statusCode(err);
  const body = statusBody(err);
  if (code !== undefined) return `HTTP ${code}${body?.reason ? ` ${body.reason}` : ''}: ${body?.message ?? (err as Error).message}`;
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// Keys and owners

/** `namespace/name` (or `name` for cluster-scoped objects). */
export function keyOf(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** The owner reference a child of `owner` carries: controller, blocks the owner's deletion. */
export function controllerRef(owner: KubernetesObject & { metadata?: { uid?: string } }): V1OwnerReference {
  const uid = owner.metadata?.uid;
  const name = owner.metadata?.name;
  if (!uid || !name) throw new Error('controllerRef: the owner needs metadata.name and metadata.uid');
  return {
    apiVersion: owner.apiVersion ?? API_VERSION_FULL,
    kind: owner.kind ?? BENCHMARKRUN_KIND,
    name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Whether `obj` is controlled by the owner with this uid. */
export function isControlledBy(obj: KubernetesObject, ownerUid: string): boolean {
  return !!obj.metadata?.ownerReferences?.some((r) => r.controller && r.uid === ownerUid);
}

/**
 * The key of the BenchmarkRun a child belongs to: its controller ownerReference to a
 * `swarmbench.io/*` BenchmarkRun, else its `swarmbench.io/run` label; both in the child's
 * namespace (owners are never in another namespace). Undefined for anything else.
 */
export function ownerRunKey(obj: KubernetesObject, kind = BENCHMARKRUN_KIND, group = API_GROUP): string | undefined {
  const ns = obj.metadata?.namespace;
  if (!ns) return undefined;
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller && r.kind === kind && r.apiVersion.startsWith(`${group}/`));
  if (ref) return `${ns}/${ref.name}`;
  const run = obj.metadata?.labels?.[RUN_LABEL];
  return run ? `${ns}/${run}` : undefined;
}

/** The labels on everything a run creates (DESIGN.md, "Names"). */
export function runLabels(run: string, attempt?: number, category?: string): Record<string, string> {
  const l: Record<string, string> = { [MANAGED_BY_LABEL]: MANAGED_BY, [RUN_LABEL]: run };
  if (attempt !== undefined) l[ATTEMPT_LABEL] = String(attempt);
  if (category) l[CATEGORY_LABEL] = category;
  return l;
}

// ---------------------------------------------------------------------------------------------
// BenchmarkRun status

/**
 * Merge-patches `status` of a BenchmarkRun through the `/status` subresource
 * (`PATCH .../benchmarkruns/<name>/status`, `application/merge-patch+json`): only the status
 * changes, whatever else the body held, and `metadata.generation` does not move.
 * Merge-patch semantics: objects merge, arrays (conditions, tests) are replaced whole, `null`
 * deletes a field. Returns the updated object.
 */
export async function patchRunStatus(
  api: CustomObjectsApi, namespace: string, name: string, status: Partial<BenchmarkRunStatus> | Record<string, unknown>,
): Promise<KubernetesObject & { status?: BenchmarkRunStatus }> {
  return patchRunStatusRaw(api, namespace, name, { status });
}

/** The same request with any body (tests use it to show that a spec change sent to /status is ignored). */
export async function patchRunStatusRaw(
  api: CustomObjectsApi, namespace: string, name: string, body: Record<string, unknown>,
): Promise<KubernetesObject & { status?: BenchmarkRunStatus }> {
  return (await api.patchNamespacedCustomObjectStatus(
    { group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, name, body },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )) as KubernetesObject & { status?: BenchmarkRunStatus };
}

// ---------------------------------------------------------------------------------------------
// Children

export interface CreateOrGetResult<T> {
  object: T;
  /** True when this call created it; false when it already existed (a 409 on create). */
  created: boolean;
}

/**
 * Creates a child with a deterministic name; when it exists already (409), reads it instead, so a
 * reconcile that runs twice, or after a crash between create and status, converges. The caller
 * compares what it got (`isControlledBy`, labels, spec) and decides: use it, replace it, or report
 * a conflict with something it does not own. A create racing a delete (409, then 404 on read) is
 * retried once.
 */
export async function createOrGet<T>(create: () => Promise<T>, read: () => Promise<T>): Promise<CreateOrGetResult<T>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return { object: await create(), created: true };
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    try {
      return { object: await read(), created: false };
    } catch (e) {
      if (!isNotFound(e) || attempt >= 1) throw e;
    }
  }
}
