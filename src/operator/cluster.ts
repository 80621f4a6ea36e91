/**
 * Everything the BenchmarkRun reconcile asks of the API server, behind one small interface,
 * `RunCluster`, so that a fake (test/support/fake-cluster.ts) can stand in for it in unit tests;
 * `KubeRunCluster` is the real one, over @kubernetes/client-node and the operator's informer caches.
 *
 * The contract is the API server's: `create` throws a 409 (AlreadyExists) when the name is taken,
 * `replace` a 409 (Conflict) when `metadata.resourceVersion` is stale; `read` and `getRun` answer
 * undefined for a 404 and throw anything else; deletes of what is already gone succeed.
 *
 * Reads and the caches. The operator's informers cache the Jobs labelled
 * `app.kubernetes.io/managed-by=swarmbench` (everything a run makes carries it) and, of the
 * ConfigMaps, only those of the components an attempt makes (`CONFIGMAP_CACHED_COMPONENTS`:
 * step results, params, agent seeds; `OPERATOR_CONFIGMAP_SELECTOR`), never the exports and
 * baselines, whose pretty-printed results.json would make the cache grow with history. Of those,
 * the step results and params keep their data (the reconcile reads it on every pass), within a
 * byte budget (kube/informer.ts `RetainPolicy`); the rest are held as metadata only. A `read` of
 * a Job or ConfigMap answers from the cache of its namespace when that cache has synced and holds
 * the object whole; on a miss, or when the cache holds it as metadata only (`isSlimmed`), it asks
 * the API server, so a cache that lags behind a create is never taken for "absent" and data is
 * never taken for empty. `{ live: true }` skips the cache: the callers that need it say why.
 * `list` answers from a synced cache (objects there may carry metadata only: list callers use
 * names, labels, owners and uids) when the cache holds every object the selector can match (for
 * ConfigMaps: the selector restricts the component to cached ones), else lists live. Other kinds
 * (the run, ServiceAccounts, Roles, RoleBindings, NetworkPolicies, Nodes) have no cache here and
 * are always read live. Secrets are never read (`ReadKind`), only a consenting Secret's metadata
 * (`readSecretMetadata`). Cached objects are shared with the informer: the reconcile never
 * mutates what it reads.
 *
 * Requests (kube/client.ts `makeApiClient`): each has a time limit (30 s; a list or a
 * delete-collection 60 s), and all carry the cluster's `signal`, the operator's leadership term:
 * when it fires, requests in flight are aborted and no new one is sent (`RequestRefusedError`),
 * so a reconcile that resumes after the Lease was lost writes nothing.
 *
 * Status patches are guarded: `patchRunStatus` sends the resourceVersion this cluster last saw of
 * the run (its `getRun` at the start of the reconcile, then its own patches' answers), so a run
 * changed in between (a spec edit, another writer) is refused with a 409 and the reconcile is
 * retried from a fresh read (the work queue's backoff).
 *
 * Deletes of single objects carry the uid the caller checked (`preconditions.uid`): the API
 * server refuses (409) to delete an object of that name that is not the one checked, so an
 * object replaced in between is never deleted (docs/operator.md "Ownership").
 */
import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  NetworkingV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type Configuration,
  type CoreV1Event,
  type KubeConfig,
  type V1ConfigMap,
  type V1Deployment,
  type V1Job,
  type V1NetworkPolicy,
  type V1Node,
  type V1ObjectMeta,
  type V1Pod,
  type V1Role,
  type V1RoleBinding,
  type V1Secret,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import type { BenchmarkRunStatus } from '../api/schema.ts';
import { createOrGet, isNotFound, makeApiClient, patchRunStatus, type ApiClientOptions, type CreateOrGetResult } from '../kube/client.ts';
import { isSlimmed } from '../kube/informer.ts';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL, COMPONENT, COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL } from '../kube/names.ts';

/** A BenchmarkRun as the API server returns it (the spec is validated by the reconcile). */
export interface RunObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    creationTimestamp?: string | Date;
  };
  spec?: unknown;
  status?: BenchmarkRunStatus;
}

/** The kinds the reconcile creates, and (all but Secret: `ReadKind`) reads by name. */
export interface KindMap {
  ConfigMap: V1ConfigMap;
  Job: V1Job;
  ServiceAccount: V1ServiceAccount;
  Role: V1Role;
  RoleBinding: V1RoleBinding;
  Secret: V1Secret;
  NetworkPolicy: V1NetworkPolicy;
}
export type Kind = keyof KindMap;
/**
 * What `read` reads by name: never a Secret. The agent-token Secrets are created with
 * generateName (nothing to read back), and the operator's RBAC has `get` on Secrets only for the
 * Prometheus token Secrets the administrator names: those alone are read, by `readSecret` (the
 * token, finish.ts) and `readSecretMetadata` (admission's consent check, policy.ts).
 */
export type ReadKind = Exclude<Kind, 'Secret'>;
/**
 * What it creates: by a deterministic name (a 409 means it exists: `ensure` reads it), except the
 * agent-token Secrets (generateName: never a 409).
 */
export type CreateKind = Kind;
/** What it deletes one by one, after checking that the run controls it (uid precondition). */
export type DeleteKind = 'ConfigMap' | 'Job' | 'RoleBinding';
/** What it replaces: the export ConfigMap, and the runner Role of an older attempt. */
export type ReplaceKind = 'ConfigMap' | 'Role';
/** What it lists and deletes by label selector (an attempt's objects). */
export type ListKind = 'ConfigMap' | 'Job';
export type CollectionKind = 'ConfigMap' | 'Job' | 'Deployment';

export interface ReadOptions {
  /** Skip the informer cache: a GET to the API server. */
  live?: boolean;
}

export interface RunCluster {
  /** The run, or undefined when it is gone. Always live (see reconcile.ts: our own status). */
  getRun(namespace: string, name: string): Promise<RunObject | undefined>;
  /**
   * JSON merge patch of `status` through the `/status` subresource; returns the updated run. The
   * real cluster guards it with the run's resourceVersion (a 409 when the run changed since read).
   */
  patchRunStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<RunObject>;
  createEvent(event: CoreV1Event): Promise<void>;
  read<K extends ReadKind>(kind: K, namespace: string, name: string, opts?: ReadOptions): Promise<KindMap[K] | undefined>;
  create<K extends CreateKind>(kind: K, body: KindMap[K]): Promise<KindMap[K]>;
  /** Replace with the read `metadata.resourceVersion` (409 when someone wrote in between). */
  replace<K extends ReplaceKind>(kind: K, body: KindMap[K]): Promise<KindMap[K]>;
  /**
   * Deletes one object, only if its uid is still `uid` (the object the caller checked; a 409
   * otherwise). Gone already: success. Jobs with their pods (background propagation). A RoleBinding
   * whose roleRef must change is deleted this way, then created (roleRef is immutable).
   */
  delete(kind: DeleteKind, namespace: string, name: string, uid: string): Promise<void>;
  list<K extends ListKind>(kind: K, namespace: string, selector: string): Promise<KindMap[K][]>;
  /**
   * Deletes every object of `kind` matching `selector` (Jobs with their pods: background
   * propagation). Used only for agent pools, with a selector that includes the run's uid label.
   */
  deleteCollection(kind: CollectionKind, namespace: string, selector: string): Promise<void>;
  /**
   * Suspends a step Job (`spec.suspend: true`, uid precondition through the patch's metadata):
   * the Job controller stops its running pod at once (SIGTERM, its grace period), where a deleted
   * Job's pods wait for the garbage collector (a minute and more on a busy cluster).
   */
  suspendJob(namespace: string, name: string, uid: string): Promise<void>;
  listNodes(selector: string): Promise<V1Node[]>;
  /**
   * One page (at most `limit`) of the pods matching `selector` in the namespace, live: a step's
   * pods, read for its failure forensics (forensics.ts). The operator's RBAC has `list` on pods.
   */
  listPods(namespace: string, selector: string, limit: number): Promise<V1Pod[]>;
  /** Deployments by label selector, at most `limit` (a step's pools: their ReplicaFailure condition). Live. */
  listDeployments(namespace: string, selector: string, limit: number): Promise<V1Deployment[]>;
  /** Events by field selector (e.g. `involvedObject.uid=…,reason=FailedCreate`), at most `limit`. Live. */
  listEvents(namespace: string, fieldSelector: string, limit: number): Promise<CoreV1Event[]>;
  /**
   * A Secret's metadata only (labels, annotations: admission's consent check, policy.ts), or
   * undefined when it is absent; a 403 throws. Never its data.
   */
  readSecretMetadata(namespace: string, name: string): Promise<V1ObjectMeta | undefined>;
  /**
   * The one Secret whose data the operator reads: the Prometheus bearer token a run's spec names
   * (`spec.prometheus.bearerTokenSecretRef`, admitted with the Secret's consent; RBAC grants the
   * `get` only for the Secrets named in the chart's `rbac.prometheusTokenSecrets`). Undefined when
   * absent; a 403 throws. Live, never cached.
   */
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
}

// ---------------------------------------------------------------------------------------------
// Helpers over the interface

/** `metadata.namespace` and `metadata.name` of a body the operator built (both always set). */
export function idOf(obj: { metadata?: { namespace?: string; name?: string } }): { namespace: string; name: string } {
  return { namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' };
}

/**
 * Create-or-get (kube/client.ts `createOrGet`) through the interface: create; on a 409 read what
 * exists, live (it may be younger than the cache).
 */
export async function ensure<K extends ReadKind>(cluster: RunCluster, kind: K, body: KindMap[K]): Promise<CreateOrGetResult<KindMap[K]>> {
  const { namespace, name } = idOf(body);
  return createOrGet(
    () => cluster.create(kind, body),
    async () => {
      const got = await cluster.read(kind, namespace, name, { live: true });
      if (!got) throw notFound(kind, name); // deleted in between: createOrGet creates once more
      return got;
    },
  );
}

/** The API server's 404 as an ApiException (what `isNotFound` reads). */
export function notFound(kind: string, name: string): ApiException<unknown> {
  return new ApiException(404, `${kind} "${name}" not found`, { kind: 'Status', reason: 'NotFound', code: 404, message: `${kind} "${name}" not found` }, {});
}

/**
 * Whether labels match a label selector (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
 * `k`, `!k`, comma-separated, all must hold): what the API server does for a cached list.
 */
export function selectorMatches(labels: Record<string, string> | undefined, selector: string): boolean {
  const l = labels ?? {};
  const terms = selector.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  return terms.every((raw) => {
    const t = raw.trim();
    if (!t) return true;
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t);
    if (m) {
      const set = m[3]!.split(',').map((s) => s.trim());
      const has = m[1]! in l && set.includes(l[m[1]!]!);
      return m[2] === 'in' ? has : !has;
    }
    m = /^([^\s!=]+)\s*(!=|==|=)\s*(\S*)$/.exec(t);
    if (m) return m[2] === '!=' ? l[m[1]!] !== m[3] : l[m[1]!] === m[3];
    if (t.startsWith('!')) return !(t.slice(1).trim() in l);
    return t in l;
  });
}

// ---------------------------------------------------------------------------------------------
// The real implementation

/** The metadata-only answer of a read (PartialObjectMetadata), else the whole object. */
export const SECRET_METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/** The ConfigMap components the operator's informer caches (what an attempt makes; not exports, not baselines). */
export const CONFIGMAP_CACHED_COMPONENTS: readonly string[] = [COMPONENT.stepResult, COMPONENT.params, COMPONENT.seeds];
/** Of those, the ones held with their data (the reconcile reads it on every pass); the rest: metadata only. */
export const CONFIGMAP_DATA_COMPONENTS: readonly string[] = [COMPONENT.stepResult, COMPONENT.params];
/** The operator's ConfigMap informer's selector. */
export const OPERATOR_CONFIGMAP_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY},${COMPONENT_LABEL} in (${CONFIGMAP_CACHED_COMPONENTS.join(',')})`;
/** Whether the operator's cache keeps a ConfigMap's data (`CONFIGMAP_DATA_COMPONENTS`). */
export const keepsConfigMapData = (cm: V1ConfigMap): boolean => CONFIGMAP_DATA_COMPONENTS.includes(cm.metadata?.labels?.[COMPONENT_LABEL] ?? '');

/** What the reconcile needs of an informer (`kube/informer.ts` `Informer` is one). */
export interface CacheView<T> {
  get(key: string): T | undefined;
  list(): T[];
  hasSynced(): boolean;
}

/** The informer caches of a namespace (undefined: that namespace is not cached). */
export interface ClusterCaches {
  jobs(namespace: string): CacheView<V1Job> | undefined;
  configMaps(namespace: string): CacheView<V1ConfigMap> | undefined;
  /**
   * The components the ConfigMap caches hold (`CONFIGMAP_CACHED_COMPONENTS` in the operator);
   * undefined: they hold every ConfigMap a list may ask for.
   */
  configMapComponents?: readonly string[] | undefined;
}

/**
 * Caches from the operator's informer scopes: one scope per watched namespace, or one without a
 * namespace for all of them (main.ts).
 */
export function scopedCaches(
  scopes: { namespace?: string | undefined; jobs: CacheView<V1Job>; configMaps: CacheView<V1ConfigMap> }[],
  configMapComponents?: readonly string[],
): ClusterCaches {
  const find = (ns: string) => scopes.find((s) => s.namespace === undefined || s.namespace === ns);
  return { jobs: (ns) => find(ns)?.jobs, configMaps: (ns) => find(ns)?.configMaps, configMapComponents };
}

/**
 * The values a label selector allows for `key` (from `key=v`, `key==v`, `key in (a,b)`), or
 * undefined when it does not restrict the key to a set.
 */
export function selectorValues(selector: string, key: string): string[] | undefined {
  let allowed: string[] | undefined;
  for (const raw of selector.match(/[^,(]+(\([^)]*\))?/g) ?? []) {
    const t = raw.trim();
    const set = /^([^\s!=]+)\s+in\s+\(([^)]*)\)$/.exec(t);
    const eq = /^([^\s!=]+)\s*(?:==|=)\s*(\S*)$/.exec(t);
    const values = set?.[1] === key ? set[2]!.split(',').map((v) => v.trim()) : eq?.[1] === key ? [eq[2]!] : undefined;
    if (values) allowed = allowed ? allowed.filter((v) => values.includes(v)) : values;
  }
  return allowed;
}

/** Status patches remember at most this many runs' resourceVersions (the oldest go first). */
const MAX_REMEMBERED_RUNS = 1024;

/** The requests' time limits and the signal that stops them (kube/client.ts `makeApiClient`). */
export type KubeRunClusterOptions = ApiClientOptions;

/** The object, or undefined where the API server says 404. */
export async function orUndefined<T>(get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

interface KindApi<T> {
  read?(namespace: string, name: string): Promise<T>;
  create?(namespace: string, body: T): Promise<T>;
  replace?(namespace: string, name: string, body: T): Promise<T>;
}

export class KubeRunCluster implements RunCluster {
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;
  private readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly rbac: RbacAuthorizationV1Api;
  private readonly caches: ClusterCaches | undefined;
  private readonly api: { [K in Kind]: KindApi<KindMap[K]> };

  /** The resourceVersion last seen of each run (`namespace/name`), least recently seen first. */
  private readonly versions = new Map<string, string>();

  /**
   * `opts`: the requests' time limits and the signal that stops them (the leadership term;
   * kube/client.ts `makeApiClient`).
   */
  constructor(kc: KubeConfig, caches?: ClusterCaches, opts: KubeRunClusterOptions = {}) {
    const client = <T>(Api: new (config: Configuration) => T): T => makeApiClient(kc, Api, opts);
    const core = (this.core = client(CoreV1Api));
    const batch = (this.batch = client(BatchV1Api));
    const rbac = (this.rbac = client(RbacAuthorizationV1Api));
    this.apps = client(AppsV1Api);
    const net = client(NetworkingV1Api);
    this.custom = client(CustomObjectsApi);
    this.caches = caches;
    this.api = {
      ConfigMap: {
        read: (namespace, name) => core.readNamespacedConfigMap({ namespace, name }),
        create: (namespace, body) => core.createNamespacedConfigMap({ namespace, body }),
        replace: (namespace, name, body) => core.replaceNamespacedConfigMap({ namespace, name, body }),
      },
      Job: {
        read: (namespace, name) => batch.readNamespacedJob({ namespace, name }),
        create: (namespace, body) => batch.createNamespacedJob({ namespace, body }),
      },
      ServiceAccount: {
        read: (namespace, name) => core.readNamespacedServiceAccount({ namespace, name }),
        create: (namespace, body) => core.createNamespacedServiceAccount({ namespace, body }),
      },
      Role: {
        read: (namespace, name) => rbac.readNamespacedRole({ namespace, name }),
        create: (namespace, body) => rbac.createNamespacedRole({ namespace, body }),
        replace: (namespace, name, body) => rbac.replaceNamespacedRole({ namespace, name, body }),
      },
      RoleBinding: {
        read: (namespace, name) => rbac.readNamespacedRoleBinding({ namespace, name }),
        create: (namespace, body) => rbac.createNamespacedRoleBinding({ namespace, body }),
      },
      Secret: {
        create: (namespace, body) => core.createNamespacedSecret({ namespace, body }),
      },
      NetworkPolicy: {
        read: (namespace, name) => net.readNamespacedNetworkPolicy({ namespace, name }),
        create: (namespace, body) => net.createNamespacedNetworkPolicy({ namespace, body }),
      },
    };
  }

  async delete(kind: DeleteKind, namespace: string, name: string, uid: string): Promise<void> {
    const body = { preconditions: { uid } };
    // With a body the API server reads the delete options from it alone (query parameters are
    // ignored), and a Job's default is to orphan its pods: the policy goes into the body.
    if (kind === 'Job') await orUndefined(() => this.batch.deleteNamespacedJob({ namespace, name, body: { ...body, propagationPolicy: 'Background' } }));
    else if (kind === 'ConfigMap') await orUndefined(() => this.core.deleteNamespacedConfigMap({ namespace, name, body }));
    else await orUndefined(() => this.rbac.deleteNamespacedRoleBinding({ namespace, name, body }));
  }

  async getRun(namespace: string, name: string): Promise<RunObject | undefined> {
    const run = await orUndefined(async () => (await this.custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, name })) as RunObject);
    this.remember(namespace, name, run?.metadata?.resourceVersion);
    return run;
  }

  /**
   * Guarded by the resourceVersion last seen of the run (see the file's comment); a run never read
   * through this cluster (or forgotten among more than MAX_REMEMBERED_RUNS) is patched unguarded.
   */
  async patchRunStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<RunObject> {
    const resourceVersion = this.versions.get(`${namespace}/${name}`);
    const updated = (await patchRunStatus<BenchmarkRunStatus>(this.custom, namespace, name, status, { resourceVersion })) as unknown as RunObject;
    this.remember(namespace, name, updated.metadata?.resourceVersion);
    return updated;
  }

  private remember(namespace: string, name: string, resourceVersion: string | undefined): void {
    const key = `${namespace}/${name}`;
    this.versions.delete(key);
    if (resourceVersion === undefined) return;
    this.versions.set(key, resourceVersion);
    for (const oldest of this.versions.keys()) {
      if (this.versions.size <= MAX_REMEMBERED_RUNS) break;
      this.versions.delete(oldest);
    }
  }

  async createEvent(event: CoreV1Event): Promise<void> {
    await this.core.createNamespacedEvent({ namespace: event.metadata?.namespace ?? '', body: event });
  }

  private cache(kind: Kind, namespace: string): CacheView<KindMap[Kind]> | undefined {
    const view = kind === 'Job' ? this.caches?.jobs(namespace) : kind === 'ConfigMap' ? this.caches?.configMaps(namespace) : undefined;
    return view?.hasSynced() ? (view as CacheView<KindMap[Kind]>) : undefined;
  }

  async read<K extends ReadKind>(kind: K, namespace: string, name: string, opts: ReadOptions = {}): Promise<KindMap[K] | undefined> {
    if (!opts.live) {
      const hit = this.cache(kind, namespace)?.get(`${namespace}/${name}`);
      // A metadata-only ConfigMap (kube/informer.ts `isSlimmed`) is not what a reader of data wants.
      if (hit && !isSlimmed(hit)) return hit as KindMap[K];
    }
    return orUndefined(() => this.api[kind].read!(namespace, name));
  }

  create<K extends CreateKind>(kind: K, body: KindMap[K]): Promise<KindMap[K]> {
    const { namespace } = idOf(body);
    return this.api[kind].create!(namespace, body);
  }

  replace<K extends ReplaceKind>(kind: K, body: KindMap[K]): Promise<KindMap[K]> {
    const { namespace, name } = idOf(body);
    return this.api[kind].replace!(namespace, name, body);
  }

  async list<K extends ListKind>(kind: K, namespace: string, selector: string): Promise<KindMap[K][]> {
    const view = this.cache(kind, namespace);
    if (view && this.cacheCovers(kind, selector)) return view.list().filter((o) => o.metadata?.namespace === namespace && selectorMatches(o.metadata?.labels, selector)) as KindMap[K][];
    const got = kind === 'Job'
      ? await this.batch.listNamespacedJob({ namespace, labelSelector: selector })
      : await this.core.listNamespacedConfigMap({ namespace, labelSelector: selector });
    return got.items as KindMap[K][];
  }

  /** Whether the cache of `kind` holds every object `selector` can match (see the file's comment). */
  private cacheCovers(kind: ListKind, selector: string): boolean {
    const held = kind === 'ConfigMap' ? this.caches?.configMapComponents : undefined;
    if (!held) return true;
    const asked = selectorValues(selector, COMPONENT_LABEL);
    return asked !== undefined && asked.every((c) => held.includes(c));
  }

  async suspendJob(namespace: string, name: string, uid: string): Promise<void> {
    await orUndefined(() => this.batch.patchNamespacedJob({ namespace, name, body: { metadata: { uid }, spec: { suspend: true } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)));
  }

  async deleteCollection(kind: CollectionKind, namespace: string, selector: string): Promise<void> {
    const o = { namespace, labelSelector: selector, propagationPolicy: 'Background' };
    if (kind === 'Job') await this.batch.deleteCollectionNamespacedJob(o);
    else if (kind === 'Deployment') await this.apps.deleteCollectionNamespacedDeployment(o);
    else await this.core.deleteCollectionNamespacedConfigMap(o);
  }

  async listNodes(selector: string): Promise<V1Node[]> {
    return (await this.core.listNode({ labelSelector: selector })).items;
  }

  async listPods(namespace: string, selector: string, limit: number): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector: selector, limit })).items;
  }

  async listDeployments(namespace: string, selector: string, limit: number): Promise<V1Deployment[]> {
    return (await this.apps.listNamespacedDeployment({ namespace, labelSelector: selector, limit })).items;
  }

  async listEvents(namespace: string, fieldSelector: string, limit: number): Promise<CoreV1Event[]> {
    return (await this.core.listNamespacedEvent({ namespace, fieldSelector, limit })).items;
  }

  /**
   * Asks for PartialObjectMetadata (what client-go's metadata client asks for; an API server that
   * cannot answer it falls back to the whole object by the second media type), and keeps only the
   * labels and annotations either way. RBAC is the same `get` on the Secret.
   */
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    return orUndefined(() => this.core.readNamespacedSecret({ namespace, name }));
  }

  async readSecretMetadata(namespace: string, name: string): Promise<V1ObjectMeta | undefined> {
    const got = await orUndefined(() => this.core.readNamespacedSecret({ namespace, name }, setHeaderOptions('Accept', SECRET_METADATA_ACCEPT)));
    if (!got) return undefined;
    const m = got.metadata ?? {};
    return { name: m.name ?? name, namespace: m.namespace ?? namespace, ...(m.labels ? { labels: { ...m.labels } } : {}), ...(m.annotations ? { annotations: { ...m.annotations } } : {}) };
  }
}
