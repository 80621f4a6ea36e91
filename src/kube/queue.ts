/**
 * A work queue of string keys (`namespace/name`), shaped like client-go's rate-limited work queue
 * (what controller-runtime uses):
 *
 * - a key added while it is already waiting is merged (it waits once);
 * - a key is never handed to two workers at once: a key added while it is being processed is
 *   marked dirty and queued again when the worker calls `done(key)`;
 * - `addRateLimited(key)` re-adds after a per-key exponential backoff (`baseDelayMs * 2^failures`,
 *   capped at `maxDelayMs`, plus up to `jitter` of it at random, never over the cap);
 *   `forget(key)` clears the key's failures after a success;
 * - `addAfter(key, ms)`: delayed add; several delays for the same key keep the earliest;
 * - `run(handler, concurrency)` runs workers over different keys in parallel: a handler that
 *   resolves forgets the key (and re-adds it after `requeueAfterMs` when it asks for it), one that
 *   throws re-adds it with backoff;
 * - `shutdown({ drain })`: stop accepting keys, cancel delayed adds, let the workers finish the key
 *   they hold (and, with `drain`, every key already waiting), then resolve.
 * - `run(handler, { signal })`: the signal (a leadership term) is handed to every handler call, and
 *   when it fires the queue shuts down without draining: no key is handed out after it, and a
 *   handler that fails because of it is not retried.
 *
 * Time goes through an injectable `Clock` so the unit tests are deterministic.
 */

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface QueueOptions {
  /** Name used in metrics (`workqueue_depth{name}`) and logs. */
  name?: string;
  /** First retry delay after a failure (default 5 ms). */
  baseDelayMs?: number;
  /** Cap on the retry delay (default 5 min = 300 000 ms). */
  maxDelayMs?: number;
  /** Random extra delay as a fraction of the backoff delay, 0..1 (default 0.1). */
  jitter?: number;
  clock?: Clock;
  /** Source of randomness for the jitter, [0, 1) (default Math.random). */
  random?: () => number;
}

/** What a handler may return: nothing (done), or ask to be called again after a while. */
export interface HandlerResult {
  requeueAfterMs?: number;
}
/** `signal`: the one given to `run` (never aborted when none was). */
export type Handler = (key: string, signal: AbortSignal) => Promise<void | HandlerResult | undefined>;

export type Outcome = 'success' | 'requeue_after' | 'error';
export interface RunOptions {
  /** Workers: at most this many different keys are processed at once (default 1). */
  concurrency?: number;
  /** Called after every handler call (metrics, logs). */
  onDone?: (key: string, outcome: Outcome, seconds: number, error?: unknown) => void;
  /** Handed to each handler call; when it fires, the queue shuts down (no drain). */
  signal?: AbortSignal;
}

export class WorkQueue {
  readonly name: string;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly jitter: number;
  private readonly clock: Clock;
  private readonly random: () => number;

  /** Keys waiting, in order. */
  private readonly queue: string[] = [];
  /** Keys that need processing (waiting, or re-added while processing). */
  private readonly dirty = new Set<string>();
  /** Keys a worker holds. */
  private readonly processing = new Set<string>();
  /** Delayed adds: fire time and timer per key. */
  private readonly delayed = new Map<string, { at: number; handle: unknown }>();
  private readonly failures = new Map<string, number>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private draining = false;
  private workers: Promise<void>[] = [];

  constructor(opts: QueueOptions = {}) {
    this.name = opts.name ?? 'queue';
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 300_000;
    this.jitter = opts.jitter ?? 0.1;
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    if (!(this.baseDelayMs > 0) || !(this.maxDelayMs >= this.baseDelayMs)) throw new Error('queue: need 0 < baseDelayMs <= maxDelayMs');
    if (!(this.jitter >= 0 && this.jitter <= 1)) throw new Error('queue: jitter must be within 0..1');
  }

  /** Keys waiting to be handed out (the `workqueue_depth` gauge); not those being processed. */
  depth(): number {
    return this.queue.length;
  }
  /** Keys held by workers right now. */
  inFlight(): number {
    return this.processing.size;
  }
  /** Keys with a delayed add pending. */
  pendingDelayed(): number {
    return this.delayed.size;
  }
  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return; // already waiting (or re-marked while processing): merged
    this.dirty.add(key);
    if (this.processing.has(key)) return; // queued again by done()
    this.push(key);
  }

  /** Adds the key after `ms`; an earlier pending delayed add for the key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing) {
      if (existing.at <= at) return;
      this.clock.clearTimeout(existing.handle);
    }
    const handle = this.clock.setTimeout(() => {
      const cur = this.delayed.get(key);
      if (cur?.handle !== handle) return;
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, handle });
  }

  /** The delay the next failure of `key` gets, and counts the failure. */
  nextBackoff(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity for large n; min() keeps the cap.
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    return Math.min(this.maxDelayMs, delay + delay * this.jitter * this.random());
  }

  /** Re-adds the key after its backoff delay (one more failure counted). Returns the delay. */
  addRateLimited(key: string): number {
    const ms = this.nextBackoff(key);
    this.addAfter(key, ms);
    return ms;
  }

  /** Clears the key's failure count (after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }
  /** How many failures in a row the key has had. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Hands out the next key; the caller must call `done(key)` when finished. Resolves undefined
   * once the queue is shut down (and, when draining, empty).
   */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks the key finished; if it was added meanwhile, it waits again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      if (this.shuttingDown && !this.draining) {
        this.dirty.delete(key);
        return;
      }
      this.push(key);
    }
  }

  /**
   * Starts `concurrency` workers calling `handler` for each key. Resolves when the queue has been
   * shut down and every worker has stopped.
   */
  run(handler: Handler, opts: RunOptions = {}): Promise<void> {
    const n = Math.max(1, Math.floor(opts.concurrency ?? 1));
    const signal = opts.signal ?? new AbortController().signal;
    if (opts.signal) {
      const stop = (): void => void this.shutdown({ drain: false });
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    }
    for (let i = 0; i < n; i++) this.workers.push(this.worker(handler, opts, signal));
    return Promise.all(this.workers).then(() => undefined);
  }

  /**
   * Stops accepting keys and cancels delayed adds. With `drain`, waiting keys are still processed;
   * without it they are dropped. Resolves when the workers started by `run` have returned.
   */
  async shutdown(opts: { drain?: boolean } = {}): Promise<void> {
    this.shuttingDown = true;
    this.draining = !!opts.drain;
    for (const { handle } of this.delayed.values()) this.clock.clearTimeout(handle);
    this.delayed.clear();
    if (!this.draining) {
      for (const k of this.queue) this.dirty.delete(k);
      this.queue.length = 0;
    }
    // Waiters exist only while nothing waits in the queue: wake them to return.
    this.wakeAll();
    await Promise.all(this.workers);
  }

  private async worker(handler: Handler, opts: RunOptions, signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.get();
      if (key === undefined) return;
      const t0 = performance.now();
      let outcome: Outcome = 'success';
      let error: unknown;
      try {
        const r = await handler(key, signal);
        this.forget(key);
        if (r && typeof r.requeueAfterMs === 'number' && r.requeueAfterMs >= 0) {
          outcome = 'requeue_after';
          this.addAfter(key, r.requeueAfterMs);
        }
      } catch (e) {
        outcome = 'error';
        error = e;
        this.addRateLimited(key);
      } finally {
        this.done(key);
      }
      try {
        opts.onDone?.(key, outcome, (performance.now() - t0) / 1000, error);
      } catch {
        // an observer's failure must not stop the worker
      }
    }
  }

  private push(key: string): void {
    const w = this.waiters.shift();
    if (w) {
      this.dirty.delete(key);
      this.processing.add(key);
      w(key);
    } else {
      this.queue.push(key);
    }
  }

  private take(): string | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}
