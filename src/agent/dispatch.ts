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

/**
 * The coordinator's record of every task it accepted. Finished entries are kept for
 * `retentionMs` (30 min by default, longer than a full-mode sustained run) and at most
 * `maxFinished` of them (1,000,000; about 200 bytes each), the oldest dropped first, so the
 * runner can query them after its drain; pending ones are kept forever, since a task accepted and
 * never done is exactly what the runner must be able to see.
 * The ledger lives in the coordinator's memory: if the coordinator itself dies, the tasks it
 * accepted are lost (the runner should dispatch through agents it does not kill).
 */
export class Ledger {
  private readonly entries = new Map<string, LedgerEntry>();
  private readonly retentionMs: number;
  private readonly maxFinished: number;
  private readonly now: () => number;
  pending = 0;

  constructor(opts: { retentionMs?: number; maxFinished?: number; now?: () => number } = {}) {
    this.retentionMs = opts.retentionMs ?? 1_800_000;
    this.maxFinished = opts.maxFinished ?? 1_000_000;
    this.now = opts.now ?? Date.now;
  }

  get(id: string): LedgerEntry | undefined {
    return this.entries.get(id);
  }

  get size(): number {
    return this.entries.size;
  }

  accept(task: TaskRequest): LedgerEntry {
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
    this.pending++;
    return e;
  }

  finish(e: LedgerEntry, state: 'done' | 'failed', result: string | null, error: string | null): void {
    if (e.state !== 'pending') return;
    e.state = state;
    e.result = result;
    e.error = error;
    e.finishedAt = this.now();
    e.task = null;
    this.pending--;
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

  /**
   * Drop finished entries older than the retention, and the oldest finished ones beyond
   * `maxFinished`. Map order is insertion (acceptance) order.
   */
  sweep(): void {
    const cutoff = this.now() - this.retentionMs;
    let excess = this.entries.size - this.pending - this.maxFinished;
    for (const e of this.entries.values()) {
      if (e.acceptedAt > cutoff && excess <= 0) break;
      if (e.state !== 'pending' && (e.finishedAt <= cutoff || excess > 0)) {
        this.entries.delete(e.id);
        excess--;
      }
    }
  }
}
