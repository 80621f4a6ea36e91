/**
 * Dispatch: the coordinator's ledger and the executor choice. Pure logic (unit-tested); the
 * forwarding itself is in `coordinator.ts`.
 *
 * Executor choice: least in flight, ties broken round robin. The load of a member is what the
 * coordinator knows best: for itself its real in-flight count; for a peer the larger of the tasks
 * this coordinator has forwarded to it and not seen answered, and the in-flight count the peer
 * reported in its last gossip message (if recent). Taking the larger avoids counting our own
 * forwards twice. Members at or over their capacity are skipped; if all are, the dispatch is
 * answered 429 and never accepted.
 */
import { LimitExceeded, MAX_LEDGER_ENTRIES, MAX_LEDGER_RESULT_CHARS, MAX_LEDGER_TOTAL_CHARS } from './limits.ts';
import type { DispatchState, DispatchTask, TaskRequest } from './types.ts';

export interface Candidate {
  id: string;
  load: number;
  capacity: number;
}

/**
 * Pick the least-loaded candidate not in `exclude` (falls back to excluded ones when nothing
 * else is left, since a retry on a member that failed once beats giving up). Ties: the tied
 * candidates sorted by id, index `rr` modulo their count. Returns null when all are saturated.
 */
export function chooseExecutor(candidates: readonly Candidate[], rr: number, exclude?: ReadonlySet<string>): string | null {
  const open = candidates.filter((c) => c.load < c.capacity);
  let pool = exclude && exclude.size > 0 ? open.filter((c) => !exclude.has(c.id)) : open;
  if (pool.length === 0) pool = open;
  if (pool.length === 0) return null;
  let min = Infinity;
  for (const c of pool) if (c.load < min) min = c.load;
  const tied = pool.filter((c) => c.load === min).map((c) => c.id);
  tied.sort();
  return tied[Math.abs(rr) % tied.length]!;
}

export interface LedgerEntry {
  id: string;
  state: Exclude<DispatchState, 'unknown'>;
  executor: string | null;
  attempts: number;
  result: string | null;
  error: string | null;
  /** Epoch ms of acceptance and of the final outcome (0 while pending). */
  acceptedAt: number;
  finishedAt: number;
  /** The task itself, while it may still run (dropped once finished, to keep the ledger small). */
  task: TaskRequest | null;
}

/** Caps of one ledger (defaults: src/agent/limits.ts; tests pass smaller ones). */
export interface LedgerOptions {
  /** Finished entries are dropped this long after they finished (default 30 min). */
  retentionMs?: number;
  /** Entries, pending and finished (default MAX_LEDGER_ENTRIES). */
  maxEntries?: number;
  /** Characters of ids, pending payloads, results and errors (default MAX_LEDGER_TOTAL_CHARS). */
  maxTotalChars?: number;
  /** One result (default MAX_LEDGER_RESULT_CHARS). */
  maxResultChars?: number;
  now?: () => number;
}

/**
 * The coordinator's record of every task it accepted. Bounded (src/agent/limits.ts): at most
 * `maxEntries` entries and `maxTotalChars` characters (ids, payloads of pending tasks, results and
 * errors of finished ones). Finished entries are kept for `retentionMs` (30 min, longer than a
 * full-mode sustained run and its drain), and when a new task needs room the entry that finished
 * first is evicted first; pending ones are never evicted, since a task accepted and never done is
 * exactly what the runner must be able to see. When only pending entries are left, `accept`
 * throws `LimitExceeded` (429, nothing recorded: the task was not accepted). A result longer than
 * `maxResultChars` is not kept: the task is `failed` with an error saying so.
 * The ledger lives in the coordinator's memory: if the coordinator itself dies, the tasks it
 * accepted are lost (the runner should dispatch through agents it does not kill).
 */
export class Ledger {
  private readonly entries = new Map<string, LedgerEntry>();
  /** Finished entries in the order they finished (a queue: `head` is its first live index). */
  private finished: LedgerEntry[] = [];
  private head = 0;
  private chars = 0;
  private readonly retentionMs: number;
  private readonly maxEntries: number;
  private readonly maxTotalChars: number;
  private readonly maxResultChars: number;
  private readonly now: () => number;
  pending = 0;

  constructor(opts: LedgerOptions = {}) {
    this.retentionMs = opts.retentionMs ?? 1_800_000;
    this.maxEntries = opts.maxEntries ?? MAX_LEDGER_ENTRIES;
    this.maxTotalChars = opts.maxTotalChars ?? MAX_LEDGER_TOTAL_CHARS;
    this.maxResultChars = opts.maxResultChars ?? MAX_LEDGER_RESULT_CHARS;
    this.now = opts.now ?? Date.now;
  }

  get(id: string): LedgerEntry | undefined {
    return this.entries.get(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Characters held (ids, pending payloads, results, errors). */
  get totalChars(): number {
    return this.chars;
  }

  /** Record a task as pending. Throws `LimitExceeded` (429) when no finished entry can make room. */
  accept(task: TaskRequest): LedgerEntry {
    const size = task.id.length + (task.payload?.length ?? 0);
    const old = this.entries.get(task.id);
    if (old) this.remove(old);
    this.makeRoom(1, size);
    if (this.entries.size + 1 > this.maxEntries) {
      throw new LimitExceeded(429, 'ledgerEntries', this.entries.size + 1, this.maxEntries, `dispatch ledger entries (all ${this.pending} pending)`);
    }
    if (this.chars + size > this.maxTotalChars) {
      throw new LimitExceeded(429, 'ledgerTotalChars', this.chars + size, this.maxTotalChars, `dispatch ledger characters (${this.pending} tasks pending)`);
    }
    const e: LedgerEntry = {
      id: task.id,
      state: 'pending',
      executor: null,
      attempts: 0,
      result: null,
      error: null,
      acceptedAt: this.now(),
      finishedAt: 0,
      task,
    };
    this.entries.set(task.id, e);
    this.chars += size;
    this.pending++;
    return e;
  }

  /**
   * Record a task's outcome; returns the state recorded: `failed` when a `done` result is longer
   * than `maxResultChars` (the caller counts what the ledger says, never what it asked for), the
   * entry's state unchanged when it was no longer pending.
   */
  finish(e: LedgerEntry, state: 'done' | 'failed', result: string | null, error: string | null): DispatchState {
    if (e.state !== 'pending') return e.state;
    if (result !== null && result.length > this.maxResultChars) {
      state = 'failed';
      error = `result too large: ${result.length} characters is over the limit ledgerResultChars = ${this.maxResultChars}`;
      result = null;
    }
    const live = this.entries.get(e.id) === e;
    if (live) this.chars += (result?.length ?? 0) + (error?.length ?? 0) - (e.task?.payload?.length ?? 0);
    e.state = state;
    e.result = result;
    e.error = error;
    e.finishedAt = this.now();
    e.task = null;
    // An entry no longer in the map (replaced by `accept` of the same id) left the counts then.
    if (!live) return state;
    this.pending--;
    this.finished.push(e);
    this.makeRoom(0, 0);
    return state;
  }

  /**
   * A pending task that will never run (dropped on purpose: a planted `loseAccepted` fault or the
   * `lost-tasks` defect): its payload is released (`task = null`, its characters leave the
   * ledger's count), and it stays `pending`, as a task an agent lost is to its runner.
   */
  abandon(e: LedgerEntry): void {
    if (e.state !== 'pending' || e.task === null) return;
    if (this.entries.get(e.id) === e) this.chars -= e.task.payload?.length ?? 0;
    e.task = null;
  }

  view(id: string): DispatchTask {
    const e = this.entries.get(id);
    if (!e) return { id, state: 'unknown', executor: null, attempts: 0, result: null, error: null };
    return {
      id,
      state: e.state,
      executor: e.executor,
      attempts: e.attempts,
      result: e.result,
      error: e.error,
      acceptedAt: e.acceptedAt,
      finishedAt: e.state === 'pending' ? null : e.finishedAt,
    };
  }

  /** Drop finished entries older than the retention (the queue is in finish order). */
  sweep(): void {
    const cutoff = this.now() - this.retentionMs;
    while (this.head < this.finished.length && this.finished[this.head]!.finishedAt <= cutoff) this.evictOldest();
    this.compact();
  }

  /** Evict finished entries, oldest first, until `entries` more entries and `chars` more characters fit. */
  private makeRoom(entries: number, chars: number): void {
    while (this.head < this.finished.length && (this.entries.size + entries > this.maxEntries || this.chars + chars > this.maxTotalChars)) {
      this.evictOldest();
    }
    this.compact();
  }

  private evictOldest(): void {
    const e = this.finished[this.head]!;
    this.finished[this.head++] = undefined as unknown as LedgerEntry;
    if (this.entries.get(e.id) === e) this.remove(e);
  }

  /** Forget an entry (its characters; a pending one leaves the pending count). */
  private remove(e: LedgerEntry): void {
    this.entries.delete(e.id);
    this.chars -= e.id.length + (e.state === 'pending' ? (e.task?.payload?.length ?? 0) : (e.result?.length ?? 0) + (e.error?.length ?? 0));
    if (e.state === 'pending') this.pending--;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.finished.length) {
      this.finished = this.finished.slice(this.head);
      this.head = 0;
    }
  }
}
