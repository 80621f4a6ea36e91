/**
 * What a load run records, and the statistics derived from it once it is over (`LoadRun`): one
 * outcome code per offered task, the per-task times in typed arrays, counts, windows, latency
 * summaries and per-target rows. Also the deterministic interleave of the task mix (`isCpuTask`).
 * The loops that fill it are `generator.ts` (open loop) and `closed.ts` (closed loop); the result
 * checks whose counts it carries are `verify.ts`.
 */
import { percentile, round } from '../../stats.ts';
import { roundNumbers } from '../measure.ts';
import { newCheckCounts, type CheckCounts } from './verify.ts';

export type LoadMode = 'tasks' | 'dispatch';

/** Per-task outcome codes (stored in `LoadRun.outcome`). */
export const OUTCOME = {
  pending: 0,
  ok: 1,
  rejected: 2,
  error: 3,
  timeout: 4,
  lost: 5,
  dropped: 6,
  /** Dispatch mode, between the 202 and the drain's verdict. Never left after `done` resolves. */
  accepted: 7,
  /** Answered as done, but the result failed the harness's check (`verify.ts`): never ok. */
  wrong: 8,
} as const;
export type OutcomeCode = (typeof OUTCOME)[keyof typeof OUTCOME];
export const OUTCOME_NAMES = ['pending', 'ok', 'rejected', 'error', 'timeout', 'lost', 'dropped', 'accepted', 'wrong'] as const;
export type OutcomeName = (typeof OUTCOME_NAMES)[number];

export interface TaskMix {
  io: number;
  cpu: number;
}

export interface LoadCounts {
  offered: number;
  sent: number;
  ok: number;
  rejected: number;
  error: number;
  timeout: number;
  lost: number;
  dropped: number;
  /** Dispatch mode: answered 202. */
  accepted: number;
  /** Answered (tasks: 200; dispatch: done) with a result that failed the harness's check. */
  wrong: number;
}

export interface LostDetail {
  failed: number;
  pending: number;
  unknown: number;
  unreachable: number;
}

export interface LoadWindow {
  index: number;
  startMs: number;
  endMs: number;
  /** Tasks scheduled in the window. */
  offered: number;
  /** Tasks answered ok (dispatch: accepted and later done) in the window, by answer time. */
  ok: number;
  /** ok per second. */
  throughput: number;
  /** Latency of those ok tasks (ms from scheduled time); null when none. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  rejected: number;
  /** error + timeout answered in the window. */
  errors: number;
  /** lost + dropped among the tasks scheduled in the window. */
  lost: number;
  /** Answers with a wrong result (`verify.ts`) answered in the window. */
  wrong: number;
}

/** The generator's lag over some of its sends (ms); all 0 when there were none (n = 0). */
export interface LagSummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface LatencySummary {
  n: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  mean: number | null;
  max: number | null;
}

/**
 * Deterministic interleave of the task mix (Bresenham): task i is CPU-bound iff
 * floor((i + 1) × cpu + phase) > floor(i × cpu + phase), so any n consecutive tasks hold
 * n × cpu CPU tasks, rounded one way or the other.
 */
export function isCpuTask(i: number, cpuFraction: number, phase = 0): boolean {
  if (cpuFraction <= 0) return false;
  if (cpuFraction >= 1) return true;
  return Math.floor((i + 1) * cpuFraction + phase) > Math.floor(i * cpuFraction + phase);
}

/** The record of one load run: counts, per-task arrays, and the statistics derived from them. */
export class LoadRun {
  readonly mode: LoadMode;
  /** Epoch ms of the schedule's time zero. */
  readonly startedAt: number;
  /** `performance.now()` of the schedule's time zero (to relate runs that overlap). */
  readonly t0: number;
  /** Planned schedule length, and when it really ended (earlier when stopped), ms. */
  readonly plannedMs: number;
  scheduleEndMs = 0;
  /** When the run was over (all answers in, dispatch drained), ms since start. */
  endMs = 0;
  readonly counts: LoadCounts = { offered: 0, sent: 0, ok: 0, rejected: 0, error: 0, timeout: 0, lost: 0, dropped: 0, accepted: 0, wrong: 0 };
  /** What the harness checked of the answers, and the mismatches by kind (`verify.ts`). */
  readonly checks: CheckCounts;
  readonly lostDetail: LostDetail = { failed: 0, pending: 0, unknown: 0, unreachable: 0 };
  /** HTTP statuses and error codes of the `error` outcomes. */
  readonly errorKinds: Record<string, number> = {};
  /** Target URLs seen (index = `target[i]`). */
  readonly targets: string[] = [];
  readonly idPrefix: string;
  /** Live ok counts per `bucketMs` of answer time (dispatch: per 202, counted when accepted). */
  readonly bucketMs: number;
  okBuckets: Int32Array;
  n = 0;
  schedMs: Float64Array;
  doneMs: Float64Array;
  /**
   * Generator lag (ms): open loop (`generator.ts`), actual send time minus scheduled time; closed
   * loop (`closed.ts`), how late the loop's own timer that led to the send ran. Never the system's
   * time: `lag.ts` holds the bound past which the generator was behind its schedule.
   */
  lagMs: Float32Array;
  outcome: Uint8Array;
  target: Uint16Array;
  /** Task kind as sent: 0 io, 1 cpu (digest not recomputed: outside the sample), 2 cpu (digest recomputed). */
  kind: Uint8Array;
  /**
   * Dispatch mode: end-to-end latency (scheduled send to done) when the coordinator reports
   * `acceptedAt` and `finishedAt` (its own clock, so no skew) in the query answer, else NaN.
   * The coordinator's figure is only believed within what the harness saw itself: it is never
   * less than the time to the 202 (nor, for an IO task, than its wait), nor more than the time to
   * the query answer that said `done` (clamped, and counted in `e2eClamped`).
   */
  e2eMs: Float64Array;
  /** Dispatch mode: coordinator-reported durations the harness's own times contradicted. */
  e2eClamped = 0;

  constructor(mode: LoadMode, plannedMs: number, capacity: number, bucketMs: number, idPrefix: string, cpuCheckEvery = 1) {
    this.mode = mode;
    this.checks = newCheckCounts(cpuCheckEvery);
    this.plannedMs = plannedMs;
    this.bucketMs = bucketMs;
    this.idPrefix = idPrefix;
    this.t0 = performance.now();
    this.startedAt = Date.now();
    const cap = Math.max(16, capacity);
    this.schedMs = new Float64Array(cap);
    this.doneMs = new Float64Array(cap);
    this.lagMs = new Float32Array(cap);
    this.outcome = new Uint8Array(cap);
    this.target = new Uint16Array(cap);
    this.kind = new Uint8Array(cap);
    this.e2eMs = new Float64Array(cap).fill(Number.NaN);
    this.okBuckets = new Int32Array(Math.ceil(plannedMs / bucketMs) + 64);
  }

  /** @internal grows the per-task arrays. */
  ensure(n: number): void {
    if (n <= this.schedMs.length) return;
    const cap = Math.max(n, this.schedMs.length * 2);
    const grow = <T extends Float64Array | Float32Array | Uint8Array | Uint16Array>(a: T, make: (c: number) => T): T => {
      const b = make(cap);
      b.set(a as never);
      return b;
    };
    this.schedMs = grow(this.schedMs, (c) => new Float64Array(c));
    this.doneMs = grow(this.doneMs, (c) => new Float64Array(c));
    this.lagMs = grow(this.lagMs, (c) => new Float32Array(c));
    this.outcome = grow(this.outcome, (c) => new Uint8Array(c));
    this.target = grow(this.target, (c) => new Uint16Array(c));
    this.kind = grow(this.kind, (c) => new Uint8Array(c));
    const e = new Float64Array(cap).fill(Number.NaN);
    e.set(this.e2eMs);
    this.e2eMs = e;
  }

  /** @internal */
  bumpBucket(doneMs: number): void {
    const b = Math.floor(doneMs / this.bucketMs);
    if (b >= this.okBuckets.length) {
      const nb = new Int32Array(Math.max(b + 64, this.okBuckets.length * 2));
      nb.set(this.okBuckets);
      this.okBuckets = nb;
    }
    if (b >= 0) this.okBuckets[b]!++;
  }

  /** Task id of task i. */
  taskId(i: number): string {
    return `${this.idPrefix}-${i}`;
  }

  outcomeName(i: number): OutcomeName {
    return OUTCOME_NAMES[this.outcome[i]!]!;
  }

  /** Ok tasks answered in [fromMs, toMs) (dispatch: accepted then, and done). */
  okBetween(fromMs = 0, toMs = Number.POSITIVE_INFINITY): number {
    let c = 0;
    for (let i = 0; i < this.n; i++) {
      if (this.outcome[i] === OUTCOME.ok && this.doneMs[i]! >= fromMs && this.doneMs[i]! < toMs) c++;
    }
    return c;
  }

  /** Ok answers per second in [fromMs, toMs) (default: the whole schedule). */
  throughput(fromMs = 0, toMs = this.scheduleEndMs): number {
    const span = toMs - fromMs;
    return span > 0 ? (this.okBetween(fromMs, toMs) * 1000) / span : 0;
  }

  /** Latencies (ms from scheduled time) of the ok tasks answered in [fromMs, toMs), sorted. */
  latencies(fromMs = 0, toMs = Number.POSITIVE_INFINITY, which: 'answer' | 'e2e' = 'answer'): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.n; i++) {
      if (this.outcome[i] !== OUTCOME.ok) continue;
      const d = this.doneMs[i]!;
      if (d < fromMs || d >= toMs) continue;
      const v = which === 'e2e' ? this.e2eMs[i]! : d - this.schedMs[i]!;
      if (!Number.isNaN(v)) out.push(v);
    }
    return out.sort((a, b) => a - b);
  }

  latencySummary(fromMs = 0, toMs = Number.POSITIVE_INFINITY, which: 'answer' | 'e2e' = 'answer'): LatencySummary {
    return summarizeSorted(this.latencies(fromMs, toMs, which));
  }

  /** Whether the dispatch agents reported timings, so `e2e` latencies exist. */
  hasE2e(): boolean {
    for (let i = 0; i < this.n; i++) if (!Number.isNaN(this.e2eMs[i]!)) return true;
    return false;
  }

  /** Counts of outcomes among the tasks *scheduled* in [fromMs, toMs). */
  countsBetween(fromMs: number, toMs: number): Record<OutcomeName, number> {
    const c: Record<OutcomeName, number> = { pending: 0, ok: 0, rejected: 0, error: 0, timeout: 0, lost: 0, dropped: 0, accepted: 0, wrong: 0 };
    for (let i = 0; i < this.n; i++) {
      const s = this.schedMs[i]!;
      if (s >= fromMs && s < toMs) c[OUTCOME_NAMES[this.outcome[i]!]!]++;
    }
    return c;
  }

  /**
   * Fixed windows of `windowMs` over [fromMs, toMs) (default the schedule). Answers are placed
   * by answer time, offered/lost by scheduled time. A last partial window shorter than half a
   * window is merged into the one before.
   */
  windows(windowMs: number, fromMs = 0, toMs = this.scheduleEndMs, which: 'answer' | 'e2e' = 'answer'): LoadWindow[] {
    const span = toMs - fromMs;
    if (!(span > 0) || !(windowMs > 0)) return [];
    let count = Math.max(1, Math.floor(span / windowMs));
    if (span - count * windowMs >= windowMs / 2) count++;
    const bounds = (w: number): [number, number] => [fromMs + w * windowMs, w === count - 1 ? toMs : fromMs + (w + 1) * windowMs];
    const idx = (t: number): number => {
      if (t < fromMs || t >= toMs) return -1;
      return Math.min(count - 1, Math.floor((t - fromMs) / windowMs));
    };
    const lat: number[][] = Array.from({ length: count }, () => []);
    const offered = new Int32Array(count);
    const ok = new Int32Array(count);
    const rej = new Int32Array(count);
    const err = new Int32Array(count);
    const lost = new Int32Array(count);
    const wrong = new Int32Array(count);
    for (let i = 0; i < this.n; i++) {
      const o = this.outcome[i]!;
      const ws = idx(this.schedMs[i]!);
      if (ws >= 0) {
        offered[ws]!++;
        if (o === OUTCOME.lost || o === OUTCOME.dropped) lost[ws]!++;
      }
      const wd = idx(this.doneMs[i]!);
      if (wd < 0) continue;
      if (o === OUTCOME.ok) {
        ok[wd]!++;
        const v = which === 'e2e' ? this.e2eMs[i]! : this.doneMs[i]! - this.schedMs[i]!;
        if (!Number.isNaN(v)) lat[wd]!.push(v);
      } else if (o === OUTCOME.rejected) rej[wd]!++;
      else if (o === OUTCOME.error || o === OUTCOME.timeout) err[wd]!++;
      else if (o === OUTCOME.wrong) wrong[wd]!++;
    }
    const out: LoadWindow[] = [];
    for (let w = 0; w < count; w++) {
      const [s, e] = bounds(w);
      const l = lat[w]!.sort((a, b) => a - b);
      out.push({
        index: w,
        startMs: s,
        endMs: e,
        offered: offered[w]!,
        ok: ok[w]!,
        throughput: (ok[w]! * 1000) / (e - s),
        p50: l.length ? percentile(l, 50) : null,
        p95: l.length ? percentile(l, 95) : null,
        p99: l.length ? percentile(l, 99) : null,
        rejected: rej[w]!,
        errors: err[w]!,
        lost: lost[w]!,
        wrong: wrong[w]!,
      });
    }
    return out;
  }

  /** Generator lag (`lagMs`) of the sent tasks, ms. */
  get lag(): { p50: number; p99: number; max: number } {
    const { p50, p99, max } = this.lagBetween();
    return { p50, p99, max };
  }

  /** Generator lag (`lagMs`) of the tasks sent (not dropped) with a scheduled time in [fromMs, toMs), ms; n = those tasks. */
  lagBetween(fromMs = 0, toMs = Number.POSITIVE_INFINITY): LagSummary {
    const a: number[] = [];
    for (let i = 0; i < this.n; i++) {
      const s = this.schedMs[i]!;
      if (this.outcome[i] !== OUTCOME.dropped && s >= fromMs && s < toMs) a.push(this.lagMs[i]!);
    }
    a.sort((x, y) => x - y);
    return a.length ? { n: a.length, p50: percentile(a, 50), p99: percentile(a, 99), max: a[a.length - 1]! } : { n: 0, p50: 0, p99: 0, max: 0 };
  }

  /** Outcome counts per target URL. */
  perTarget(): { url: string; sent: number; ok: number; rejected: number; errors: number; lost: number; wrong: number }[] {
    const rows = this.targets.map((url) => ({ url, sent: 0, ok: 0, rejected: 0, errors: 0, lost: 0, wrong: 0 }));
    for (let i = 0; i < this.n; i++) {
      const o = this.outcome[i]!;
      if (o === OUTCOME.dropped) continue;
      const r = rows[this.target[i]!]!;
      r.sent++;
      if (o === OUTCOME.ok) r.ok++;
      else if (o === OUTCOME.rejected) r.rejected++;
      else if (o === OUTCOME.lost) r.lost++;
      else if (o === OUTCOME.wrong) r.wrong++;
      else if (o === OUTCOME.error || o === OUTCOME.timeout) r.errors++;
    }
    return rows;
  }

  /** Plain-data summary for result documents. */
  summary(): Record<string, unknown> {
    const lat = this.latencySummary();
    return {
      mode: this.mode,
      scheduleMs: round(this.scheduleEndMs, 3),
      endMs: round(this.endMs, 3),
      counts: { ...this.counts },
      ...(this.mode === 'dispatch' ? { lostDetail: { ...this.lostDetail } } : {}),
      ...(Object.keys(this.errorKinds).length ? { errorKinds: { ...this.errorKinds } } : {}),
      checks: checksSummary(this.checks),
      ...(this.e2eClamped > 0 ? { e2eClamped: this.e2eClamped } : {}),
      throughput: round(this.throughput(), 3),
      latencyMs: roundNumbers(lat, 3),
      generatorLagMs: roundNumbers(this.lag, 3),
    };
  }
}

/** The check counts for a result document: the mismatch kinds only when there were any. */
export function checksSummary(c: CheckCounts): Record<string, unknown> {
  const kinds = Object.fromEntries(Object.entries(c.mismatch).filter(([, v]) => v > 0));
  return {
    checked: c.checked,
    cpuDigestsRecomputed: c.cpuChecked,
    cpuDigestsNotRecomputed: c.cpuUnchecked,
    cpuCheckEvery: c.cpuCheckEvery,
    ...(Object.keys(kinds).length ? { mismatch: kinds } : {}),
    executors: c.executors.size,
  };
}

function summarizeSorted(l: number[]): LatencySummary {
  if (l.length === 0) return { n: 0, p50: null, p95: null, p99: null, mean: null, max: null };
  let s = 0;
  for (const v of l) s += v;
  return { n: l.length, p50: percentile(l, 50), p95: percentile(l, 95), p99: percentile(l, 99), mean: s / l.length, max: l[l.length - 1]! };
}
