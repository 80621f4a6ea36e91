/**
 * Open-loop load generator for the agent contract's task endpoints.
 *
 * Arrivals follow a fixed schedule (task i is due at a time computed from the rate alone), not the
 * answers: a slow system does not slow the generator down, so queueing shows up in the latencies
 * instead of being hidden ("coordinated omission"). Every latency is measured from the task's
 * *scheduled* send time, so a generator that falls behind (a stalled event loop) is charged to the
 * system's latency rather than silently dropped; the generator's own lag is reported separately
 * (`LoadRun.lag`) so a run whose client could not keep up is visible as such.
 *
 * Two modes:
 * - `tasks`: `POST /v1/tasks` on the targets round robin; the answer is the completion
 *   (200 ok, 429 rejected, anything else an error, no answer within `timeoutMs` a timeout).
 * - `dispatch`: `POST /v1/dispatch`; 202 means the task is accepted (its latency is the time to
 *   acceptance). After the schedule, the accepted tasks are looked up with
 *   `POST /v1/dispatch/query` on the coordinator that accepted them until all are `done`, or
 *   the drain deadline passes: an accepted task that is not `done` by then (`failed`, still
 *   `pending`, `unknown` to its coordinator, or its coordinator unreachable) is *lost*.
 *
 * Each offered task ends with exactly one outcome, so
 * `offered = ok + rejected + error + timeout + lost + dropped` always holds (`dropped`: not sent
 * because `maxOutstanding` requests were already open, a client-side cap that is reported, not hidden).
 *
 * The task mix is interleaved deterministically (Bresenham: after n tasks, exactly
 * round(n × cpu) are CPU tasks, spread evenly) with a seeded phase, and payloads come from a seeded
 * PRNG, so two runs with the same seed send the same tasks.
 *
 * Cheap per request: one keep-alive connection pool, one short JSON string per task, outcomes and
 * times in typed arrays; windows and percentiles are computed once, after the run.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { mulberry32 } from '../prng.ts';
import { percentile } from '../stats.ts';

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
} as const;
export type OutcomeCode = (typeof OUTCOME)[keyof typeof OUTCOME];
const OUTCOME_NAMES = ['pending', 'ok', 'rejected', 'error', 'timeout', 'lost', 'dropped', 'accepted'] as const;
export type OutcomeName = (typeof OUTCOME_NAMES)[number];

export interface TaskMix {
  io: number;
  cpu: number;
}

export interface LoadOptions {
  /** Base URLs of the agents (e.g. `http://127.1.0.2:41234`), used round robin. */
  targets: readonly string[];
  /** Offered tasks per second: a constant, or a function of the elapsed schedule time (ms). */
  rate: number | ((elapsedMs: number) => number);
  /** Length of the arrival schedule (ms). */
  durationMs: number;
  mode?: LoadMode;
  /** Fractions of I/O-bound and CPU-bound tasks (default all I/O). */
  mix?: TaskMix;
  ioMs?: number;
  cpuRounds?: number;
  /** Open requests at most; an arrival beyond it is `dropped` (default 20000). */
  maxOutstanding?: number;
  /** A request without an answer after this long is a `timeout` (default 15000 ms). */
  timeoutMs?: number;
  /** Dispatch mode: how long after the schedule ends accepted tasks may take to be `done` (default 10000 ms). */
  drainMs?: number;
  /** Dispatch mode: interval between completion queries while draining (default 200 ms). */
  pollMs?: number;
  /** Granularity of the live per-bucket counters (`okBuckets`), default 50 ms. */
  bucketMs?: number;
  seed?: number;
  /** Prefix of task ids; default unique per run (agents deduplicate ids for 60 s). */
  idPrefix?: string;
  signal?: AbortSignal;
  /** Called as each task gets its (first) outcome; `accepted` in dispatch mode. Keep it cheap. */
  onResult?: (ev: TaskEvent) => void;
}

export interface TaskEvent {
  index: number;
  outcome: OutcomeName;
  /** Scheduled send time and answer time, ms since the run's start. */
  schedMs: number;
  doneMs: number;
  target: string;
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

interface Target {
  url: string;
  hostname: string;
  port: number;
}

function parseTarget(url: string): Target {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`load: only http targets are supported, got ${url}`);
  return { url: u.origin, hostname: u.hostname, port: Number(u.port || 80) };
}

let runCounter = 0;

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
  readonly counts: LoadCounts = { offered: 0, sent: 0, ok: 0, rejected: 0, error: 0, timeout: 0, lost: 0, dropped: 0, accepted: 0 };
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
  /** Generator lag: actual send time minus scheduled time (ms). */
  lagMs: Float32Array;
  outcome: Uint8Array;
  target: Uint16Array;
  /**
   * Dispatch mode: end-to-end latency (scheduled send to done) when the coordinator reports
   * `acceptedAt` and `finishedAt` (its own clock, so no skew) in the query answer, else NaN.
   */
  e2eMs: Float64Array;

  constructor(mode: LoadMode, plannedMs: number, capacity: number, bucketMs: number, idPrefix: string) {
    this.mode = mode;
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
    const c: Record<OutcomeName, number> = { pending: 0, ok: 0, rejected: 0, error: 0, timeout: 0, lost: 0, dropped: 0, accepted: 0 };
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
      });
    }
    return out;
  }

  /** Generator lag (send time minus scheduled time) of the sent tasks, ms. */
  get lag(): { p50: number; p99: number; max: number } {
    const a: number[] = [];
    for (let i = 0; i < this.n; i++) if (this.outcome[i] !== OUTCOME.dropped) a.push(this.lagMs[i]!);
    a.sort((x, y) => x - y);
    return a.length ? { p50: percentile(a, 50), p99: percentile(a, 99), max: a[a.length - 1]! } : { p50: 0, p99: 0, max: 0 };
  }

  /** Outcome counts per target URL. */
  perTarget(): { url: string; sent: number; ok: number; rejected: number; errors: number; lost: number }[] {
    const rows = this.targets.map((url) => ({ url, sent: 0, ok: 0, rejected: 0, errors: 0, lost: 0 }));
    for (let i = 0; i < this.n; i++) {
      const o = this.outcome[i]!;
      if (o === OUTCOME.dropped) continue;
      const r = rows[this.target[i]!]!;
      r.sent++;
      if (o === OUTCOME.ok) r.ok++;
      else if (o === OUTCOME.rejected) r.rejected++;
      else if (o === OUTCOME.lost) r.lost++;
      else if (o === OUTCOME.error || o === OUTCOME.timeout) r.errors++;
    }
    return rows;
  }

  /** Plain-data summary for result documents. */
  summary(): Record<string, unknown> {
    const lat = this.latencySummary();
    return {
      mode: this.mode,
      scheduleMs: round1(this.scheduleEndMs),
      endMs: round1(this.endMs),
      counts: { ...this.counts },
      ...(this.mode === 'dispatch' ? { lostDetail: { ...this.lostDetail } } : {}),
      ...(Object.keys(this.errorKinds).length ? { errorKinds: { ...this.errorKinds } } : {}),
      throughput: round1(this.throughput()),
      latencyMs: roundObj(lat),
      generatorLagMs: roundObj(this.lag),
    };
  }
}

function summarizeSorted(l: number[]): LatencySummary {
  if (l.length === 0) return { n: 0, p50: null, p95: null, p99: null, mean: null, max: null };
  let s = 0;
  for (const v of l) s += v;
  return { n: l.length, p50: percentile(l, 50), p95: percentile(l, 95), p99: percentile(l, 99), mean: s / l.length, max: l[l.length - 1]! };
}

function round1(v: number): number {
  return Math.round(v * 1000) / 1000;
}
function roundObj<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = typeof v === 'number' ? round1(v) : v;
  return out as T;
}

export interface LoadHandle {
  readonly run: LoadRun;
  /** Resolves when the arrival schedule is over (answers may still be outstanding). */
  readonly scheduleDone: Promise<void>;
  /** Resolves when every task has its final outcome. */
  readonly done: Promise<LoadRun>;
  /** Replace the target list from the next arrival on (e.g. after the pool grew). */
  setTargets(urls: readonly string[]): void;
  /** End the schedule now (the answers still come in, dispatch still drains). */
  stop(): void;
  /** ms since the run's time zero. */
  now(): number;
  /** Open requests. */
  outstanding(): number;
}

/** Starts a load run; see the module comment. */
export function startLoad(opts: LoadOptions): LoadHandle {
  const mode: LoadMode = opts.mode ?? 'tasks';
  const mix = opts.mix ?? { io: 1, cpu: 0 };
  const cpuFraction = mix.io + mix.cpu > 0 ? mix.cpu / (mix.io + mix.cpu) : 0;
  const ioMs = opts.ioMs ?? 20;
  const cpuRounds = opts.cpuRounds ?? 200;
  const maxOutstanding = opts.maxOutstanding ?? 20_000;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const drainMs = opts.drainMs ?? 10_000;
  const pollMs = opts.pollMs ?? 200;
  const bucketMs = opts.bucketMs ?? 50;
  const seed = opts.seed ?? 1;
  const rand = mulberry32(seed);
  const phase = rand();
  const idPrefix = opts.idPrefix ?? `ld${process.pid.toString(36)}${(++runCounter).toString(36)}${Date.now().toString(36)}`;
  const rateAt = typeof opts.rate === 'number' ? ((r: number) => () => r)(opts.rate) : opts.rate;
  const path = mode === 'dispatch' ? '/v1/dispatch' : '/v1/tasks';
  const onResult = opts.onResult;
  if (!(opts.durationMs >= 0)) throw new Error('load: durationMs must be >= 0');
  if (opts.targets.length === 0) throw new Error('load: no targets');

  const estimate = typeof opts.rate === 'number' ? Math.ceil((opts.rate * opts.durationMs) / 1000) + 16 : 4096;
  const run = new LoadRun(mode, opts.durationMs, Math.min(estimate, 1 << 22), bucketMs, idPrefix);
  const targetIndex = new Map<string, number>();
  const parsed: Target[] = [];
  let current: number[] = [];
  const setTargets = (urls: readonly string[]): void => {
    if (urls.length === 0) throw new Error('load: no targets');
    current = urls.map((u) => {
      const t = parseTarget(u);
      let k = targetIndex.get(t.url);
      if (k === undefined) {
        k = parsed.length;
        if (k >= 65535) throw new Error('load: too many targets');
        parsed.push(t);
        run.targets.push(t.url);
        targetIndex.set(t.url, k);
      }
      return k;
    });
  };
  setTargets(opts.targets);

  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 4096, scheduling: 'lifo' });
  const headersBase = { 'content-type': 'application/json' };
  // A short fixed pool of seeded payload strings: varied input for the CPU tasks, no per-task PRNG work.
  const payloads: string[] = [];
  for (let k = 0; k < 64; k++) payloads.push(Math.floor(rand() * 2 ** 32).toString(36));

  let outstanding = 0;
  let rr = Math.floor(rand() * 1024);
  let next = 0; // scheduled time of the next arrival (ms since t0)
  let stopped = false;
  let scheduleOver = false;
  let resolveSchedule!: () => void;
  const scheduleDone = new Promise<void>((r) => (resolveSchedule = r));
  let idleWaiter: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;

  const nowMs = (): number => performance.now() - run.t0;

  const settle = (i: number, code: OutcomeCode, errKind?: string): void => {
    const d = nowMs();
    run.doneMs[i] = d;
    run.outcome[i] = code;
    const c = run.counts;
    switch (code) {
      case OUTCOME.ok:
        c.ok++;
        run.bumpBucket(d);
        break;
      case OUTCOME.accepted:
        c.accepted++;
        run.bumpBucket(d);
        break;
      case OUTCOME.rejected:
        c.rejected++;
        break;
      case OUTCOME.timeout:
        c.timeout++;
        break;
      default:
        c.error++;
        if (errKind) run.errorKinds[errKind] = (run.errorKinds[errKind] ?? 0) + 1;
    }
    outstanding--;
    if (onResult) onResult({ index: i, outcome: OUTCOME_NAMES[code]!, schedMs: run.schedMs[i]!, doneMs: d, target: run.targets[run.target[i]!]! });
    if (outstanding === 0 && idleWaiter) idleWaiter();
  };

  const fire = (sched: number, now: number): void => {
    const i = run.n;
    run.ensure(i + 1);
    run.n = i + 1;
    run.counts.offered++;
    run.schedMs[i] = sched;
    const tk = current[rr++ % current.length]!;
    run.target[i] = tk;
    if (outstanding >= maxOutstanding) {
      run.doneMs[i] = sched;
      run.outcome[i] = OUTCOME.dropped;
      run.counts.dropped++;
      if (onResult) onResult({ index: i, outcome: 'dropped', schedMs: sched, doneMs: sched, target: run.targets[tk]! });
      return;
    }
    run.lagMs[i] = now - sched;
    run.counts.sent++;
    outstanding++;
    const t = parsed[tk]!;
    const id = `${idPrefix}-${i}`;
    const body = isCpuTask(i, cpuFraction, phase)
      ? `{"id":"${id}","kind":"cpu","cpuRounds":${cpuRounds},"payload":"${payloads[i & 63]}"}`
      : `{"id":"${id}","kind":"io","ioMs":${ioMs},"payload":"${payloads[i & 63]}"}`;
    let finished = false;
    const req = http.request({
      agent,
      hostname: t.hostname,
      port: t.port,
      method: 'POST',
      path,
      headers: { ...headersBase, 'content-length': Buffer.byteLength(body) },
    });
    req.setTimeout(timeoutMs, () => {
      if (finished) return;
      finished = true;
      settle(i, OUTCOME.timeout);
      req.destroy();
    });
    req.on('response', (res) => {
      res.resume();
      if (finished) return;
      finished = true;
      const s = res.statusCode ?? 0;
      if (mode === 'tasks' ? s === 200 : s === 202 || s === 200) settle(i, mode === 'tasks' ? OUTCOME.ok : OUTCOME.accepted);
      else if (s === 429) settle(i, OUTCOME.rejected);
      else settle(i, OUTCOME.error, `http ${s}`);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (finished) return;
      finished = true;
      settle(i, OUTCOME.error, e.code ?? e.message);
    });
    req.end(body);
  };

  const endSchedule = (): void => {
    if (scheduleOver) return;
    scheduleOver = true;
    if (timer) clearTimeout(timer);
    run.scheduleEndMs = stopped ? Math.min(nowMs(), opts.durationMs) : opts.durationMs;
    resolveSchedule();
  };

  const tick = (): void => {
    timer = null;
    if (stopped) return endSchedule();
    const now = nowMs();
    let budget = 5000;
    while (next <= now && next < opts.durationMs && budget-- > 0) {
      fire(next, now);
      const r = rateAt(next);
      next += r > 0 ? 1000 / r : 1;
    }
    if (next >= opts.durationMs) return endSchedule();
    const wait = next - nowMs();
    timer = setTimeout(tick, wait > 1 ? Math.floor(wait) : wait > 0 ? 1 : 0);
  };

  const onAbort = (): void => {
    stopped = true;
    if (timer) {
      clearTimeout(timer);
      timer = null;
      endSchedule();
    }
  };
  if (opts.signal) {
    if (opts.signal.aborted) stopped = true;
    else opts.signal.addEventListener('abort', onAbort, { once: true });
  }

  const waitIdle = (): Promise<void> =>
    outstanding === 0
      ? Promise.resolve()
      : new Promise<void>((r) => {
          idleWaiter = () => {
            idleWaiter = null;
            r();
          };
        });

  const drain = async (): Promise<void> => {
    const deadline = run.scheduleEndMs + drainMs;
    // Accepted task indices per coordinator target.
    const pending = new Map<number, number[]>();
    for (let i = 0; i < run.n; i++) {
      if (run.outcome[i] !== OUTCOME.accepted) continue;
      const k = run.target[i]!;
      let l = pending.get(k);
      if (!l) pending.set(k, (l = []));
      l.push(i);
    }
    const unreachable = new Set<number>();
    for (;;) {
      unreachable.clear();
      await Promise.all(
        [...pending].map(async ([k, list]) => {
          const still: number[] = [];
          for (let off = 0; off < list.length; off += 500) {
            const chunk = list.slice(off, off + 500);
            let answer: unknown;
            try {
              answer = await postJson(agent, parsed[k]!, '/v1/dispatch/query', { ids: chunk.map((i) => `${idPrefix}-${i}`) }, Math.max(2000, pollMs * 10));
            } catch {
              unreachable.add(k);
              still.push(...chunk);
              continue;
            }
            const seen = new Set<number>();
            const tasks = (answer as { tasks?: unknown }).tasks;
            if (Array.isArray(tasks)) {
              for (const t of tasks as Record<string, unknown>[]) {
                const id = typeof t.id === 'string' ? t.id : '';
                if (!id.startsWith(idPrefix + '-')) continue;
                const i = Number(id.slice(idPrefix.length + 1));
                if (!Number.isInteger(i) || i < 0 || i >= run.n || run.outcome[i] !== OUTCOME.accepted) continue;
                seen.add(i);
                if (t.state === 'done') {
                  run.outcome[i] = OUTCOME.ok;
                  run.counts.ok++;
                  const acc = num(t.acceptedAt);
                  const dn = num(t.finishedAt) ?? num(t.doneAt);
                  if (acc !== null && dn !== null && dn >= acc) run.e2eMs[i] = run.doneMs[i]! - run.schedMs[i]! + (dn - acc);
                } else if (t.state === 'failed') {
                  markLost(i, 'failed');
                } else if (t.state === 'unknown') {
                  markLost(i, 'unknown');
                } else {
                  still.push(i);
                }
              }
            }
            // Ids the coordinator left out of its answer are asked again.
            for (const i of chunk) if (!seen.has(i)) still.push(i);
          }
          if (still.length) pending.set(k, still);
          else pending.delete(k);
        }),
      );
      if (pending.size === 0) return;
      const left = deadline - nowMs();
      if (left <= 0) break;
      await delay(Math.min(pollMs, left));
    }
    for (const [k, list] of pending) for (const i of list) markLost(i, unreachable.has(k) ? 'unreachable' : 'pending');
  };

  const markLost = (i: number, why: keyof LostDetail): void => {
    run.outcome[i] = OUTCOME.lost;
    run.counts.lost++;
    run.lostDetail[why]++;
  };

  const done = (async () => {
    try {
      tick();
      await scheduleDone;
      await waitIdle();
      if (mode === 'dispatch') await drain();
      run.endMs = nowMs();
      // ok in dispatch mode was counted in okBuckets at 202; the final verdict is in `outcome`.
      return run;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      agent.destroy();
    }
  })();

  return {
    run,
    scheduleDone,
    done,
    setTargets,
    stop() {
      stopped = true;
      if (timer) {
        clearTimeout(timer);
        timer = null;
        endSchedule();
      }
    },
    now: nowMs,
    outstanding: () => outstanding,
  };
}

/** Runs a load to the end; see `startLoad`. */
export function runLoad(opts: LoadOptions): Promise<LoadRun> {
  return startLoad(opts).done;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function postJson(agent: http.Agent, t: Target, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, hostname: t.hostname, port: t.port, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`${path}: http ${res.statusCode}`));
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (e) {
            reject(e as Error);
          }
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${path}: timeout`)));
    req.on('error', reject);
    req.end(text);
  });
}
