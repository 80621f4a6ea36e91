/**
 * The harness checks what it is told: result checks (`src/bench/load/verify.ts`) on their own, and
 * in both load loops (the open loop's `/v1/tasks` and dispatch drain, the closed loop through
 * `/v1/dispatch`) against a tiny agent-contract server in a worker thread that can answer wrong
 * digests (the wrong-digests defect), no executor, or timings that contradict the harness's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { checkAnswer, defaultCpuCheckEvery, KIND, OUTCOME, runLoad, startClosedLoop, taskPayload, type LoadCounts } from '../../src/bench/load/index.ts';
import { newCheckCounts } from '../../src/bench/load/verify.ts';
import { cpuTaskResult } from '../../src/agent/work.ts';

const SERVER = String.raw`
const http = require('node:http');
const crypto = require('node:crypto');
const { parentPort } = require('node:worker_threads');
function cpuResult(payload, rounds) {
  let d = crypto.createHash('sha256').update(payload, 'utf8').digest();
  const buf = Buffer.allocUnsafe(1024);
  for (let off = 0; off < 1024; off += 32) d.copy(buf, off);
  for (let i = 0; i < rounds; i++) { d = crypto.createHash('sha256').update(buf).digest(); d.copy(buf, (i * 32) % 1024); }
  return d.toString('hex');
}
let cfg, st, inflight, cpuSeen;
const ledger = new Map();
function reset(c) {
  cfg = Object.assign({ capacity: 1e9, wrongEvery: 0, anonymous: false, claimMs: null }, c || {});
  st = { tasks: 0, wrong: 0, cpu: 0, rejected: 0, accepted: 0, queries: 0, maxInflight: 0 };
  inflight = 0; cpuSeen = 0; ledger.clear();
}
reset();
function resultOf(j) {
  if (j.kind === 'io') return j.payload;
  st.cpu++;
  const skip = cfg.wrongEvery > 0 && ++cpuSeen % cfg.wrongEvery === 0;
  if (skip) st.wrong++;
  return cpuResult(j.payload, skip ? 0 : j.cpuRounds);
}
function send(res, code, obj) { const b = JSON.stringify(obj); res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) }); res.end(b); }
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const j = body ? JSON.parse(body) : {};
    if (req.url === '/__config') { reset(j); return send(res, 200, { ok: true }); }
    if (req.url === '/__stats') return send(res, 200, st);
    if (req.url === '/v1/tasks') {
      st.tasks++;
      const ms = j.kind === 'io' ? j.ioMs : 0;
      return setTimeout(() => send(res, 200, { id: j.id, agent: cfg.anonymous ? '' : 'w', kind: j.kind, result: resultOf(j), queuedMs: 0, runMs: ms }), ms);
    }
    if (req.url === '/v1/dispatch') {
      st.tasks++;
      if (ledger.has(j.id)) return send(res, 202, { id: j.id, accepted: true, coordinator: 'w' });
      if (inflight >= cfg.capacity) { st.rejected++; return send(res, 429, { error: 'saturated' }); }
      st.accepted++;
      inflight++;
      st.maxInflight = Math.max(st.maxInflight, inflight);
      const e = { id: j.id, state: 'pending', executor: null, attempts: 1, result: null, error: null, acceptedAt: Date.now(), finishedAt: null };
      ledger.set(j.id, e);
      setTimeout(() => {
        inflight--;
        e.state = 'done';
        e.executor = cfg.anonymous ? null : 'w';
        e.result = resultOf(j);
        e.finishedAt = cfg.claimMs === null ? Date.now() : e.acceptedAt + cfg.claimMs;
      }, j.kind === 'io' ? j.ioMs : 0);
      return send(res, 202, { id: j.id, accepted: true, coordinator: 'w' });
    }
    if (req.url === '/v1/dispatch/query') {
      st.queries++;
      return send(res, 200, { tasks: j.ids.map((id) => ledger.get(id) || { id, state: 'unknown', executor: null, attempts: 0, result: null, error: null }) });
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

async function post(path: string, body: unknown): Promise<Record<string, number>> {
  const r = await fetch(url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return (await r.json()) as Record<string, number>;
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

function identity(c: LoadCounts): number {
  return c.ok + c.wrong + c.rejected + c.error + c.timeout + c.lost + c.dropped;
}

describe('checkAnswer', () => {
  const payload = 'abc.1';
  const good = cpuTaskResult(payload, 50);
  const skipped = cpuTaskResult(payload, 0);

  it('passes right answers and counts what it checked', () => {
    const c = newCheckCounts(1);
    expect(checkAnswer(c, KIND.io, 'r-1', payload, 50, { id: 'r-1', agent: 'a1', result: payload }, 'agent')).toBeNull();
    expect(checkAnswer(c, KIND.cpuChecked, 'r-2', payload, 50, { id: 'r-2', executor: 'a2', result: good }, 'executor')).toBeNull();
    // Outside the sample: the form is checked, the digest is not recomputed.
    expect(checkAnswer(c, KIND.cpuUnchecked, 'r-3', payload, 50, { id: 'r-3', agent: 'a1', result: skipped }, 'agent')).toBeNull();
    expect(c).toMatchObject({ checked: 3, cpuChecked: 1, cpuUnchecked: 1, mismatch: { id: 0, executor: 0, result: 0, body: 0 } });
    expect([...c.executors].sort()).toEqual(['a1', 'a2']);
  });

  it('a wrong digest is a mismatch, counted by kind, never a pass', () => {
    const c = newCheckCounts(1);
    // The wrong-digests defect answers a CPU task with its 0-round digest.
    expect(checkAnswer(c, KIND.cpuChecked, 'r-1', payload, 50, { id: 'r-1', agent: 'a', result: skipped }, 'agent')).toBe('result');
    expect(checkAnswer(c, KIND.io, 'r-2', payload, 50, { id: 'r-2', agent: 'a', result: 'not the payload' }, 'agent')).toBe('result');
    expect(checkAnswer(c, KIND.cpuUnchecked, 'r-3', payload, 50, { id: 'r-3', agent: 'a', result: 'xyz' }, 'agent')).toBe('result');
    expect(checkAnswer(c, KIND.io, 'r-4', payload, 50, { id: 'r-4', agent: '', result: payload }, 'agent')).toBe('executor');
    expect(checkAnswer(c, KIND.io, 'r-5', payload, 50, { id: 'r-5', executor: null, result: payload }, 'executor')).toBe('executor');
    expect(checkAnswer(c, KIND.io, 'r-6', payload, 50, { id: 'other', agent: 'a', result: payload }, 'agent')).toBe('id');
    expect(checkAnswer(c, KIND.io, 'r-7', payload, 50, null, 'agent')).toBe('body');
    expect(c.checked).toBe(7);
    expect(c.mismatch).toEqual({ id: 1, executor: 2, result: 3, body: 1 });
  });

  it('samples every k-th CPU task so that recomputing stays cheap, and payloads are unique', () => {
    expect(defaultCpuCheckEvery(10, 0.2, 200)).toBe(1); // 400 rounds/s
    expect(defaultCpuCheckEvery(200, 0.2, 200)).toBe(2); // 8000 rounds/s: every 2nd
    expect(defaultCpuCheckEvery(10_000, 0.2, 200)).toBe(80);
    expect(defaultCpuCheckEvery(1000, 0, 200)).toBe(1);
    const bases = Array.from({ length: 64 }, (_, k) => `b${k}`);
    const seen = new Set(Array.from({ length: 5000 }, (_, i) => taskPayload(bases, i)));
    expect(seen.size).toBe(5000);
  });
});

describe('open loop: every answer checked', () => {
  it('tasks: a wrong digest is its own outcome, counted, never ok', async () => {
    await configure({ wrongEvery: 3 });
    const run = await runLoad({ targets: [url], rate: 200, durationMs: 1000, mix: { io: 0.5, cpu: 0.5 }, cpuRounds: 20, cpuCheckEvery: 1 });
    const s = await stats();
    const c = run.counts;
    expect(c.offered).toBe(200);
    expect(s.wrong).toBeGreaterThan(20);
    expect(c.wrong).toBe(s.wrong);
    expect(run.checks.mismatch.result).toBe(s.wrong);
    expect(c.ok).toBe(c.offered - s.wrong!);
    expect(run.checks.checked).toBe(c.offered);
    expect(run.checks.cpuChecked).toBe(s.cpu);
    expect(identity(c)).toBe(c.offered);
    for (let i = 0; i < run.n; i++) if (run.outcome[i] === OUTCOME.wrong) expect(run.kind[i]).toBe(KIND.cpuChecked);
    expect(run.summary().checks).toMatchObject({ checked: 200, mismatch: { result: s.wrong } });
  });

  it('tasks: with a sample, only the recomputed digests can be caught, and the rest is counted as not recomputed', async () => {
    await configure({ wrongEvery: 1 });
    const run = await runLoad({ targets: [url], rate: 200, durationMs: 1000, mix: { io: 0.5, cpu: 0.5 }, cpuRounds: 20, cpuCheckEvery: 4 });
    const s = await stats();
    expect(s.cpu).toBe(100);
    expect(run.checks.cpuChecked).toBe(25);
    expect(run.checks.cpuUnchecked).toBe(75);
    expect(run.counts.wrong).toBe(25);
    expect(run.checks.cpuCheckEvery).toBe(4);
  });

  it('tasks: an answer without an executor is wrong', async () => {
    await configure({ anonymous: true });
    const run = await runLoad({ targets: [url], rate: 100, durationMs: 300, mix: { io: 1, cpu: 0 }, ioMs: 1 });
    expect(run.counts.ok).toBe(0);
    expect(run.counts.wrong).toBe(30);
    expect(run.checks.mismatch.executor).toBe(30);
  });

  it('dispatch: the drain checks each done task, and a coordinator-reported duration is only believed within the harness bounds', async () => {
    await configure({ wrongEvery: 2, claimMs: 60_000 });
    const run = await runLoad({ targets: [url], rate: 200, durationMs: 500, mode: 'dispatch', mix: { io: 0.5, cpu: 0.5 }, ioMs: 10, cpuRounds: 20, cpuCheckEvery: 1, drainMs: 3000, pollMs: 50 });
    const s = await stats();
    const c = run.counts;
    expect(c.accepted).toBe(100);
    expect(c.wrong).toBe(s.wrong);
    expect(c.ok).toBe(100 - s.wrong!);
    expect(identity(c)).toBe(c.offered);
    // The server claims every task took 60 s; the harness saw them done within seconds.
    expect(run.e2eClamped).toBe(c.ok);
    const e2e = run.latencySummary(0, Infinity, 'e2e');
    expect(e2e.max!).toBeLessThan(run.endMs + 1);
  });

  it('dispatch: a coordinator claiming an IO task done at once is not believed below its wait', async () => {
    await configure({ claimMs: 0 });
    const run = await runLoad({ targets: [url], rate: 100, durationMs: 300, mode: 'dispatch', mix: { io: 1, cpu: 0 }, ioMs: 40, drainMs: 3000, pollMs: 50 });
    expect(run.counts.ok).toBe(30);
    expect(run.e2eClamped).toBe(30);
    expect(run.latencySummary(0, Infinity, 'e2e').p50!).toBeGreaterThanOrEqual(40);
  });
});

describe('closed loop through /v1/dispatch', () => {
  it('keeps the system saturated, counts what it completes, and checks every result', async () => {
    await configure({ capacity: 20, wrongEvery: 2 });
    const ioMs = 200;
    const h = startClosedLoop({ coordinators: [url], outstanding: 30, rampMs: ioMs, durationMs: 1800, cpuFraction: 0.25, ioMs, cpuRounds: 20, cpuCheckEvery: 1, pollMs: 20 });
    const run = await h.finish(3000);
    const s = await stats();
    const c = run.counts;
    // Never more than the server's capacity at once; what it could not take was refused.
    expect(s.maxInflight).toBeLessThanOrEqual(20);
    expect(c.rejected).toBe(s.rejected);
    expect(c.rejected).toBeGreaterThan(0);
    expect(c.accepted).toBe(s.accepted);
    expect(c.wrong).toBe(s.wrong);
    expect(c.wrong).toBeGreaterThan(0);
    expect(c.ok + c.wrong).toBe(c.accepted);
    expect(c.lost).toBe(0);
    expect(identity(c)).toBe(c.offered);
    expect(run.checks.checked).toBe(c.accepted);
    // Saturated: about capacity / task length completions per second once the ramp is over
    // (IO tasks hold a slot for 200 ms plus the polling; CPU tasks are quick).
    const thr = run.throughput(400, 1800);
    expect(thr).toBeGreaterThan(50);
    expect(thr).toBeLessThan(20 * (1000 / ioMs) * 1.5);
    // Latencies are the harness's: from the send to the query answer that said done.
    for (let i = 0; i < run.n; i++) {
      if (run.outcome[i] === OUTCOME.ok && run.kind[i] === KIND.io) expect(run.doneMs[i]! - run.schedMs[i]!).toBeGreaterThanOrEqual(ioMs - 1);
    }
  });

  it('a refused slot retries a few times, then waits parked for a probe: 429s stay bounded by the ticks, not the slots', async () => {
    await configure({ capacity: 20 });
    // Nothing completes during the run (5 s tasks): 20 slots hold the capacity, 10 are refused.
    const h = startClosedLoop({ coordinators: [url], outstanding: 30, rampMs: 0, durationMs: 1800, cpuFraction: 0, ioMs: 5000, cpuRounds: 0, pollMs: 20, quickRetries: 4 });
    await new Promise((r) => setTimeout(r, 1800));
    expect(h.parked()).toBe(10);
    const run = await h.finish(0);
    const ticks = 1800 / 20;
    // 10 slots x (1 + 4 quick retries), then one probe per tick; a plain retry loop would be ~10 x ticks.
    expect(run.counts.rejected).toBeGreaterThanOrEqual(50);
    expect(run.counts.rejected).toBeLessThanOrEqual(10 * 5 + ticks + 5);
    expect(run.counts.accepted).toBe(20);
  });

  it('a task still pending at the drain deadline is counted as lost (pending), not ok', async () => {
    await configure({ capacity: 100 });
    const h = startClosedLoop({ coordinators: [url], outstanding: 5, rampMs: 0, durationMs: 200, cpuFraction: 0, ioMs: 5000, cpuRounds: 0, pollMs: 20 });
    const run = await h.finish(300);
    expect(run.counts.accepted).toBe(5);
    expect(run.counts.lost).toBe(5);
    expect(run.lostDetail.pending).toBe(5);
    expect(run.counts.ok).toBe(0);
  });
});
