/**
 * Closed-loop load through the system's own dispatch: `outstanding` slots, each with one task in
 * the system at a time. A slot sends `POST /v1/dispatch` to a coordinator (the given ones, round
 * robin); after the 202 the harness asks that coordinator (`POST /v1/dispatch/query`) until the
 * task is `done`, checks the result (`verify.ts`) and only then sends the slot's next task. With
 * more slots than the system can run at once, the system is kept saturated: what it completes per
 * second is its throughput at saturation, whatever the harness could have offered.
 *
 * - **Timed by the harness.** A task's latency is from its send to the query answer that said
 *   `done` (the harness's clock only; resolution `pollMs`): nothing the agents report about
 *   themselves enters a figure. `doneMs` is that answer's time; `schedMs` the send time.
 * - **Its own lag.** A closed loop has no arrival schedule, but it keeps one of its own: the ramp's
 *   start times, the retry timers and the `pollMs` ticks that ask about the tasks. Each send's
 *   `lagMs` is how late the timer that led to it ran (the ramp's or a retry's timer; for a send
 *   after a task was seen done, or a parked slot's probe, the tick that sent that query or
 *   released it). The time the system took to answer never enters it, so a slow system leaves it
 *   at the timers' granularity (about 1 ms), and `LoadRun.lag` means what it means for the open
 *   loop: how far the harness's own event loop fell behind (`lag.ts` judges it).
 * - **Polling.** Each accepted task is first asked about when it can be done (its IO wait after the
 *   202; a CPU task at once), then every `pollMs`, and less often (up to 1 s) once it is more than a
 *   second overdue, so a queue that never moves does not turn into a query storm. One query per
 *   coordinator at a time, at most 2000 ids.
 * - **Refusals.** A 429 ends that attempt (outcome `rejected`). The slot retries like a client
 *   would, after `pollMs`, then twice that, up to `quickRetries` times in a row (a refusal on a
 *   stale view of the pool's load is over in a moment, and the work must be offered again); after
 *   that it is parked: each `pollMs` tick releases parked slots to probe for room, one per
 *   coordinator or enough to probe every parked slot once per `probeSpreadMs` (a task length),
 *   whichever is more, so the refusals of a saturated system cost a small share of its
 *   throughput, not one request per slot per tick. An error or a timeout ends the attempt with its outcome and the slot backs off
 *   (`backoffMs`, doubling to `maxBackoffMs`). A 202 resets both.
 * - **Outcomes.** As in `generator.ts`: `offered = ok + wrong + rejected + error + timeout + lost +
 *   dropped` (dropped is always 0 here). An accepted task that its coordinator calls `failed` or
 *   `unknown`, or that is not done by the drain deadline (`finish(drainMs)`), is lost.
 * - The task mix is interleaved as in the open loop (`isCpuTask`), payloads unique per task.
 * - Every request carries the agents' bearer token (`token`, default `agentToken()`: src/agent/auth.ts).
 * - Answers are read bounded, as in `generator.ts`: a dispatch answer's body is discarded past
 *   MAX_TASK_ANSWER_BYTES (the connection cut), a query answer past MAX_QUERY_ANSWER_BYTES makes
 *   that coordinator unreachable for this round (its tasks are asked again, then lost at the drain
 *   deadline).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { agentToken, bearer } from '../../agent/auth.ts';
import { mulberry32 } from '../../prng.ts';
import { MAX_TASK_ANSWER_BYTES, postJson, readBody } from './generator.ts';
import { isCpuTask, LoadRun, OUTCOME, type LostDetail, type OutcomeCode } from './record.ts';
import { checkAnswer, defaultCpuCheckEvery, KIND, type Answer, taskPayload } from './verify.ts';

export interface ClosedLoopOptions {
  /** Base URLs of the coordinators the tasks enter through (round robin). */
  coordinators: readonly string[];
  /** Slots: tasks in the system at once (from the send to the answer that says it is over). */
  outstanding: number;
  /** The slots start evenly over this long (ms), so completions are spread in time. */
  rampMs: number;
  /** No slot sends a task after this (ms since the start). */
  durationMs: number;
  /** Fraction of CPU tasks (interleaved), the IO wait and the CPU rounds of a task. */
  cpuFraction: number;
  ioMs: number;
  cpuRounds: number;
  /** Every k-th CPU task has its digest recomputed (`verify.ts`); default from the expected rate. */
  cpuCheckEvery?: number;
  /** Tasks per second expected at most (sizes the default `cpuCheckEvery` and the arrays). */
  expectedRate?: number;
  /** Interval of the completion queries (ms, default 50). */
  pollMs?: number;
  /** First back-off of a slot after an error or a timeout (ms, default 20), doubling up to `maxBackoffMs` (default 500). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** 429s in a row a slot retries by itself (after `pollMs`, doubling) before it is parked (default 2). */
  quickRetries?: number;
  /**
   * Parked slots are all probed about once per this long (default `ioMs`): each tick releases
   * max(one per coordinator, parked × pollMs ÷ probeSpreadMs) of them, so room that frees up
   * gradually (the tasks of an earlier run finishing) is found within one task length.
   */
  probeSpreadMs?: number;
  /** A dispatch request without an answer after this long is a timeout (default 10000 ms). */
  timeoutMs?: number;
  seed?: number;
  idPrefix?: string;
  signal?: AbortSignal;
  /** The agents' bearer token; default `agentToken()` (src/agent/auth.ts). */
  token?: string;
}

export interface ClosedLoopHandle {
  readonly run: LoadRun;
  /** ms since the run's time zero. */
  now(): number;
  /** Tasks sent and not over yet (in flight or accepted and not seen done). */
  inSystem(): number;
  /** Slots parked after a 429, waiting for a probe. */
  parked(): number;
  /** Stops sending now (also done by itself at `durationMs`). */
  stop(): void;
  /**
   * Resolves once sending is over and every task has its final outcome, or `drainMs` after the
   * sending ended: accepted tasks still not done then are lost (`lostDetail.pending`, or
   * `unreachable` when their coordinator's last query failed).
   */
  finish(drainMs: number): Promise<LoadRun>;
}

interface Pending {
  slot: number;
  /** When to ask next (ms since start). */
  due: number;
  acceptedMs: number;
}

let runCounter = 0;

/** Starts a closed loop; see the module comment. */
export function startClosedLoop(o: ClosedLoopOptions): ClosedLoopHandle {
  if (o.coordinators.length === 0) throw new Error('closed loop: no coordinators');
  if (!(Number.isInteger(o.outstanding) && o.outstanding >= 1)) throw new Error('closed loop: outstanding must be an integer >= 1');
  if (!(o.durationMs > 0)) throw new Error('closed loop: durationMs must be > 0');
  const pollMs = o.pollMs ?? 50;
  const backoffMs = o.backoffMs ?? 20;
  const maxBackoffMs = Math.max(backoffMs, o.maxBackoffMs ?? 500);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const token = o.token ?? agentToken();
  const authorization = bearer(token);
  const cpuFraction = Math.min(1, Math.max(0, o.cpuFraction));
  const expected = o.expectedRate ?? o.outstanding * 10;
  const cpuCheckEvery = o.cpuCheckEvery ?? defaultCpuCheckEvery(expected, cpuFraction, o.cpuRounds);
  const rand = mulberry32(o.seed ?? 1);
  const phase = rand();
  const bases: string[] = [];
  for (let k = 0; k < 64; k++) bases.push(Math.floor(rand() * 2 ** 32).toString(36));
  const idPrefix = o.idPrefix ?? `cl${process.pid.toString(36)}${(++runCounter).toString(36)}${Date.now().toString(36)}`;
  const capacity = Math.min(1 << 22, Math.ceil((expected * o.durationMs) / 1000) + o.outstanding + 16);
  const run = new LoadRun('dispatch', o.durationMs, capacity, 50, idPrefix, cpuCheckEvery);
  const coords = o.coordinators.map((u) => {
    const url = new URL(u);
    if (url.protocol !== 'http:') throw new Error(`closed loop: only http coordinators are supported, got ${u}`);
    run.targets.push(url.origin);
    return { hostname: url.hostname, port: Number(url.port || 80), pending: new Map<number, Pending>(), querying: false, unreachable: false };
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 4096, scheduling: 'lifo' });
  const nowMs = (): number => performance.now() - run.t0;
  const backoff = new Float64Array(o.outstanding);
  const refusals = new Uint8Array(o.outstanding);
  const quickRetries = Math.max(0, Math.min(16, o.quickRetries ?? 2));
  const probeSpreadMs = Math.max(pollMs, o.probeSpreadMs ?? o.ioMs);
  let rr = Math.floor(rand() * 1024);
  let cpuSent = 0;
  let sending = true;
  let inSystem = 0;
  const parked: number[] = [];
  let idle: (() => void) | null = null;
  const timers = new Set<NodeJS.Timeout>();
  /** Runs `fn` in `ms`, with how late its timer ran (ms): the loop's own lag, never the system's. */
  const later = (ms: number, fn: (lag: number) => void): void => {
    const due = nowMs() + ms;
    const t = setTimeout(() => {
      timers.delete(t);
      fn(Math.max(0, nowMs() - due));
    }, ms);
    timers.add(t);
  };

  let closed = false;
  const over = (i: number, code: OutcomeCode, why?: keyof LostDetail | string): void => {
    if (closed) return;
    const d = nowMs();
    run.doneMs[i] = d;
    run.outcome[i] = code;
    const c = run.counts;
    if (code === OUTCOME.ok) {
      c.ok++;
      run.e2eMs[i] = d - run.schedMs[i]!;
      run.bumpBucket(d);
    } else if (code === OUTCOME.wrong) c.wrong++;
    else if (code === OUTCOME.rejected) c.rejected++;
    else if (code === OUTCOME.timeout) c.timeout++;
    else if (code === OUTCOME.lost) {
      c.lost++;
      run.lostDetail[why as keyof LostDetail]++;
    } else {
      c.error++;
      if (why) run.errorKinds[why] = (run.errorKinds[why] ?? 0) + 1;
    }
    inSystem--;
    if (inSystem === 0 && idle) idle();
  };

  const retry = (slot: number): void => {
    const b = backoff[slot]! > 0 ? backoff[slot]! : backoffMs;
    backoff[slot] = Math.min(maxBackoffMs, b * 2);
    later(b, (lag) => fire(slot, lag));
  };

  /** Sends slot `slot`'s next task; `lag`: how late the loop's timer that led to this send ran (ms). */
  const fire = (slot: number, lag: number): void => {
    if (!sending) return;
    const i = run.n;
    run.ensure(i + 1);
    run.n = i + 1;
    run.counts.offered++;
    run.counts.sent++;
    inSystem++;
    const sent = nowMs();
    run.schedMs[i] = sent;
    run.lagMs[i] = lag;
    const k = rr++ % coords.length;
    run.target[i] = k;
    const cpu = isCpuTask(i, cpuFraction, phase);
    if (cpu) run.kind[i] = cpuSent++ % cpuCheckEvery === 0 ? KIND.cpuChecked : KIND.cpuUnchecked;
    const payload = taskPayload(bases, i);
    const body = cpu
      ? `{"id":"${idPrefix}-${i}","kind":"cpu","cpuRounds":${o.cpuRounds},"payload":"${payload}"}`
      : `{"id":"${idPrefix}-${i}","kind":"io","ioMs":${o.ioMs},"payload":"${payload}"}`;
    const c = coords[k]!;
    let finished = false;
    const req = http.request({
      agent,
      hostname: c.hostname,
      port: c.port,
      method: 'POST',
      path: '/v1/dispatch',
      headers: { 'content-type': 'application/json', authorization, 'content-length': Buffer.byteLength(body) },
    });
    req.setTimeout(timeoutMs, () => {
      if (finished) return;
      finished = true;
      over(i, OUTCOME.timeout);
      req.destroy();
      retry(slot);
    });
    req.on('response', (res) => {
      // The status is the outcome; the body is discarded, bounded (a hostile agent's endless
      // answer is cut at MAX_TASK_ANSWER_BYTES: src/bench/load/generator.ts `readBody`).
      readBody(res, MAX_TASK_ANSWER_BYTES, false, () => undefined, () => undefined);
      if (finished) return;
      finished = true;
      const s = res.statusCode ?? 0;
      if (s === 202 || s === 200) {
        const now = nowMs();
        run.outcome[i] = OUTCOME.accepted;
        run.counts.accepted++;
        backoff[slot] = 0;
        refusals[slot] = 0;
        c.pending.set(i, { slot, acceptedMs: now, due: now + (cpu ? 0 : o.ioMs + pollMs / 4) });
        return;
      }
      if (s === 429) {
        over(i, OUTCOME.rejected);
        const r = refusals[slot]!;
        if (r < quickRetries) {
          refusals[slot] = r + 1;
          later(pollMs * 2 ** r, (lag) => fire(slot, lag));
        } else parked.push(slot);
        return;
      }
      over(i, OUTCOME.error, `http ${s}`);
      retry(slot);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (finished) return;
      finished = true;
      over(i, OUTCOME.error, e.code ?? e.message);
      retry(slot);
    });
    req.end(body);
  };

  /** A task's final state, seen in a query answer (`lag`: the harness's delay in asking about it, `query`). */
  const settle = (c: (typeof coords)[number], i: number, p: Pending, lag: number, code: OutcomeCode, why?: keyof LostDetail): void => {
    c.pending.delete(i);
    over(i, code, why);
    fire(p.slot, lag);
  };

  /**
   * Asks `c` about its tasks that are due. `tickLag`: how late the tick that calls it ran; a task
   * due before that tick's time on schedule would have been asked then (its lag is the tick's), one
   * due since at the schedule's next tick after its due time (less). Waiting for an earlier query
   * of `c` to be answered is the system's time, never lag.
   */
  const query = async (c: (typeof coords)[number], tickLag: number): Promise<void> => {
    const now = nowMs();
    const onTime = now - tickLag;
    const ids: number[] = [];
    // An answer about a task not asked about (a coordinator may say more) has no lag of the harness's.
    const lags = new Map<number, number>();
    for (const [i, p] of c.pending) {
      if (p.due <= now) {
        ids.push(i);
        lags.set(i, p.due <= onTime ? tickLag : Math.max(0, now - (onTime + Math.ceil((p.due - onTime) / pollMs) * pollMs)));
      }
      if (ids.length >= 2000) break;
    }
    if (ids.length === 0) return;
    c.querying = true;
    let answer: unknown;
    try {
      answer = await postJson(agent, c, '/v1/dispatch/query', { ids: ids.map((i) => `${idPrefix}-${i}`) }, Math.max(2000, pollMs * 10), token);
      c.unreachable = false;
    } catch {
      c.unreachable = true;
      for (const i of ids) {
        const p = c.pending.get(i);
        if (p) p.due = nowMs() + pollMs;
      }
      return;
    } finally {
      c.querying = false;
    }
    const t = nowMs();
    const seen = new Set<number>();
    const tasks = (answer as { tasks?: unknown }).tasks;
    if (Array.isArray(tasks)) {
      for (const v of tasks as (Answer & { state?: unknown })[]) {
        const id = typeof v?.id === 'string' ? v.id : '';
        if (!id.startsWith(idPrefix + '-')) continue;
        const i = Number(id.slice(idPrefix.length + 1));
        const p = c.pending.get(i);
        if (!p || seen.has(i)) continue;
        seen.add(i);
        if (v.state === 'done') {
          const ok = checkAnswer(run.checks, run.kind[i]!, id, taskPayload(bases, i), o.cpuRounds, v, 'executor') === null;
          settle(c, i, p, lags.get(i) ?? 0, ok ? OUTCOME.ok : OUTCOME.wrong);
        } else if (v.state === 'failed') settle(c, i, p, lags.get(i) ?? 0, OUTCOME.lost, 'failed');
        else if (v.state === 'unknown') settle(c, i, p, lags.get(i) ?? 0, OUTCOME.lost, 'unknown');
        else {
          const age = t - p.acceptedMs;
          const overdue = age - (run.kind[i] === KIND.io ? o.ioMs : 0);
          p.due = t + (overdue < 1000 ? pollMs : Math.min(1000, Math.max(pollMs, overdue / 8)));
        }
      }
    }
    // Ids the coordinator left out are asked again.
    for (const i of ids) {
      const p = c.pending.get(i);
      if (p && !seen.has(i)) p.due = t + pollMs;
    }
  };

  let parkedHead = 0;
  // The tick's own lag: setInterval counts each interval from when the previous tick ran.
  let lastTick = nowMs();
  const poller = setInterval(() => {
    const t = nowMs();
    const lag = Math.max(0, t - lastTick - pollMs);
    lastTick = t;
    for (const c of coords) if (!c.querying && c.pending.size > 0) void query(c, lag);
    // Probes: one parked slot per coordinator per tick, or every parked slot once per probeSpreadMs.
    const release = Math.max(coords.length, Math.ceil(((parked.length - parkedHead) * pollMs) / probeSpreadMs));
    for (let k = 0; k < release && sending && parkedHead < parked.length; k++) fire(parked[parkedHead++]!, lag);
    if (parkedHead > 1024 && parkedHead * 2 > parked.length) {
      parked.splice(0, parkedHead);
      parkedHead = 0;
    }
  }, pollMs);

  const stop = (): void => {
    sending = false;
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };
  const endTimer = setTimeout(stop, o.durationMs);
  const onAbort = (): void => stop();
  if (o.signal?.aborted) stop();
  else o.signal?.addEventListener('abort', onAbort, { once: true });

  // The ramp: slot j starts at j × rampMs / outstanding.
  for (let j = 0; j < o.outstanding; j++) {
    const at = (j * o.rampMs) / o.outstanding;
    if (at <= 0) fire(j, 0);
    else later(at, (lag) => fire(j, lag));
  }

  const finish = async (drainMs: number): Promise<LoadRun> => {
    await new Promise<void>((r) => {
      const left = o.durationMs - nowMs();
      if (left <= 0 || !sending) r();
      else setTimeout(r, left);
    });
    stop();
    const ended = nowMs();
    run.scheduleEndMs = Math.min(ended, o.durationMs);
    if (inSystem > 0) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(0, drainMs));
        idle = () => {
          clearTimeout(t);
          r();
        };
      });
      idle = null;
    }
    clearInterval(poller);
    clearTimeout(endTimer);
    o.signal?.removeEventListener('abort', onAbort);
    // A dispatch request still unanswered now is an error; nothing counts after this.
    for (let i = 0; i < run.n; i++) if (run.outcome[i] === OUTCOME.pending) over(i, OUTCOME.error, 'no answer by the end of the drain');
    closed = true;
    for (const c of coords) {
      for (const [i] of c.pending) {
        run.outcome[i] = OUTCOME.lost;
        run.counts.lost++;
        run.lostDetail[c.unreachable ? 'unreachable' : 'pending']++;
        run.doneMs[i] = nowMs();
      }
      c.pending.clear();
    }
    run.endMs = nowMs();
    agent.destroy();
    return run;
  };

  return { run, now: nowMs, inSystem: () => inSystem, parked: () => parked.length - parkedHead, stop, finish };
}
