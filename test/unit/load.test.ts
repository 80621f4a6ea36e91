/**
 * The load generator against a tiny agent-contract server running in a worker thread (its own
 * event loop, so a stall of the generator's thread does not stall the server).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { isCpuTask, OUTCOME, runLoad, startLoad } from '../../src/bench/load/index.ts';
import { mulberry32 } from '../../src/prng.ts';

// The server: /v1/tasks, /v1/dispatch, /v1/dispatch/query, plus /__config and /__stats.
const SERVER = String.raw`
const http = require('node:http');
const crypto = require('node:crypto');
const { parentPort } = require('node:worker_threads');
// The contract's work (src/agent/work.ts), written out again: the server answers real results.
function cpuResult(payload, rounds) {
  let d = crypto.createHash('sha256').update(payload, 'utf8').digest();
  const buf = Buffer.allocUnsafe(1024);
  for (let off = 0; off < 1024; off += 32) d.copy(buf, off);
  for (let i = 0; i < rounds; i++) { d = crypto.createHash('sha256').update(buf).digest(); d.copy(buf, (i * 32) % 1024); }
  return d.toString('hex');
}
let cpuSeen = 0;
// wrongEvery: every n-th CPU task answered with the 0-round digest (the wrong-digests defect).
function resultOf(j) {
  if (j.kind === 'io') return j.payload;
  const skip = cfg.wrongEvery && ++cpuSeen % cfg.wrongEvery === 0;
  if (skip) st.wrong++;
  return cpuResult(j.payload, skip ? 0 : j.cpuRounds);
}
let cfg = {};
let st = {};
let inflight = 0;
let seq = 0;
const ledger = new Map();
function reset(c) {
  cfg = Object.assign({ ioMs: null, capacity: 1e9, errorEvery: 0, hangEvery: 0, loseAccepted: 0, failEvery: 0, queryFails: false, wrongEvery: 0, anonymous: false, claimMs: null }, c || {});
  st = { tasks: 0, ok: 0, rejected: 0, errors: 0, hung: 0, accepted: 0, lost: 0, failed: 0, io: 0, cpu: 0, queries: 0, wrong: 0 };
  inflight = 0; seq = 0; cpuSeen = 0; ledger.clear();
}
reset();
function send(res, code, obj) { const b = JSON.stringify(obj); res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) }); res.end(b); }
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const j = body ? JSON.parse(body) : {};
    if (req.url === '/__config') { reset(j); return send(res, 200, { ok: true }); }
    if (req.url === '/__stats') return send(res, 200, st);
    if (req.url === '/v1/tasks') {
      st.tasks++; st[j.kind]++;
      if (inflight >= cfg.capacity) { st.rejected++; return send(res, 429, { error: 'saturated', inFlight: inflight, capacity: cfg.capacity }); }
      const n = ++seq;
      if (cfg.hangEvery && n % cfg.hangEvery === 0) { st.hung++; return; }
      if (cfg.errorEvery && n % cfg.errorEvery === 0) { st.errors++; return send(res, 500, { error: 'injected' }); }
      inflight++;
      const ms = cfg.ioMs === null ? (j.kind === 'io' ? j.ioMs : 0) : cfg.ioMs;
      return setTimeout(() => { inflight--; st.ok++; send(res, 200, { id: j.id, agent: cfg.anonymous ? '' : 'w', kind: j.kind, result: resultOf(j), queuedMs: 0, runMs: ms }); }, ms);
    }
    if (req.url === '/v1/dispatch') {
      st.tasks++;
      const n = ++seq;
      if (inflight >= cfg.capacity) { st.rejected++; return send(res, 429, { error: 'saturated' }); }
      st.accepted++;
      if (cfg.loseAccepted > 0) { cfg.loseAccepted--; st.lost++; return send(res, 202, { id: j.id, accepted: true, coordinator: 'w' }); }
      const e = { id: j.id, state: 'pending', executor: null, result: null, acceptedAt: Date.now(), finishedAt: 0 };
      ledger.set(j.id, e);
      inflight++;
      const ms = cfg.ioMs === null ? j.ioMs : cfg.ioMs;
      setTimeout(() => {
        inflight--;
        if (cfg.failEvery && n % cfg.failEvery === 0) { e.state = 'failed'; st.failed++; } else { e.state = 'done'; e.executor = cfg.anonymous ? null : 'w'; e.result = resultOf(j); }
        e.finishedAt = cfg.claimMs === null ? Date.now() : e.acceptedAt + cfg.claimMs;
      }, ms);
      return send(res, 202, { id: j.id, accepted: true, coordinator: 'w' });
    }
    if (req.url === '/v1/dispatch/query') {
      st.queries++;
      if (cfg.queryFails) return send(res, 500, { error: 'down' });
      return send(res, 200, { tasks: j.ids.map((id) => ledger.get(id) || { id, state: 'unknown' }) });
    }
    send(res, 404, { error: 'not found' });
  });
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
parentPort.on('message', (m) => { if (m === 'close') { server.closeAllConnections(); server.close(() => process.exit(0)); } });
`;

let worker: Worker;
let url = '';

async function post(path: string, body: unknown): Promise<Record<string, number> & { lost: number; failed: number }> {
  const r = await fetch(url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return (await r.json()) as Record<string, number> & { lost: number; failed: number };
}
const configure = (c: Record<string, unknown> = {}) => post('/__config', c);
const stats = () => post('/__stats', {});

beforeAll(async () => {
  worker = new Worker(SERVER, { eval: true });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  url = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  worker.postMessage('close');
  await new Promise((r) => worker.once('exit', r));
});

/**
 * The event loop's own delay while `fn` runs (ms). On a shared machine the generator's thread is
 * sometimes descheduled; its send lag must then be explained by the loop's delay, not exceed it.
 * A generator that paced itself wrongly (say one arrival per timer tick) lags far beyond it.
 */
async function withLoopDelay<T>(fn: () => Promise<T>): Promise<[T, { p50: number; max: number }]> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  try {
    const v = await fn();
    return [v, { p50: h.percentile(50) / 1e6, max: h.max / 1e6 }];
  } finally {
    h.disable();
  }
}

function identity(c: { offered: number; ok: number; wrong: number; rejected: number; error: number; timeout: number; lost: number; dropped: number }): number {
  return c.ok + c.wrong + c.rejected + c.error + c.timeout + c.lost + c.dropped;
}

describe('schedule and interleave', () => {
  it('mulberry32 is deterministic and spread', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    const m = xs.reduce((s, v) => s + v, 0) / xs.length;
    expect(m).toBeGreaterThan(0.45);
    expect(m).toBeLessThan(0.55);
    expect(mulberry32(8)()).not.toBe(xs[0]);
  });

  it('Bresenham interleave keeps every prefix within one task of the mix', () => {
    for (const f of [0, 0.2, 0.25, 1 / 3, 0.5, 0.8, 1]) {
      let cpu = 0;
      for (let i = 0; i < 1000; i++) {
        if (isCpuTask(i, f, 0.37)) cpu++;
        expect(Math.abs(cpu - (i + 1) * f)).toBeLessThanOrEqual(1);
      }
    }
    // No two CPU tasks in a row at 20 %.
    for (let i = 0; i < 999; i++) expect(isCpuTask(i, 0.2, 0.1) && isCpuTask(i + 1, 0.2, 0.1)).toBe(false);
  });
});

describe('load generator against a tiny server', () => {
  it('keeps an exact arrival schedule and the offered rate', async () => {
    await configure({ ioMs: 2 });
    const [run, loop] = await withLoopDelay(() => runLoad({ targets: [url], rate: 1000, durationMs: 2000, mix: { io: 0.8, cpu: 0.2 }, cpuRounds: 20 }));
    const s = await stats();
    expect(run.counts.offered).toBe(2000);
    expect(run.counts.sent).toBe(2000);
    expect(run.counts.ok).toBe(2000);
    expect(s.tasks).toBe(2000);
    // Exactly 20 % CPU tasks, interleaved.
    expect(s.cpu).toBe(400);
    // Scheduled times are i ms apart, whatever the timers did.
    for (let i = 0; i < run.n; i++) expect(run.schedMs[i]).toBeCloseTo(i, 6);
    // Sent on time, up to what the event loop itself allowed (timer granularity + the loop's
    // stalls on a busy machine). A generator capped at 500/s would be ~1 s behind by the end.
    expect(run.lag.p50).toBeLessThan(loop.p50 + 5);
    expect(run.lag.p99).toBeLessThan(loop.max + 20);
    // The answers kept pace with the schedule: ok answers per second over it (by answer time).
    expect(run.throughput()).toBeGreaterThan(950 - (loop.max * 1000) / 2000);
    expect(run.throughput()).toBeLessThanOrEqual(1000);
    expect(identity(run.counts)).toBe(run.counts.offered);
  });

  it('sustains thousands of requests per second on keep-alive connections', async () => {
    await configure({ ioMs: 0 });
    await runLoad({ targets: [url], rate: 2000, durationMs: 300 }); // JIT warm-up
    const cpu0 = process.threadCpuUsage();
    const run = await runLoad({ targets: [url], rate: 4000, durationMs: 1500 });
    const cpu = process.threadCpuUsage(cpu0);
    expect(run.counts.offered).toBe(6000);
    expect(run.counts.ok).toBe(6000);
    // The generator's own thread (the server runs in another): CPU per request bounds the rate
    // one core can drive whatever else the machine is doing. ~50 µs measured; 250 µs = 4000/s/core.
    const usPerRequest = (cpu.user + cpu.system) / run.counts.sent;
    expect(usPerRequest).toBeLessThan(250);
    // (Wall-clock pace at this rate depends on how much of the 2 shared cores this thread gets;
    // the 1000/s test above checks the pacing, this one the cost.)
  });

  it('windows: offered by schedule, throughput by answer time, with a rate step', async () => {
    await configure({ ioMs: 5 });
    const run = await runLoad({ targets: [url], rate: (t) => (t < 1000 ? 200 : 600), durationMs: 2000 });
    expect(run.counts.offered).toBe(800);
    const w = run.windows(500);
    expect(w.map((x) => x.offered)).toEqual([100, 100, 300, 300]);
    expect(w.map((x) => x.startMs)).toEqual([0, 500, 1000, 1500]);
    expect(Math.abs(w[1]!.throughput - 200)).toBeLessThan(25);
    expect(Math.abs(w[2]!.throughput - 600)).toBeLessThan(50);
    expect(w[0]!.p50).toBeGreaterThanOrEqual(5);
    // Every ok answer falls in exactly one window (the last one runs to the schedule's end;
    // answers after it are outside).
    const inWindows = w.reduce((s, x) => s + x.ok, 0);
    expect(inWindows).toBe(run.okBetween(0, run.scheduleEndMs));
    // A partial tail shorter than half a window merges into the last one.
    expect(run.windows(600).map((x) => x.endMs)).toEqual([600, 1200, 2000]);
  });

  it('measures latency from the scheduled time, so a stalled client is not hidden', async () => {
    await configure({ ioMs: 1 });
    const h = startLoad({ targets: [url], rate: 500, durationMs: 1200 });
    // Stall this thread (the generator's) for 200 ms at t = 400 ms. The server, in its worker,
    // keeps running; the tasks due during the stall go out late and must be charged for it.
    await new Promise((r) => setTimeout(r, 400));
    const stallStart = h.now();
    const until = performance.now() + 200;
    while (performance.now() < until) {
      /* busy: a stalled event loop */
    }
    const stallEnd = h.now();
    const run = await h.done;
    expect(run.counts.ok).toBe(600);
    let checked = 0;
    for (let i = 0; i < run.n; i++) {
      const s = run.schedMs[i]!;
      if (s > stallStart + 5 && s < stallEnd - 20) {
        const lat = run.doneMs[i]! - s;
        expect(lat).toBeGreaterThanOrEqual(stallEnd - s - 1);
        expect(run.lagMs[i]!).toBeGreaterThanOrEqual(stallEnd - s - 1);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
    // The stall shows in the latency tail, not only in a few samples.
    expect(run.latencySummary().max!).toBeGreaterThan(150);
    expect(run.lag.max).toBeGreaterThan(150);
  });

  it('counts 429s, errors and timeouts exactly as the server saw them', async () => {
    await configure({ ioMs: 100, capacity: 5, errorEvery: 7, hangEvery: 11 });
    // The timeout is far above the 100 ms tasks, so only the hung ones time out on a busy machine.
    const run = await runLoad({ targets: [url], rate: 300, durationMs: 1000, timeoutMs: 2500 });
    const s = await stats();
    const c = run.counts;
    expect(c.offered).toBe(300);
    expect(c.rejected).toBe(s.rejected);
    expect(c.rejected).toBeGreaterThan(100);
    expect(c.ok).toBe(s.ok);
    expect(c.error).toBe(s.errors);
    expect(c.error).toBeGreaterThan(0);
    expect(c.timeout).toBe(s.hung);
    expect(c.timeout).toBeGreaterThan(0);
    expect(run.errorKinds['http 500']).toBe(s.errors);
    expect(identity(c)).toBe(c.offered);
    // Windows place answers by answer time up to the schedule's end: a 429 answered after it
    // (a busy machine delays the last ones) lies outside every window, and none is counted twice.
    const w = run.windows(250);
    let rejectedInSchedule = 0;
    for (let i = 0; i < run.n; i++) {
      if (run.outcome[i] === OUTCOME.rejected && run.doneMs[i]! < run.scheduleEndMs) rejectedInSchedule++;
    }
    expect(rejectedInSchedule).toBeGreaterThan(c.rejected - 10);
    expect(w.reduce((a, x) => a + x.rejected, 0)).toBe(rejectedInSchedule);
  });

  it('drops arrivals over the outstanding cap and counts them', async () => {
    await configure({ ioMs: 200 });
    const run = await runLoad({ targets: [url], rate: 500, durationMs: 600, maxOutstanding: 10 });
    const c = run.counts;
    expect(c.offered).toBe(300);
    expect(c.dropped).toBeGreaterThan(200);
    expect(c.sent).toBe(c.offered - c.dropped);
    expect(c.ok).toBe(c.sent);
    expect(identity(c)).toBe(c.offered);
  });

  it('connection errors are errors, with their code', async () => {
    const run = await runLoad({ targets: ['http://127.0.0.1:1'], rate: 100, durationMs: 200 });
    expect(run.counts.error).toBe(20);
    expect(run.errorKinds.ECONNREFUSED).toBe(20);
  });

  it('dispatch: counts accepted tasks that are never done as lost', async () => {
    await configure({ ioMs: 30, loseAccepted: 3, failEvery: 50 });
    const run = await runLoad({ targets: [url], rate: 400, durationMs: 1000, mode: 'dispatch', drainMs: 2000 });
    const s = await stats();
    const c = run.counts;
    expect(c.offered).toBe(400);
    expect(c.accepted).toBe(s.accepted);
    expect(c.lost).toBe(s.lost + s.failed);
    expect(run.lostDetail.unknown).toBe(3);
    expect(run.lostDetail.failed).toBe(s.failed);
    expect(s.failed).toBeGreaterThan(0);
    expect(c.ok).toBe(c.accepted - c.lost);
    expect(identity(c)).toBe(c.offered);
    // The coordinator reports its timing, so end-to-end latency covers the task's 30 ms.
    expect(run.hasE2e()).toBe(true);
    expect(run.latencySummary(0, Infinity, 'e2e').p50!).toBeGreaterThanOrEqual(29);
    for (let i = 0; i < run.n; i++) expect(run.outcome[i]).not.toBe(OUTCOME.accepted);
  });

  it('dispatch: tasks still pending or unreachable at the drain deadline are lost', async () => {
    await configure({ ioMs: 5000 });
    const run = await runLoad({ targets: [url], rate: 100, durationMs: 300, mode: 'dispatch', drainMs: 300 });
    expect(run.counts.accepted).toBe(30);
    expect(run.counts.lost).toBe(30);
    expect(run.lostDetail.pending).toBe(30);
    expect(run.endMs - run.scheduleEndMs).toBeGreaterThanOrEqual(290);

    await configure({ ioMs: 5, queryFails: true });
    const run2 = await runLoad({ targets: [url], rate: 100, durationMs: 300, mode: 'dispatch', drainMs: 300 });
    expect(run2.lostDetail.unreachable).toBe(30);
  });

  it('round robin over targets that change, and stop() ends the schedule early', async () => {
    await configure({ ioMs: 1 });
    const alias = url.replace('127.0.0.1', 'localhost');
    const h = startLoad({ targets: [url], rate: 200, durationMs: 5000 });
    await new Promise((r) => setTimeout(r, 300));
    h.setTargets([url, alias]);
    await new Promise((r) => setTimeout(r, 500));
    h.stop();
    const run = await h.done;
    expect(run.scheduleEndMs).toBeLessThan(1500);
    expect(run.counts.offered).toBeLessThan(300);
    const rows = run.perTarget();
    expect(rows.length).toBe(2);
    expect(rows[1]!.sent).toBeGreaterThan(30);
    expect(Math.abs(rows[0]!.sent - rows[1]!.sent)).toBeGreaterThan(20); // first 300 ms all on one
    expect(identity(run.counts)).toBe(run.counts.offered);
  });
});
