/**
 * Small helpers over @kubernetes/client-node 2.x for everything that talks to the API server (the
 * operator, the Kubernetes platform, the runner): loading the config, reading `ApiException`s,
 * `namespace/name` keys, the BenchmarkRun status merge-patch, and create-or-get for children with
 * deterministic names. Names, labels and owner references are `names.ts`.
 */
import {
  ApiException, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { errorMessage } from '../errors.ts';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL } from './names.ts';

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
  return errorMessage(err);
}

// ---------------------------------------------------------------------------------------------
// Keys

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

// ---------------------------------------------------------------------------------------------
// BenchmarkRun status

/**
 * Merge-patches `status` of a BenchmarkRun through the `/status` subresource
 * (`PATCH .../benchmarkruns/<name>/status`, `application/merge-patch+json`): only the status
 * changes, whatever else the body held, and `metadata.generation` does not move.
 * Merge-patch semantics: objects merge, arrays (conditions, tests) are replaced whole, `null`
 * deletes a field. Returns the updated object.
 */
export async function patchRunStatus<S = Record<string, unknown>>(
  api: CustomObjectsApi, namespace: string, name: string, status: Partial<S> | Record<string, unknown>,
): Promise<KubernetesObject & { status?: S }> {
  return patchRunStatusRaw(api, namespace, name, { status });
}

/** The same request with any body (tests use it to show that a spec change sent to /status is ignored). */
export async function patchRunStatusRaw<S = Record<string, unknown>>(
  api: CustomObjectsApi, namespace: string, name: string, body: Record<string, unknown>,
): Promise<KubernetesObject & { status?: S }> {
  return (await api.patchNamespacedCustomObjectStatus(
    { group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, name, body },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )) as KubernetesObject & { status?: S };
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
 * compares what it got (`names.ts` `isControlledBy`, labels, spec) and decides: use it, replace it, or report
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
