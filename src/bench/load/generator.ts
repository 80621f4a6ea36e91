/**
 * Open-loop load generator for the agent contract's task endpoints.
 *
 * Arrivals follow a fixed schedule (task i is due at a time computed from the rate alone), not the
 * answers: a slow system does not slow the generator down, so queueing shows up in the latencies
 * instead of being hidden ("coordinated omission"). Every latency is measured from the task's
 * *scheduled* send time, so a generator that falls behind (a stalled event loop) is charged to the
 * system's latency rather than silently dropped; the generator's own lag is reported separately
 * (`LoadRun.lag`) so a run whose client could not keep up is visible as such, and `lag.ts` holds
 * the bound past which it was behind its schedule. The lag is taken when a task is sent, before
 * the request: a slow system does not add to it (its answers come on other turns of the loop;
 * only the CPU the harness spends per request, a new connection when none is free, a timeout to
 * handle, grows with the tasks open).
 *
 * Two modes:
 * - `tasks`: `POST /v1/tasks` on the targets round robin; the answer is the completion
 *   (200 ok when its result checks out, else wrong; 429 rejected, anything else an error, no
 *   answer within `timeoutMs` a timeout).
 * - `dispatch`: `POST /v1/dispatch`; 202 means the task is accepted (its latency is the time to
 *   acceptance). After the schedule, the accepted tasks are looked up with
 *   `POST /v1/dispatch/query` on the coordinator that accepted them until all are `done`, or
 *   the drain deadline passes: an accepted task that is not `done` by then (`failed`, still
 *   `pending`, `unknown` to its coordinator, or its coordinator unreachable) is *lost*; a `done`
 *   one is ok when its result checks out, else wrong.
 *
 * Every final answer is checked (`verify.ts`: id, executor named, result; CPU digests recomputed
 * for every `cpuCheckEvery`-th CPU task) and a failed check is the outcome `wrong`, never ok.
 * Each offered task ends with exactly one outcome, so
 * `offered = ok + wrong + rejected + error + timeout + lost + dropped` always holds (`dropped`: not
 * sent because `maxOutstanding` requests were already open, a client-side cap that is reported,
 * not hidden).
 *
 * The task mix is interleaved deterministically (Bresenham: after n tasks, exactly
 * round(n × cpu) are CPU tasks, spread evenly) with a seeded phase, and payloads are a seeded base
 * and the task's index (unique per task), so two runs with the same seed send the same tasks.
 *
 * Every request carries the agents' bearer token (`token`, default `agentToken()`: src/agent/auth.ts).
 *
 * Answers are read bounded (`readBody`), since the targets may be agents a user runs
 * (`swarmbench run --agent-url`) and one must not exhaust the harness's memory: a task answer
 * (`POST /v1/tasks` 200, `/v1/dispatch` 202: an id, an agent, a result that is a short payload
 * echo or a 64-hex digest, ~200 bytes) at most MAX_TASK_ANSWER_BYTES (1 MiB), a dispatch query
 * answer (at most 2000 ids of ~200 bytes) at most MAX_QUERY_ANSWER_BYTES (8 MiB). An answer past
 * its cap is cut (the connection destroyed, nothing more read) and counts as an `error`
 * (`ERESPONSETOOLARGE`); a query answer past it counts as that coordinator unreachable. Bodies
 * that are not kept (refusals, acceptances) are discarded under the same cap.
 *
 * Cheap per request: one keep-alive connection pool, one short JSON string per task, outcomes and
 * times in typed arrays (`LoadRun`, `record.ts`); windows and percentiles are computed once, after
 * the run.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { agentToken, bearer } from '../../agent/auth.ts';
import { mulberry32 } from '../../prng.ts';
import { isCpuTask, LoadRun, OUTCOME, OUTCOME_NAMES, type LoadMode, type LostDetail, type OutcomeCode, type OutcomeName, type TaskMix } from './record.ts';
import { checkAnswer, defaultCpuCheckEvery, KIND, parseAnswer, taskPayload } from './verify.ts';

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
  /**
   * The harness recomputes the digest of every k-th CPU task (`verify.ts`); default: the smallest k
   * that keeps the recomputation under about 5 % of one core at the peak offered rate.
   */
  cpuCheckEvery?: number;
  /** Prefix of task ids; default unique per run (agents deduplicate ids for 60 s). */
  idPrefix?: string;
  signal?: AbortSignal;
  /** The agents' bearer token; default `agentToken()` (src/agent/auth.ts). */
  token?: string;
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

/** Largest answer to one task (`/v1/tasks`, `/v1/dispatch`) read: 1 MiB. */
export const MAX_TASK_ANSWER_BYTES = 1024 * 1024;
/** Largest answer to one `/v1/dispatch/query` read: 8 MiB. */
export const MAX_QUERY_ANSWER_BYTES = 8 * 1024 * 1024;

/**
 * Reads the body of `res`, at most `max` bytes (by its `content-length`, or by the bytes read).
 * Calls exactly one of `done(text)` (with `keep` false the body is discarded and `text` is '')
 * and `fail(code)`: past the cap the response is destroyed at once (`ERESPONSETOOLARGE`, what
 * was read is released), a broken response fails with its error code.
 */
export function readBody(res: http.IncomingMessage, max: number, keep: boolean, done: (text: string) => void, fail: (code: string) => void): void {
  let over = false;
  let chunks: Buffer[] = [];
  let size = 0;
  const cut = (): void => {
    over = true;
    chunks = [];
    res.destroy();
    fail('ERESPONSETOOLARGE');
  };
  const declared = Number(res.headers['content-length']);
  if (Number.isSafeInteger(declared) && declared > max) return cut();
  res.on('data', (c: Buffer) => {
    if (over) return;
    size += c.length;
    if (size > max) cut();
    else if (keep) chunks.push(c);
  });
  res.on('end', () => {
    if (!over) done(keep ? (chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')) : '');
  });
  res.on('error', (e: NodeJS.ErrnoException) => {
    if (!over) fail(e.code ?? e.message);
  });
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
  const cpuCheckEvery = opts.cpuCheckEvery ?? defaultCpuCheckEvery(peakRate(rateAt, opts.durationMs), cpuFraction, cpuRounds);
  if (!(Number.isInteger(cpuCheckEvery) && cpuCheckEvery >= 1)) throw new Error('load: cpuCheckEvery must be an integer >= 1');
  const run = new LoadRun(mode, opts.durationMs, Math.min(estimate, 1 << 22), bucketMs, idPrefix, cpuCheckEvery);
  let cpuSent = 0;
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
  const token = opts.token ?? agentToken();
  const headersBase = { 'content-type': 'application/json', authorization: bearer(token) };
  // A short fixed pool of seeded bases, and the task's index: a unique payload per task, no per-task PRNG work.
  const payloads: string[] = [];
  for (let k = 0; k < 64; k++) payloads.push(Math.floor(rand() * 2 ** 32).toString(36));
  const check = (i: number, answer: ReturnType<typeof parseAnswer>, field: 'agent' | 'executor'): boolean =>
    checkAnswer(run.checks, run.kind[i]!, `${idPrefix}-${i}`, taskPayload(payloads, i), cpuRounds, answer, field) === null;

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
      case OUTCOME.wrong:
        c.wrong++;
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
    const cpu = isCpuTask(i, cpuFraction, phase);
    if (cpu) run.kind[i] = cpuSent++ % cpuCheckEvery === 0 ? KIND.cpuChecked : KIND.cpuUnchecked;
    const payload = taskPayload(payloads, i);
    const body = cpu
      ? `{"id":"${id}","kind":"cpu","cpuRounds":${cpuRounds},"payload":"${payload}"}`
      : `{"id":"${id}","kind":"io","ioMs":${ioMs},"payload":"${payload}"}`;
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
      const s = res.statusCode ?? 0;
      const failed = (code: string): void => {
        if (finished) return;
        finished = true;
        settle(i, OUTCOME.error, code);
      };
      if (mode !== 'tasks' || s !== 200) {
        // The status is the outcome; the body is discarded (bounded all the same).
        readBody(res, MAX_TASK_ANSWER_BYTES, false, () => undefined, failed);
        if (finished) return;
        finished = true;
        if (mode === 'dispatch' && (s === 202 || s === 200)) settle(i, OUTCOME.accepted);
        else if (s === 429) settle(i, OUTCOME.rejected);
        else settle(i, OUTCOME.error, `http ${s}`);
        return;
      }
      // A completion: its body is the result, checked before it counts.
      readBody(
        res,
        MAX_TASK_ANSWER_BYTES,
        true,
        (text) => {
          if (finished) return;
          finished = true;
          settle(i, check(i, parseAnswer(text), 'agent') ? OUTCOME.ok : OUTCOME.wrong);
        },
        failed,
      );
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
              answer = await postJson(agent, parsed[k]!, '/v1/dispatch/query', { ids: chunk.map((i) => `${idPrefix}-${i}`) }, Math.max(2000, pollMs * 10), token);
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
                  if (!check(i, t, 'executor')) {
                    run.outcome[i] = OUTCOME.wrong;
                    run.counts.wrong++;
                    continue;
                  }
                  run.outcome[i] = OUTCOME.ok;
                  run.counts.ok++;
                  const acc = num(t.acceptedAt);
                  const dn = num(t.finishedAt) ?? num(t.doneAt);
                  if (acc !== null && dn !== null && dn >= acc) {
                    // The coordinator's duration, believed only within the harness's own bounds:
                    // not before the 202 arrived nor before an IO task's own wait was over, and
                    // by the time this answer arrived.
                    const accepted = run.doneMs[i]! - run.schedMs[i]!;
                    const lo = run.kind[i] === KIND.io ? Math.max(accepted, ioMs) : accepted;
                    const hi = Math.max(lo, nowMs() - run.schedMs[i]!);
                    const claim = accepted + (dn - acc);
                    if (claim > hi || claim < lo) run.e2eClamped++;
                    run.e2eMs[i] = Math.min(hi, Math.max(lo, claim));
                  }
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

/** The highest rate of the schedule (a function of time is sampled every 1 % of the duration). */
function peakRate(rateAt: (ms: number) => number, durationMs: number): number {
  let peak = 0;
  for (let k = 0; k <= 100; k++) peak = Math.max(peak, rateAt((durationMs * k) / 100) || 0);
  return peak;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * POSTs JSON and parses the 200 answer (rejects on any other status, a transport error, the
 * timeout, or an answer past `maxBytes`, default MAX_QUERY_ANSWER_BYTES: `ERESPONSETOOLARGE`).
 * Carries the agents' bearer token (default `agentToken()`).
 */
export function postJson(
  agent: http.Agent,
  t: { hostname: string; port: number },
  path: string,
  body: unknown,
  timeoutMs: number,
  token: string = agentToken(),
  maxBytes: number = MAX_QUERY_ANSWER_BYTES,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = http.request(
      {
        agent,
        hostname: t.hostname,
        port: t.port,
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', authorization: bearer(token), 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        readBody(
          res,
          maxBytes,
          res.statusCode === 200,
          (answer) => {
            if (res.statusCode !== 200) return reject(new Error(`${path}: http ${res.statusCode}`));
            try {
              resolve(JSON.parse(answer));
            } catch (e) {
              reject(e as Error);
            }
          },
          (code) => reject(Object.assign(new Error(`${path}: ${code === 'ERESPONSETOOLARGE' ? `answer over ${maxBytes} bytes` : code}`), { code })),
        );
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${path}: timeout`)));
    req.on('error', reject);
    req.end(text);
  });
}
