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
 *
 * Each ListWatch generation is a new object, and callbacks of an older one are ignored: aborting
 * a ListWatch reports an AbortError through its error callbacks, and a stopped ListWatch's
 * late `doneHandler` would abort the request of the *current* watch if it were reused.
 */
import {
  AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, ListWatch, Watch,
  type KubernetesListObject, type KubernetesObject, type V1ConfigMap, type V1Deployment, type V1Job,
} from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL } from './names.ts';
import type { Logger } from '../log.ts';
import { createLogger } from '../log.ts';
import { describeError, keyOf } from './client.ts';
import type { WorkQueue } from './queue.ts';

export type EventType = 'add' | 'update' | 'delete' | 'resync';
export type EventHandler<T> = (obj: T, type: EventType) => void;
export type ListFn<T extends KubernetesObject> = () => Promise<KubernetesListObject<T>>;

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
  private readonly log: Logger;
  private readonly cache = new Map<string, T>();
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
    const list = async (): Promise<KubernetesListObject<T>> => {
      const l = await this.listFn();
      if (live()) this.replaceFromList(l.items ?? []);
      return l;
    };
    const lw = new ListWatch<T>(this.path, watch, list, false, this.labelSelector);
    lw.on('add', (o) => live() && this.upsert(o, gen));
    lw.on('update', (o) => live() && this.upsert(o, gen));
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

  private replaceFromList(items: T[]): void {
    this.stats.lists++;
    this.lastActivity = Date.now();
    const seen = new Set<string>();
    for (const o of items) {
      seen.add(keyOf(o));
      this.upsert(o);
    }
    for (const [k, o] of [...this.cache]) {
      if (!seen.has(k)) {
        this.cache.delete(k);
        this.emitCounted(o, 'delete');
      }
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.resolveSynced();
    }
  }

  private upsert(obj: T, gen?: number): void {
    if (gen !== undefined) this.delivered();
    const k = keyOf(obj);
    const old = this.cache.get(k);
    const rv = obj.metadata?.resourceVersion;
    if (old && rv !== undefined && old.metadata?.resourceVersion === rv) return;
    this.cache.set(k, obj);
    this.emitCounted(obj, old ? 'update' : 'add');
  }

  private remove(obj: T, gen?: number): void {
    if (gen !== undefined) this.delivered();
    const k = keyOf(obj);
    if (!this.cache.has(k)) return;
    this.cache.delete(k);
    this.emitCounted(obj, 'delete');
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
  log?: Logger;
}

function base(opts: ScopeOptions): Omit<InformerOptions<KubernetesObject>, 'kc' | 'path' | 'list'> {
  const { namespace: _ns, ...rest } = opts;
  return rest;
}

export type BenchmarkRunObject = KubernetesObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

export function benchmarkRunInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<BenchmarkRunObject> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const { namespace, labelSelector } = opts;
  const prefix = `/apis/${API_GROUP}/${API_VERSION}`;
  const path = namespace ? `${prefix}/namespaces/${namespace}/${BENCHMARKRUN_PLURAL}` : `${prefix}/${BENCHMARKRUN_PLURAL}`;
  const list = (): Promise<KubernetesListObject<BenchmarkRunObject>> =>
    namespace
      ? api.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, labelSelector })
      : api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: BENCHMARKRUN_PLURAL, labelSelector });
  return new Informer({ kc, path, list, name: 'benchmarkruns', ...base(opts) });
}

export function configMapInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<V1ConfigMap> {
  const api = kc.makeApiClient(CoreV1Api);
  const { namespace, labelSelector } = opts;
  const path = namespace ? `/api/v1/namespaces/${namespace}/configmaps` : '/api/v1/configmaps';
  const list = (): Promise<KubernetesListObject<V1ConfigMap>> =>
    namespace ? api.listNamespacedConfigMap({ namespace, labelSelector }) : api.listConfigMapForAllNamespaces({ labelSelector });
  return new Informer({ kc, path, list, name: 'configmaps', ...base(opts) });
}

export function jobInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<V1Job> {
  const api = kc.makeApiClient(BatchV1Api);
  const { namespace, labelSelector } = opts;
  const path = namespace ? `/apis/batch/v1/namespaces/${namespace}/jobs` : '/apis/batch/v1/jobs';
  const list = (): Promise<KubernetesListObject<V1Job>> =>
    namespace ? api.listNamespacedJob({ namespace, labelSelector }) : api.listJobForAllNamespaces({ labelSelector });
  return new Informer({ kc, path, list, name: 'jobs', ...base(opts) });
}

export function deploymentInformer(kc: KubeConfig, opts: ScopeOptions = {}): Informer<V1Deployment> {
  const api = kc.makeApiClient(AppsV1Api);
  const { namespace, labelSelector } = opts;
  const path = namespace ? `/apis/apps/v1/namespaces/${namespace}/deployments` : '/apis/apps/v1/deployments';
  const list = (): Promise<KubernetesListObject<V1Deployment>> =>
    namespace ? api.listNamespacedDeployment({ namespace, labelSelector }) : api.listDeploymentForAllNamespaces({ labelSelector });
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
