/**
 * Bounds for a batch of Prometheus queries (the operator's observations of a finish,
 * `src/operator/observe.ts`; the scrape source of 3.2/3.5, `src/bench/monitoring/prometheus-source.ts`):
 *
 * - **concurrency**: at most `concurrency` queries in flight; the others wait in a FIFO queue (a
 *   step's 64 extra queries no longer hit Prometheus at once);
 * - **one total deadline**: `deadlineMs` from construction for the whole batch, not per query. When
 *   it passes, `signal` aborts with a `DeadlineError` (the client turns that into a `timeout` error
 *   naming the query), queries still queued are refused with the same error without being sent,
 *   and `run` refuses new ones. A server that never answers therefore costs one deadline, whatever
 *   the number of queries.
 *
 * An optional caller `signal` (a cancelled run) aborts the batch too, with the caller's reason.
 * The deadline's timer is unref'd (it never keeps a process alive); `close()` clears it.
 */

/** The reason a batch's `signal` aborts with when its deadline passes. */
export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineError';
  }
}

export interface QueryBoundsOptions {
  /** At most this many queries in flight (an integer, 1 … 256). */
  concurrency: number;
  /** The one deadline of the whole batch (ms, an integer, 1 … 3 600 000). */
  deadlineMs: number;
  /** What the batch is, for the deadline's message (e.g. "the observations of run x"). */
  what: string;
  /** A caller's signal (cancellation); aborts the batch with its reason. */
  signal?: AbortSignal | undefined;
}

function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Seconds when whole, else ms: `60 s`, `1500 ms`. */
export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

export class QueryBounds {
  readonly concurrency: number;
  readonly deadlineMs: number;
  /** Aborts when the deadline passes (reason: a `DeadlineError`) or the caller's signal aborts. */
  readonly signal: AbortSignal;
  readonly #own = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #queue: (() => void)[] = [];
  #active = 0;
  #peak = 0;

  constructor(opts: QueryBoundsOptions) {
    this.concurrency = checkInt('concurrency', opts.concurrency, 1, 256);
    this.deadlineMs = checkInt('deadlineMs', opts.deadlineMs, 1, 3_600_000);
    const reason = new DeadlineError(`${opts.what}: the ${formatMs(this.deadlineMs)} deadline for all its Prometheus queries passed`);
    this.#timer = setTimeout(() => this.#own.abort(reason), this.deadlineMs);
    this.#timer.unref();
    this.signal = opts.signal ? AbortSignal.any([this.#own.signal, opts.signal]) : this.#own.signal;
  }

  /** True once the deadline passed (or the caller aborted). */
  get expired(): boolean {
    return this.signal.aborted;
  }

  /** The abort reason as a message (undefined while not aborted). */
  get reason(): string | undefined {
    if (!this.signal.aborted) return undefined;
    const r: unknown = this.signal.reason;
    return r instanceof Error ? r.message : String(r);
  }

  /** The most queries that were in flight at once so far. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * Runs `fn` when a slot is free, with the batch's signal (pass it to the client). Rejects with
   * the abort reason, without calling `fn`, when the batch is aborted before a slot is free.
   */
  async run<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      if (this.signal.aborted) throw this.signal.reason;
      return await fn(this.signal);
    } finally {
      this.#release();
    }
  }

  /** Clears the deadline's timer (the batch is done). */
  close(): void {
    clearTimeout(this.#timer);
  }

  async #acquire(): Promise<void> {
    if (this.signal.aborted) throw this.signal.reason;
    if (this.#active < this.concurrency) {
      this.#active++;
      this.#peak = Math.max(this.#peak, this.#active);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#queue.indexOf(granted);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(this.signal.reason);
      };
      // Called by #release with the slot handed over (#active unchanged).
      const granted = (): void => {
        this.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.#queue.push(granted);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#active--;
  }
}
