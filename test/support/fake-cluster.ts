/**
 * An in-memory `RunCluster` (src/operator/cluster.ts) for unit tests of the reconcile, in the
 * spirit of controller-runtime's fake client: objects by kind / namespace / name, with the API
 * server's semantics the reconcile relies on, and a record of every call.
 *
 * - create: 409 AlreadyExists when the name is taken (a 400 when the body carries a
 *   resourceVersion); sets uid, creationTimestamp, resourceVersion (and generation 1 on a run).
 *   Without a name, `metadata.generateName` and 5 random characters of [a-z0-9] (the API server's
 *   generator; one that is taken is drawn again); the call records the generated name, the body
 *   as sent. Neither: a 422.
 * - read / getRun: undefined for a 404; each read is a copy that went through JSON, as over the
 *   wire, so the caller can neither see Date objects nor change the store by mutating it.
 * - replace: 404 when missing, 409 Conflict when `metadata.resourceVersion` is stale.
 * - every write bumps the object's resourceVersion (one counter for the whole store).
 * - delete: by name with a uid precondition (409 Conflict when the stored object's uid differs,
 *   success when it is gone already).
 * - deleteCollection / list: label selectors (`=`, `==`, `!=`, `in`, `notin`, `k`, `!k`).
 * - patchRunStatus: RFC 7386 merge patch of `status` only (objects merge, arrays replace, null
 *   deletes); the generation does not move. `updateRun` changes the spec the way `kubectl apply`
 *   does: the generation moves when the spec changed.
 * - a cache that lags: `lagCache(kind, ns, name, snapshot)` makes reads without `live` answer the
 *   snapshot until `clearLag`, as an informer behind the API server would.
 *
 * Setup and inspection (`put`, `get`, `update`, `all`, ...) are not recorded as calls.
 */
import { randomInt } from 'node:crypto';
import { ApiException, type CoreV1Event, type V1Deployment, type V1Node, type V1ObjectMeta, type V1Pod, type V1Secret } from '@kubernetes/client-node';
import type { CollectionKind, CreateKind, DeleteKind, Kind, KindMap, ListKind, ReadKind, ReadOptions, ReplaceKind, RunCluster, RunObject } from '../../src/operator/cluster.ts';

export type FakeKind = Kind | 'BenchmarkRun' | 'Deployment' | 'Event' | 'Node' | 'Pod';

export interface Call {
  op: 'getRun' | 'patchRunStatus' | 'createEvent' | 'read' | 'create' | 'replace' | 'delete' | 'list' | 'deleteCollection' | 'listNodes' | 'listPods' | 'listDeployments' | 'listEvents' | 'suspendJob' | 'readSecretMetadata' | 'readSecret';
  kind: string;
  namespace: string;
  name?: string;
  selector?: string;
  live?: boolean;
  /** The body of a write (a copy). */
  body?: unknown;
  /** The HTTP status of an error the call answered with. */
  failed?: number;
}

/** The ops that change something in the cluster. */
export const WRITE_OPS: ReadonlySet<Call['op']> = new Set(['patchRunStatus', 'createEvent', 'create', 'replace', 'delete', 'deleteCollection']);

export type Obj = { metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string; uid?: string; generation?: number; [k: string]: unknown }; [k: string]: unknown };

const copy = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

function apiError(code: number, reason: string, message: string): ApiException<unknown> {
  return new ApiException(code, message, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }, {});
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return copy(patch);
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else if (v !== undefined) out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The API server's label selector, written apart from the operator's own (cluster.ts) on purpose. */
export function matches(labels: Record<string, string> = {}, selector: string): boolean {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean).every((p) => {
    const set = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(p);
    if (set) {
      const values = set[3]!.split(',').map((v) => v.trim());
      const inside = Object.hasOwn(labels, set[1]!) && values.includes(labels[set[1]!]!);
      return set[2] === 'in' ? inside : !inside;
    }
    const ne = /^(\S+?)\s*!=\s*(\S*)$/.exec(p);
    if (ne) return labels[ne[1]!] !== ne[2];
    const eq = /^(\S+?)\s*==?\s*(\S*)$/.exec(p);
    if (eq) return labels[eq[1]!] === eq[2];
    if (p.startsWith('!')) return !Object.hasOwn(labels, p.slice(1));
    return Object.hasOwn(labels, p);
  });
}

export class FakeCluster implements RunCluster {
  readonly calls: Call[] = [];
  readonly events: CoreV1Event[] = [];
  private readonly store = new Map<string, Obj>();
  private readonly lag = new Map<string, Obj | undefined>();
  private readonly failures: { op: Call['op']; kind?: string; code: number }[] = [];
  private rv = 0;
  private uids = 0;
  private eventNames = 0;

  /** Records a call; its error's HTTP status is added when it throws one. */
  private async record<T>(call: Call, run: () => T): Promise<T> {
    this.calls.push(call);
    try {
      const i = this.failures.findIndex((f) => f.op === call.op && (f.kind === undefined || f.kind === call.kind));
      if (i >= 0) {
        const [f] = this.failures.splice(i, 1);
        throw apiError(f!.code, f!.code === 409 ? 'Conflict' : 'InternalError', `injected ${f!.code} for ${call.op} ${call.kind}`);
      }
      return run();
    } catch (e) {
      if (e instanceof ApiException) call.failed = e.code;
      throw e;
    }
  }

  /** What the API server appends to a generateName: 5 of [a-z0-9]. */
  private static suffix(): string {
    const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
    return Array.from({ length: 5 }, () => abc[randomInt(abc.length)]).join('');
  }

  private static key(kind: string, namespace: string, name: string): string {
    return `${kind}/${namespace}/${name}`;
  }

  // -------------------------------------------------------------------------------------------
  // Setup and inspection (not recorded)

  /** Stores an object as the API server would after a create (uid, resourceVersion); replaces one that exists. */
  put<T extends object>(kind: FakeKind, obj: T): T {
    const o = copy(obj) as Obj;
    const m = (o.metadata ??= {});
    const k = FakeCluster.key(kind, m.namespace ?? '', m.name ?? '');
    const old = this.store.get(k);
    m.uid ??= (old?.metadata?.uid as string | undefined) ?? `uid-${++this.uids}`;
    m.creationTimestamp ??= old?.metadata?.creationTimestamp ?? '2026-01-01T00:00:00Z';
    if (kind === 'BenchmarkRun') m.generation ??= 1;
    m.resourceVersion = String(++this.rv);
    this.store.set(k, o);
    return copy(o) as T;
  }

  get<K extends FakeKind>(kind: K, namespace: string, name: string): (K extends Kind ? KindMap[K] : K extends 'BenchmarkRun' ? RunObject : Obj) | undefined {
    const o = this.store.get(FakeCluster.key(kind, namespace, name));
    return o ? copy(o) as never : undefined;
  }

  /** Changes a stored object (a runner writing its result, the Job controller) and bumps its resourceVersion. */
  update(kind: FakeKind, namespace: string, name: string, change: (o: Obj) => void): void {
    const o = this.store.get(FakeCluster.key(kind, namespace, name));
    if (!o) throw new Error(`fake: no ${kind} ${namespace}/${name}`);
    change(o);
    o.metadata!.resourceVersion = String(++this.rv);
  }

  /** `kubectl apply` of a run's spec or annotations: the generation moves when the spec changed. */
  updateRun(namespace: string, name: string, change: { spec?: unknown; annotations?: Record<string, string> }): void {
    this.update('BenchmarkRun', namespace, name, (o) => {
      const r = o as unknown as RunObject;
      if (change.spec !== undefined && JSON.stringify(change.spec) !== JSON.stringify(r.spec)) {
        r.spec = copy(change.spec);
        r.metadata.generation = (r.metadata.generation ?? 1) + 1;
      }
      if (change.annotations) r.metadata.annotations = { ...r.metadata.annotations, ...change.annotations };
    });
  }

  remove(kind: FakeKind, namespace: string, name: string): void {
    this.store.delete(FakeCluster.key(kind, namespace, name));
  }

  /** Every stored object of a kind (in a namespace), sorted by name. */
  all(kind: FakeKind, namespace?: string): Obj[] {
    return [...this.store.entries()]
      .filter(([k]) => k.startsWith(`${kind}/${namespace === undefined ? '' : `${namespace}/`}`))
      .map(([, o]) => copy(o))
      .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  }

  names(kind: FakeKind, namespace?: string): string[] {
    return this.all(kind, namespace).map((o) => o.metadata!.name!);
  }

  /** Reads without `live` answer `snapshot` (undefined: "not in the cache") until `clearLag`. */
  lagCache(kind: Kind, namespace: string, name: string, snapshot: object | undefined): void {
    this.lag.set(FakeCluster.key(kind, namespace, name), snapshot ? copy(snapshot) as Obj : undefined);
  }

  clearLag(): void {
    this.lag.clear();
  }

  /** The next `op` (of `kind`) answers with an API error of `code` instead. */
  failNext(op: Call['op'], code: number, kind?: string): void {
    this.failures.push({ op, code, ...(kind ? { kind } : {}) });
  }

  writes(): Call[] {
    return this.calls.filter((c) => WRITE_OPS.has(c.op));
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  // -------------------------------------------------------------------------------------------
  // RunCluster

  async getRun(namespace: string, name: string): Promise<RunObject | undefined> {
    return this.record({ op: 'getRun', kind: 'BenchmarkRun', namespace, name }, () => this.get('BenchmarkRun', namespace, name));
  }

  async patchRunStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<RunObject> {
    return this.record({ op: 'patchRunStatus', kind: 'BenchmarkRun', namespace, name, body: copy(status) }, () => {
      const o = this.store.get(FakeCluster.key('BenchmarkRun', namespace, name));
      if (!o) throw apiError(404, 'NotFound', `benchmarkruns "${name}" not found`);
      o.status = mergePatch(o.status ?? {}, copy(status));
      o.metadata!.resourceVersion = String(++this.rv);
      return copy(o) as unknown as RunObject;
    });
  }

  async createEvent(event: CoreV1Event): Promise<void> {
    const e = copy(event);
    const m = e.metadata;
    if (!m.name && m.generateName) m.name = `${m.generateName}${(++this.eventNames).toString(36)}`;
    await this.record({ op: 'createEvent', kind: 'Event', namespace: m.namespace ?? '', name: m.name!, body: e }, () => {
      if (this.events.some((x) => x.metadata.name === m.name && x.metadata.namespace === m.namespace)) throw apiError(409, 'AlreadyExists', `events "${m.name}" already exists`);
      this.events.push(e);
    });
  }

  async read<K extends ReadKind>(kind: K, namespace: string, name: string, opts: ReadOptions = {}): Promise<KindMap[K] | undefined> {
    return this.record({ op: 'read', kind, namespace, name, live: opts.live === true }, () => {
      const k = FakeCluster.key(kind, namespace, name);
      const snap = !opts.live ? this.lag.get(k) : undefined;
      // A cache miss (no snapshot) goes to the API server, as KubeRunCluster does.
      return (snap ? copy(snap) : this.get(kind, namespace, name)) as KindMap[K] | undefined;
    });
  }

  async create<K extends CreateKind>(kind: K, body: KindMap[K]): Promise<KindMap[K]> {
    const b = body as Obj;
    const namespace = b.metadata?.namespace ?? '';
    const prefix = typeof b.metadata?.generateName === 'string' ? b.metadata.generateName : '';
    let name = b.metadata?.name ?? '';
    if (!name && prefix) {
      do name = prefix.slice(0, 58) + FakeCluster.suffix();
      while (this.store.has(FakeCluster.key(kind, namespace, name)));
    }
    return this.record({ op: 'create', kind, namespace, name, body: copy(body) }, () => {
      if (!name) throw apiError(422, 'Invalid', `${kind}: metadata.name: Required value: name or generateName is required`);
      if (b.metadata?.resourceVersion) throw apiError(400, 'BadRequest', 'resourceVersion should not be set on objects to be created');
      if (this.store.has(FakeCluster.key(kind, namespace, name))) throw apiError(409, 'AlreadyExists', `${kind} "${name}" already exists`);
      return this.put(kind, { ...body, metadata: { ...b.metadata, name } });
    });
  }

  async replace<K extends ReplaceKind>(kind: K, body: KindMap[K]): Promise<KindMap[K]> {
    const b = body as Obj;
    const namespace = b.metadata?.namespace ?? '';
    const name = b.metadata?.name ?? '';
    return this.record({ op: 'replace', kind, namespace, name, body: copy(body) }, () => {
      const cur = this.store.get(FakeCluster.key(kind, namespace, name));
      if (!cur) throw apiError(404, 'NotFound', `${kind} "${name}" not found`);
      const rv = b.metadata?.resourceVersion;
      if (rv !== undefined && rv !== cur.metadata?.resourceVersion) {
        throw apiError(409, 'Conflict', `Operation cannot be fulfilled on ${kind} "${name}": the object has been modified`);
      }
      const next = copy(b);
      next.metadata = { ...next.metadata, uid: cur.metadata?.uid, creationTimestamp: cur.metadata?.creationTimestamp };
      delete next.metadata.resourceVersion;
      return this.put(kind, next) as unknown as KindMap[K];
    });
  }

  async delete(kind: DeleteKind, namespace: string, name: string, uid: string): Promise<void> {
    await this.record({ op: 'delete', kind, namespace, name, body: { preconditions: { uid } } }, () => {
      const k = FakeCluster.key(kind, namespace, name);
      const cur = this.store.get(k);
      if (!cur) return;
      if (cur.metadata?.uid !== uid) {
        throw apiError(409, 'Conflict', `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${cur.metadata?.uid}`);
      }
      this.store.delete(k);
    });
  }

  async list<K extends ListKind>(kind: K, namespace: string, selector: string): Promise<KindMap[K][]> {
    return this.record({ op: 'list', kind, namespace, selector }, () => this.all(kind, namespace).filter((o) => matches(o.metadata?.labels, selector)) as KindMap[K][]);
  }

  async suspendJob(namespace: string, name: string, uid: string): Promise<void> {
    await this.record({ op: 'suspendJob', kind: 'Job', namespace, name }, () => {
      if (this.get('Job', namespace, name)?.metadata?.uid !== uid) return;
      this.update('Job', namespace, name, (o) => ((o as { spec?: { suspend?: boolean } }).spec = { ...(o as { spec?: object }).spec, suspend: true }));
    });
  }

  async deleteCollection(kind: CollectionKind, namespace: string, selector: string): Promise<void> {
    await this.record({ op: 'deleteCollection', kind, namespace, selector }, () => {
      for (const o of this.all(kind, namespace)) {
        if (matches(o.metadata?.labels, selector)) this.store.delete(FakeCluster.key(kind, namespace, o.metadata!.name!));
      }
    });
  }

  async listNodes(selector: string): Promise<V1Node[]> {
    return this.record({ op: 'listNodes', kind: 'Node', namespace: '', selector }, () => this.all('Node', '').filter((o) => matches(o.metadata?.labels, selector)) as V1Node[]);
  }

  /** Pods put with `put('Pod', ...)`, at most `limit` of them. */
  async listPods(namespace: string, selector: string, limit: number): Promise<V1Pod[]> {
    return this.record({ op: 'listPods', kind: 'Pod', namespace, selector }, () => (this.all('Pod', namespace).filter((o) => matches(o.metadata?.labels, selector)) as V1Pod[]).slice(0, limit));
  }

  /** Deployments put with `put('Deployment', ...)` that match the label selector, at most `limit`. */
  async listDeployments(namespace: string, selector: string, limit: number): Promise<V1Deployment[]> {
    return this.record({ op: 'listDeployments', kind: 'Deployment', namespace, selector }, () => (this.all('Deployment', namespace).filter((o) => matches(o.metadata?.labels, selector)) as V1Deployment[]).slice(0, limit));
  }

  /** Events (the operator's own and those put with `put('Event', ...)`) whose fields match `a=b,c=d` (involvedObject.uid, involvedObject.kind, reason), at most `limit`. */
  async listEvents(namespace: string, fieldSelector: string, limit: number): Promise<CoreV1Event[]> {
    const want = fieldSelector.split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]);
    const field = (e: Record<string, unknown>, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), e);
    return this.record({ op: 'listEvents', kind: 'Event', namespace, selector: fieldSelector }, () =>
      ([...this.all('Event', namespace), ...this.events.filter((e) => e.metadata?.namespace === namespace)].filter((e) => want.every(([k, v]) => String(field(e as Record<string, unknown>, k)) === v)) as unknown as CoreV1Event[]).slice(0, limit));
  }

  /** A stored Secret's labels and annotations only (`failNext('readSecretMetadata', 403)` for a refusal). */
  async readSecretMetadata(namespace: string, name: string): Promise<V1ObjectMeta | undefined> {
    return this.record({ op: 'readSecretMetadata', kind: 'Secret', namespace, name }, () => {
      const m = this.get('Secret', namespace, name)?.metadata;
      if (!m) return undefined;
      return { name, namespace, ...(m.labels ? { labels: { ...m.labels } } : {}), ...(m.annotations ? { annotations: { ...m.annotations } } : {}) };
    });
  }

  /** A stored Secret, whole (the Prometheus token; `failNext('readSecret', 403)` for a refusal). */
  async readSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    return this.record({ op: 'readSecret', kind: 'Secret', namespace, name }, () => this.get('Secret', namespace, name) as V1Secret | undefined);
  }
}
