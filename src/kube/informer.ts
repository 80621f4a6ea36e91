/**
 * An informer over client-node's ListWatch (what `makeInformer` builds) that an operator can
 * leave running for weeks:
 *
 * - Event handlers are synchronous and meant only to push keys to a `WorkQueue`
 *   (`informer.enqueue(queue, mapKey)`); the reconcile reads the cache, not the event.
 * - ListWatch handles a 410 Gone (relist) and a client-side inactivity timeout (reconnect from the
 *   last resourceVersion) itself, but stops on any other error (403, 500, connection refused, a
 *   failed list). Here every error ends that ListWatch and a new one is started after a backoff
 *   (`restartBaseMs` doubling to `restartMaxMs`, with jitter; reset once the new watch delivers).
 *   A new ListWatch starts with a full list; objects deleted while the watch was down are found by
 *   comparing that list with the cache and reported as deletes.
 * - A watch silent for `silentTimeoutMs` is reconnected (half-open connections never error): the
 *   library's own inactivity timer is set to it, and a watchdog of our own restarts the informer
 *   if nothing at all (no event, no reconnect) happened for twice that.
 * - The cache (`list()`, `get(key)`) is ours, keyed `namespace/name`, filled before handlers run.
 * - `synced` resolves after the first successful list; `resyncMs` re-delivers every cached object
 *   to the handlers as a `resync` event now and then, so a missed event heals itself.
 * - Lists are read in pages of `listPageSize` (`limit` and `continue`, as client-go's pager does),
 *   so no single response holds the whole collection.
 * - Bounded memory (`retain`): what the cache holds of an object is decided on the way in. An
 *   object the policy keeps whole (`keep`) is held whole while the whole objects held weigh at
 *   most `budgetBytes` (the least recently updated is slimmed first); every other object is held
 *   slim (`slim`: for ConfigMaps, metadata without data). Slim objects are marked
 *   (`isSlimmed(obj)`): a reader that needs the data GETs it. The library's own store (ListWatch
 *   keeps one) only ever sees slim objects: list pages are slimmed before it gets them, and watch
 *   events before its handler runs.
 *
 * Each ListWatch generation is a new object, and callbacks of an older one are ignored: aborting
 * a ListWatch reports an AbortError through its error callbacks, and a stopped ListWatch's
 * late `doneHandler` would abort the request of the *current* watch if it were reused.
 */
import {
  AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, ListWatch, Watch,
  type Configuration, type KubernetesListObject, type KubernetesObject, type V1ConfigMap, type V1Deployment, type V1Job, type V1Pod,
} from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL, BENCHMARKSCHEDULE_PLURAL } from './names.ts';
import type { Logger } from '../log.ts';
import { createLogger } from '../log.ts';
import { describeError, keyOf, makeApiClient } from './client.ts';
import type { WorkQueue } from './queue.ts';

export type EventType = 'add' | 'update' | 'delete' | 'resync';
export type EventHandler<T> = (obj: T, type: EventType) => void;
/** One page of a list: `limit` and `_continue` as the generated list calls take them. */
export interface ListPage {
  limit: number;
  _continue?: string;
}
/** Lists the collection; a function that ignores `page` answers it all at once (no `continue`). */
export type ListFn<T extends KubernetesObject> = (page: ListPage) => Promise<KubernetesListObject<T>>;

/** What the cache holds of each object (see the file's comment, "Bounded memory"). */
export interface RetainPolicy<T> {
  /** Whether the whole object is worth holding (what a reader needs the data of). */
  keep(obj: T): boolean;
  /** What is held instead: a copy without the bulk (for ConfigMaps: no data, no binaryData). */
  slim(obj: T): T;
  /** The bytes a whole object counts against the budget. */
  weigh(obj: T): number;
  /** The most bytes of whole objects held at once. */
  budgetBytes: number;
}

/** Objects an informer holds slim (`RetainPolicy.slim`): their bulk was left out. */
const slimmed = new WeakSet<object>();
/** Whether `obj` came from an informer cache without its bulk (a reader needing it must GET it). */
export const isSlimmed = (obj: object): boolean => slimmed.has(obj);

export interface InformerOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** The watch path, e.g. `/api/v1/namespaces/ns/configmaps` (list and watch share it). */
  path: string;
  /** Lists the same collection with the same selector. */
  list: ListFn<T>;
  labelSelector?: string;
  /** For logs. */
  name?: string;
  /** Reconnect a watch that delivered nothing for this long (default 60 s). */
  silentTimeoutMs?: number;
  /** Backoff between restarts after an error (default 500 ms doubling to 30 s). */
  restartBaseMs?: number;
  restartMaxMs?: number;
  /** Re-deliver every cached object as `resync` this often (default: never). */
  resyncMs?: number;
  /** Objects per list page (default 500, client-go's). */
  listPageSize?: number;
  /** What the cache holds of each object (default: everything, whole). */
  retain?: RetainPolicy<T>;
  log?: Logger;
}

export interface InformerStats {
  /** ListWatch generations started (1 + restarts). */
  generations: number;
  /** Errors that ended a generation. */
  errors: number;
  /** Watch connections made (each list-then-watch and each reconnect). */
  connects: number;
  /** Successful lists. */
  lists: number;
  /** Events delivered to handlers (add/update/delete). */
  events: number;
  resyncs: number;
  lastError?: string;
}

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  readonly path: string;
  readonly labelSelector: string | undefined;
  /** Resolves after the first successful list. */
  readonly synced: Promise<void>;
  readonly stats: InformerStats = { generations: 0, errors: 0, connects: 0, lists: 0, events: 0, resyncs: 0 };

  private readonly kc: KubeConfig;
  private readonly listFn: ListFn<T>;
  private readonly silentTimeoutMs: number;
  private readonly restartBaseMs: number;
  private readonly restartMaxMs: number;
  private readonly resyncMs: number | undefined;
  private readonly listPageSize: number;
  private readonly retain: RetainPolicy<T> | undefined;
  private readonly log: Logger;
  private readonly cache = new Map<string, T>();
  /** Keys held whole and their weight, least recently updated first. */
  private readonly whole = new Map<string, number>();
  private wholeBytes = 0;
  /** The whole object of the watch event being handed to the library (which gets it slim). */
  private incoming: T | undefined;
  private readonly handlers: EventHandler<T>[] = [];
  private resolveSynced!: () => void;
  private isSynced = false;
  private running = false;
  private gen = 0;
  private current: ListWatch<T> | undefined;
  private failures = 0;
  private lastActivity = 0;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private resyncTimer: ReturnType<typeof setInterval> | undefined;
  private libraryTimeout = false;

  constructor(opts: InformerOptions<T>) {
    this.kc = opts.kc;
    this.path = opts.path;
    this.listFn = opts.list;
    this.labelSelector = opts.labelSelector;
    this.name = opts.name ?? opts.path;
    this.silentTimeoutMs = opts.silentTimeoutMs ?? 60_000;
    this.restartBaseMs = opts.restartBaseMs ?? 500;
    this.restartMaxMs = opts.restartMaxMs ?? 30_000;
    this.resyncMs = opts.resyncMs;
    this.listPageSize = opts.listPageSize ?? 500;
    if (!Number.isInteger(this.listPageSize) || this.listPageSize < 1) throw new Error(`informer ${this.name}: listPageSize must be an integer >= 1`);
    this.retain = opts.retain;
    if (this.retain && !(this.retain.budgetBytes >= 0)) throw new Error(`informer ${this.name}: retain.budgetBytes must be >= 0`);
    this.log = opts.log ?? createLogger({ component: 'informer', informer: this.name });
    this.synced = new Promise((r) => (this.resolveSynced = r));
  }

  /** Adds a synchronous handler; it sees every event after the cache was updated. */
  on(handler: EventHandler<T>): this {
    this.handlers.push(handler);
    return this;
  }

  /**
   * Pushes the key(s) `map` returns for each event to `queue` (default: the object's own key).
   * A child informer maps to its owner: `informer.enqueue(q, ownerRunKey)`.
   */
  enqueue(queue: WorkQueue, map: (obj: T) => string | string[] | undefined = keyOf): this {
    return this.on((obj) => {
      const k = map(obj);
      if (k === undefined) return;
      for (const key of Array.isArray(k) ? k : [k]) queue.add(key);
    });
  }

  hasSynced(): boolean {
    return this.isSynced;
  }
  list(): T[] {
    return [...this.cache.values()];
  }
  keys(): string[] {
    return [...this.cache.keys()];
  }
  get(key: string): T | undefined {
    return this.cache.get(key);
  }
  /** Bytes of whole objects held (`RetainPolicy.weigh`), at most `retain.budgetBytes`. */
  wholeBytesHeld(): number {
    return this.wholeBytes;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastActivity = Date.now();
    this.startGeneration();
    const every = Math.max(50, Math.floor(this.silentTimeoutMs / 2));
    this.watchdog = setInterval(() => this.checkSilence(), every);
    this.watchdog.unref();
    if (this.resyncMs && this.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.resyncMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.gen++;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.restartTimer = this.watchdog = this.resyncTimer = undefined;
    const lw = this.current;
    this.current = undefined;
    await lw?.stop();
  }

  /** Delivers every cached object to the handlers as `resync` (the periodic resync calls it). */
  resync(): void {
    if (!this.isSynced) return;
    this.stats.resyncs++;
    for (const obj of [...this.cache.values()]) this.emit(obj, 'resync');
  }

  /**
   * Ends the current ListWatch and starts a new one (with a full list) after the backoff, as an
   * error does. For tests and for callers that know the watch is stale.
   */
  restart(reason = 'requested'): void {
    if (!this.running) return;
    this.endGeneration(new Error(reason));
  }

  private startGeneration(): void {
    if (!this.running) return;
    const gen = ++this.gen;
    this.stats.generations++;
    const watch = new Watch(this.kc);
    // The library's inactivity timeout (private, 30 s in 2.0.1): on expiry ListWatch reconnects
    // from the last resourceVersion without a relist. Set it where the field exists.
    const w = watch as unknown as { requestTimeoutMs?: unknown };
    this.libraryTimeout = typeof w.requestTimeoutMs === 'number';
    if (this.libraryTimeout) w.requestTimeoutMs = this.silentTimeoutMs;
    const live = (): boolean => gen === this.gen && this.running;
    const list = (): Promise<KubernetesListObject<T>> => this.listPaged(live);
    const retain = this.retain;
    if (retain) {
      // The library stores what its handler gets: hand it the slim object, keep the whole one for
      // our own handlers (called synchronously from inside the library's handler).
      const inner = watch.watch.bind(watch);
      watch.watch = (path, query, callback, done) =>
        inner(path, query, (phase: string, obj: unknown, raw: unknown) => {
          if (phase !== 'ADDED' && phase !== 'MODIFIED' && phase !== 'DELETED') return callback(phase, obj, raw);
          this.incoming = obj as T;
          try {
            return callback(phase, this.slimmedCopy(obj as T), raw);
          } finally {
            this.incoming = undefined;
          }
        }, done);
    }
    const whole = (o: T): T => (this.incoming && keyOf(this.incoming) === keyOf(o) ? this.incoming : o);
    const lw = new ListWatch<T>(this.path, watch, list, false, this.labelSelector);
    lw.on('add', (o) => live() && this.upsert(whole(o), gen));
    lw.on('update', (o) => live() && this.upsert(whole(o), gen));
    lw.on('delete', (o) => live() && this.remove(o, gen));
    let connects = 0;
    lw.on('connect', () => {
      if (!live()) return;
      this.stats.connects++;
      this.lastActivity = Date.now();
      // A second connect in one generation: a watch ran and ended cleanly, so it works.
      if (++connects > 1) this.failures = 0;
    });
    lw.on('error', (err) => {
      if (live()) this.endGeneration(err);
    });
    this.current = lw;
    lw.start().catch((err: unknown) => {
      if (live()) this.endGeneration(err);
    });
  }

  private endGeneration(err: unknown): void {
    this.gen++; // callbacks of the old ListWatch are ignored from here on
    this.stats.errors++;
    this.stats.lastError = describeError(err);
    const old = this.current;
    this.current = undefined;
    void old?.stop().catch(() => undefined);
    if (!this.running) return;
    const n = this.failures++;
    const base = Math.min(this.restartMaxMs, this.restartBaseMs * 2 ** n);
    const delay = Math.min(this.restartMaxMs, base * (1 + 0.2 * Math.random()));
    this.log.warn('informer: watch ended with an error, restarting', { error: this.stats.lastError, delayMs: Math.round(delay), failures: this.failures });
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.lastActivity = Date.now();
      this.startGeneration();
    }, delay);
  }

  private checkSilence(): void {
    if (!this.running || this.restartTimer) return;
    // With the library's timer in place it reconnects (a `connect`) every silentTimeoutMs on a
    // quiet collection; twice that with nothing means the reconnect itself is stuck.
    const limit = this.libraryTimeout ? 2 * this.silentTimeoutMs + 1000 : this.silentTimeoutMs;
    if (Date.now() - this.lastActivity > limit) {
      this.log.warn('informer: watch silent too long, restarting', { silentMs: Date.now() - this.lastActivity });
      this.endGeneration(new Error(`watch silent for ${Date.now() - this.lastActivity} ms`));
    }
  }

  /**
   * The whole list, page by page, each page taken into the cache before the next is read (so at
   * most one page is held whole beyond what the policy keeps); objects the list no longer has are
   * reported deleted once it is complete. The library gets the list slim, with the resourceVersion
   * of the last page (a paged list is one snapshot: every page carries its version).
   */
  private async listPaged(live: () => boolean): Promise<KubernetesListObject<T>> {
    const seen = new Set<string>();
    const items: T[] = [];
    let last: KubernetesListObject<T> | undefined;
    let cont: string | undefined;
    do {
      const page = await this.listFn({ limit: this.listPageSize, ...(cont ? { _continue: cont } : {}) });
      if (!live()) return page;
      for (const o of page.items ?? []) {
        seen.add(keyOf(o));
        this.upsert(o);
        items.push(this.retain ? this.slimmedCopy(o) : o);
      }
      last = page;
      // Typed lists (the generated core/apps calls) carry `_continue`; custom objects come back as
      // the server's JSON, with `continue` (reading only `_continue` stopped at the first page).
      cont = page.metadata?._continue || (page.metadata as { continue?: string } | undefined)?.continue || undefined;
    } while (cont);
    this.stats.lists++;
    this.lastActivity = Date.now();
    for (const [k, o] of [...this.cache]) {
      if (!seen.has(k)) {
        this.forget(k);
        this.emitCounted(o, 'delete');
      }
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.resolveSynced();
    }
    return { ...last, metadata: { resourceVersion: last?.metadata?.resourceVersion }, items };
  }

  private upsert(obj: T, gen?: number): void {
    if (gen !== undefined) this.delivered();
    const k = keyOf(obj);
    const old = this.cache.get(k);
    const rv = obj.metadata?.resourceVersion;
    if (old && rv !== undefined && old.metadata?.resourceVersion === rv) return;
    const held = this.hold(k, obj);
    this.cache.set(k, held);
    this.emitCounted(held, old ? 'update' : 'add');
  }

  private remove(obj: T, gen?: number): void {
    if (gen !== undefined) this.delivered();
    const k = keyOf(obj);
    const held = this.cache.get(k);
    if (!held) return;
    this.forget(k);
    this.emitCounted(held, 'delete');
  }

  private forget(k: string): void {
    this.cache.delete(k);
    this.release(k);
  }

  /** What the cache holds of `obj` under the retain policy; slims the oldest whole ones over budget. */
  private hold(k: string, obj: T): T {
    const retain = this.retain;
    if (!retain) return obj;
    this.release(k);
    if (!retain.keep(obj)) return this.slimmedCopy(obj);
    const w = retain.weigh(obj);
    if (w > retain.budgetBytes) return this.slimmedCopy(obj);
    this.whole.set(k, w);
    this.wholeBytes += w;
    // k went in last and fits alone, so the loop stops before reaching it.
    for (const [oldest] of this.whole) {
      if (this.wholeBytes <= retain.budgetBytes) break;
      this.release(oldest);
      const o = this.cache.get(oldest);
      if (o) this.cache.set(oldest, this.slimmedCopy(o));
    }
    return obj;
  }

  private release(k: string): void {
    const w = this.whole.get(k);
    if (w === undefined) return;
    this.whole.delete(k);
    this.wholeBytes -= w;
  }

  /** A marked slim copy (the object itself when already slim); a new object, so readers holding the whole one keep it. */
  private slimmedCopy(obj: T): T {
    if (!this.retain || slimmed.has(obj)) return obj;
    const s = this.retain.slim(obj);
    slimmed.add(s);
    return s;
  }

  /** A watch event arrived: the watch works, so the restart backoff starts over. */
  private delivered(): void {
    this.lastActivity = Date.now();
    this.failures = 0;
  }

  private emitCounted(obj: T, type: EventType): void {
    this.stats.events++;
    this.emit(obj, type);
  }

  private emit(obj: T, type: EventType): void {
    for (const h of this.handlers) {
      try {
        h(obj, type);
      } catch (e) {
        this.log.warn('informer: event handler threw', { error: String(e), type, key: keyOf(obj) });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Informers for the kinds the operator watches. `namespace` undefined = all namespaces.

export interface ScopeOptions {
  namespace?: string;
  labelSelector?: string;
  silentTimeoutMs?: number;
  restartBaseMs?: number;
  restartMaxMs?: number;
  resyncMs?: number;
  listPageSize?: number;
  /** The list requests' time limit per page (default LIST_TIMEOUT_MS, kube/client.ts). */
  listTimeoutMs?: number;
  log?: Logger;
}

function base(opts: ScopeOptions): Omit<InformerOptions<KubernetesObject>, 'kc' | 'path' | 'list'> {
  const { namespace: _ns, listTimeoutMs: _t, ...rest } = opts;
  return rest;
}

/** The API client of an informer's lists: time-limited (kube/client.ts `makeApiClient`). */
function listClient<T>(kc: KubeConfig, Api: new (config: Configuration) => T, opts: ScopeOptions): T {
  return makeApiClient(kc, Api, opts.listTimeoutMs ? { listTimeoutMs: opts.listTimeoutMs } : {});
}

export type BenchmarkRunObject = KubernetesObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

export function benchmarkRunInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<BenchmarkRunObject> {
  const api = listClient(kc, CustomObjectsApi, opts);
  const { namespace, labelSelector } = opts;
  const prefix = `/apis/${API_GROUP}/${API_VERSION}`;
  const path = namespace ? `${prefix}/namespaces/${namespace}/${BENCHMARKRUN_PLURAL}` : `${prefix}/${BENCHMARKRUN_PLURAL}`;
  const list = (page: ListPage): Promise<KubernetesListObject<BenchmarkRunObject>> =>
    namespace
      ? api.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, labelSelector, ...page })
      : api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: BENCHMARKRUN_PLURAL, labelSelector, ...page });
  // The reconcile reads each run with a GET (operator/cluster.ts `getRun`); the cache serves the
  // queue (keys), the phase gauge and the schedule reconcile (operator/schedule.ts: which runs a
  // schedule controls, their phase, verdict and export), so it holds every run slim
  // (`runMetadata`): a finished run's status (27 results, the summary) and kubectl's last-applied
  // copy of its spec are not kept.
  const retain: RetainPolicy<BenchmarkRunObject> = { keep: () => false, slim: runMetadata, weigh: () => 0, budgetBytes: 0 };
  return new Informer({ kc, path, list, name: 'benchmarkruns', ...base(opts), retain });
}

export type BenchmarkScheduleObject = BenchmarkRunObject;

/**
 * BenchmarkSchedules (operator/schedule.ts). The reconcile reads each schedule with a GET, so the
 * cache holds them slim too (`scheduleMetadata`: metadata only, no spec, no status).
 */
export function benchmarkScheduleInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<BenchmarkScheduleObject> {
  const api = listClient(kc, CustomObjectsApi, opts);
  const { namespace, labelSelector } = opts;
  const prefix = `/apis/${API_GROUP}/${API_VERSION}`;
  const path = namespace ? `${prefix}/namespaces/${namespace}/${BENCHMARKSCHEDULE_PLURAL}` : `${prefix}/${BENCHMARKSCHEDULE_PLURAL}`;
  const list = (page: ListPage): Promise<KubernetesListObject<BenchmarkScheduleObject>> =>
    namespace
      ? api.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKSCHEDULE_PLURAL, labelSelector, ...page })
      : api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: BENCHMARKSCHEDULE_PLURAL, labelSelector, ...page });
  const retain: RetainPolicy<BenchmarkScheduleObject> = { keep: () => false, slim: scheduleMetadata, weigh: () => 0, budgetBytes: 0 };
  return new Informer({ kc, path, list, name: 'benchmarkschedules', ...base(opts), retain });
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Metadata without managedFields and kubectl's last-applied copy. */
function slimMetadata(obj: BenchmarkRunObject): BenchmarkRunObject {
  const { managedFields: _m, annotations, ...metadata } = obj.metadata ?? {};
  const kept = annotations ? Object.fromEntries(Object.entries(annotations).filter(([k]) => k !== LAST_APPLIED)) : undefined;
  return {
    ...(obj.apiVersion ? { apiVersion: obj.apiVersion } : {}),
    ...(obj.kind ? { kind: obj.kind } : {}),
    metadata: { ...metadata, ...(kept && Object.keys(kept).length ? { annotations: kept } : {}) },
  };
}

/** What the schedule informer holds of a schedule: its metadata (no managedFields, no last-applied copy). */
export const scheduleMetadata = (s: BenchmarkScheduleObject): BenchmarkScheduleObject => slimMetadata(s);

/** Regressed test ids a slim run keeps (the suite has 27). */
const SLIM_REGRESSED_MAX = 64;

/**
 * What the run informer holds of a run: its metadata (no managedFields, no last-applied copy) and,
 * of its status, the few small fields the schedule reconcile reads (operator/schedule-plan.ts
 * `ownedRunOf`, operator/schedule-history.ts): phase, attempt, start and finish, the verdict, the
 * regressed test ids (at most 64, each cut to 16) and the export's name; and what the results
 * UI's runs table shows (operator/ui-source.ts): the progress (step counts, the current step's
 * name cut to 253) and the summary's counts and success rate. Bounded whatever the status holds.
 */
export function runMetadata(run: BenchmarkRunObject): BenchmarkRunObject {
  const st = (run.status ?? {}) as {
    phase?: unknown; attempt?: unknown; startedAt?: unknown; finishedAt?: unknown;
    summary?: { verdict?: unknown; passed?: unknown; total?: unknown; skipped?: unknown; successRate?: unknown };
    progress?: { completedSteps?: unknown; totalSteps?: unknown; currentStep?: unknown }; comparison?: { regressed?: unknown } | null; export?: { configMapName?: unknown } | null;
  };
  const str = (v: unknown, max = 253): string | undefined => (typeof v === 'string' ? v.slice(0, max) : undefined);
  const status: Record<string, unknown> = {};
  if (typeof st.phase === 'string') status.phase = st.phase;
  if (typeof st.attempt === 'number') status.attempt = st.attempt;
  if (str(st.startedAt, 40) !== undefined) status.startedAt = str(st.startedAt, 40);
  if (str(st.finishedAt, 40) !== undefined) status.finishedAt = str(st.finishedAt, 40);
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const pick = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const summary = pick({ verdict: str(st.summary?.verdict, 16), passed: num(st.summary?.passed), total: num(st.summary?.total), skipped: num(st.summary?.skipped), successRate: num(st.summary?.successRate) });
  if (Object.keys(summary).length) status.summary = summary;
  const progress = pick({ completedSteps: num(st.progress?.completedSteps), totalSteps: num(st.progress?.totalSteps), currentStep: str(st.progress?.currentStep) });
  if (Object.keys(progress).length) status.progress = progress;
  const regressed = st.comparison?.regressed;
  if (Array.isArray(regressed)) status.comparison = { regressed: regressed.slice(0, SLIM_REGRESSED_MAX).map((t) => String(t).slice(0, 16)) };
  if (str(st.export?.configMapName) !== undefined) status.export = { configMapName: str(st.export?.configMapName) };
  return { ...slimMetadata(run), ...(Object.keys(status).length ? { status } : {}) };
}

export interface ConfigMapScopeOptions extends ScopeOptions {
  /**
   * The ConfigMaps held whole, data included (what a reader needs the data of); every other one is
   * held as metadata only (`isSlimmed`). Absent: all are held whole (no budget).
   */
  keepData?: (cm: V1ConfigMap) => boolean;
  /** The most characters of data (keys and values) held whole at once (default 64 MiB worth). */
  dataBudgetBytes?: number;
}

/** A ConfigMap without its data, binaryData and managedFields: what a metadata-only cache holds. */
export function configMapMetadata(cm: V1ConfigMap): V1ConfigMap {
  const { managedFields: _m, ...metadata } = cm.metadata ?? {};
  return { ...(cm.apiVersion ? { apiVersion: cm.apiVersion } : {}), ...(cm.kind ? { kind: cm.kind } : {}), metadata };
}

/** The characters of a ConfigMap's data and binaryData, keys and values: its weight in the cache. */
export function configMapDataSize(cm: V1ConfigMap): number {
  let n = 0;
  for (const m of [cm.data, cm.binaryData]) for (const [k, v] of Object.entries(m ?? {})) n += k.length + (typeof v === 'string' ? v.length : 0);
  return n;
}

export const DEFAULT_DATA_BUDGET_BYTES = 64 * 1024 * 1024;

/**
 * ConfigMaps, in pages of 50 by default (one may hold nearly 1 MiB). With `keepData`, only those
 * keep their data, within `dataBudgetBytes`; the rest are held as metadata.
 */
export function configMapInformer(kc: KubeConfig, opts: ConfigMapScopeOptions = {}): Informer<V1ConfigMap> {
  const api = listClient(kc, CoreV1Api, opts);
  const { namespace, labelSelector, keepData, dataBudgetBytes, ...rest } = opts;
  const path = namespace ? `/api/v1/namespaces/${namespace}/configmaps` : '/api/v1/configmaps';
  const list = (page: ListPage): Promise<KubernetesListObject<V1ConfigMap>> =>
    namespace ? api.listNamespacedConfigMap({ namespace, labelSelector, ...page }) : api.listConfigMapForAllNamespaces({ labelSelector, ...page });
  const retain: RetainPolicy<V1ConfigMap> | undefined = keepData
    ? { keep: keepData, slim: configMapMetadata, weigh: configMapDataSize, budgetBytes: dataBudgetBytes ?? DEFAULT_DATA_BUDGET_BYTES }
    : undefined;
  return new Informer({ kc, path, list, name: 'configmaps', listPageSize: 50, ...base({ ...rest, labelSelector }), ...(retain ? { retain } : {}) });
}

export function jobInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<V1Job> {
  const api = listClient(kc, BatchV1Api, opts);
  const { namespace, labelSelector } = opts;
  const path = namespace ? `/apis/batch/v1/namespaces/${namespace}/jobs` : '/apis/batch/v1/jobs';
  const list = (page: ListPage): Promise<KubernetesListObject<V1Job>> =>
    namespace ? api.listNamespacedJob({ namespace, labelSelector, ...page }) : api.listJobForAllNamespaces({ labelSelector, ...page });
  return new Informer({ kc, path, list, name: 'jobs', ...base(opts) });
}

export function podInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<V1Pod> {
  const api = listClient(kc, CoreV1Api, opts);
  const { namespace, labelSelector } = opts;
  const path = namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods';
  const list = (page: ListPage): Promise<KubernetesListObject<V1Pod>> =>
    namespace ? api.listNamespacedPod({ namespace, labelSelector, ...page }) : api.listPodForAllNamespaces({ labelSelector, ...page });
  return new Informer({ kc, path, list, name: 'pods', ...base(opts) });
}

export function deploymentInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<V1Deployment> {
  const api = listClient(kc, AppsV1Api, opts);
  const { namespace, labelSelector } = opts;
  const path = namespace ? `/apis/apps/v1/namespaces/${namespace}/deployments` : '/apis/apps/v1/deployments';
  const list = (page: ListPage): Promise<KubernetesListObject<V1Deployment>> =>
    namespace ? api.listNamespacedDeployment({ namespace, labelSelector, ...page }) : api.listDeploymentForAllNamespaces({ labelSelector, ...page });
  return new Informer({ kc, path, list, name: 'deployments', ...base(opts) });
}

/** Resolves when every informer has synced, or rejects after `timeoutMs`. */
export async function waitForSync(informers: Array<{ synced: Promise<void>; name: string; hasSynced(): boolean }>, timeoutMs = 60_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`informers not synced after ${timeoutMs} ms: ${informers.filter((i) => !i.hasSynced()).map((i) => i.name).join(', ')}`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.all(informers.map((i) => i.synced)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
