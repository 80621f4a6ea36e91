/**
 * Prometheus bounded (issue 13, "Bounded"): response bodies capped, server text cleaned, queries
 * limited in concurrency under one total deadline per finish. Real local HTTP servers
 * (node:http on 127.0.0.1:0): an endless body, a server that never answers, a server that counts
 * the requests it has in flight, a server that stops mid-run.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Observations, type ObservedMetric } from '../../src/api/schema.ts';
import { PrometheusSource } from '../../src/bench/monitoring/prometheus-source.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import { OBSERVE_CONCURRENCY, observeSteps, type ObserveInput } from '../../src/operator/observe.ts';
import { DeadlineError, QueryBounds } from '../../src/prometheus/bounded.ts';
import { PrometheusClient, cleanServerText } from '../../src/prometheus/client.ts';
import { rejection } from '../support/prometheus-error.ts';

interface Req {
  path: string;
  query: string;
  req: IncomingMessage;
}
type Handler = (r: Req, res: ServerResponse) => void;

let server: Server;
let base: string;
let handler: Handler = (_r, res) => res.end();
/** Requests the server has open now, and the most at once. */
let inFlight = 0;
let peak = 0;
let seen: Req[] = [];
/** Bytes written by endless bodies (to see they stop). */
let streamed = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    res.on('close', () => inFlight--);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const u = new URL(req.url!, 'http://x');
      const form = new URLSearchParams(body || u.search);
      const r: Req = { path: u.pathname, query: form.get('query') ?? '', req };
      seen.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const held: ServerResponse[] = [];
afterEach(() => {
  for (const res of held.splice(0)) res.destroy();
  seen = [];
  peak = 0;
  streamed = 0;
});

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const T = 1_767_225_620; // 2026-01-01T00:00:20Z
const scalar = (res: ServerResponse, v: number): void => json(res, 200, { status: 'success', data: { resultType: 'scalar', result: [v, String(v)] } });
const emptyVector = (res: ServerResponse): void => json(res, 200, { status: 'success', data: { resultType: 'vector', result: [] } });
const matrixOf = (res: ServerResponse, v: number): void =>
  json(res, 200, { status: 'success', data: { resultType: 'matrix', result: [{ metric: {}, values: [[T - 10, String(v)], [T, String(v)]] }] } });
/** Writes 64 KiB chunks until the client goes away (no content-length: chunked, endless). */
const endless = (res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"status":"success","data":{"resultType":"vector","result":[');
  const chunk = `${'{"metric":{},"value":[1,"1"]},'.repeat(2048)}`;
  const push = (): void => {
    if (res.destroyed) return;
    streamed += chunk.length;
    if (res.write(chunk)) setImmediate(push);
    else res.once('drain', push);
  };
  push();
};

describe('QueryBounds', () => {
  it('never runs more than its concurrency at once, FIFO, and refuses the queued when the deadline passes', async () => {
    const b = new QueryBounds({ concurrency: 3, deadlineMs: 300, what: 'the test batch' });
    let active = 0;
    let most = 0;
    const order: number[] = [];
    const task = (i: number, ms: number) => b.run(async () => {
      active++;
      most = Math.max(most, active);
      order.push(i);
      await new Promise((r) => setTimeout(r, ms));
      active--;
      return i;
    });
    const t0 = Date.now();
    const r = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => task(i, 50)));
    b.close();
    expect(most).toBe(3);
    expect(b.peak).toBe(3);
    expect(order).toEqual([...order].sort((x, y) => x - y));
    // 300 ms at 3 × 50 ms: about 18 ran; the rest were refused without running, with the deadline.
    const ok = r.filter((x) => x.status === 'fulfilled').length;
    expect(ok).toBeGreaterThan(5);
    expect(ok).toBeLessThan(30);
    expect(order.length).toBeLessThan(30);
    const refused = r.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(DeadlineError);
    expect(String(refused.reason.message)).toBe('the test batch: the 300 ms deadline for all its Prometheus queries passed');
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(b.expired).toBe(true);
    await expect(b.run(async () => 1)).rejects.toBeInstanceOf(DeadlineError);
  });

  it('a caller\'s abort stops the batch with its reason', async () => {
    const ac = new AbortController();
    const b = new QueryBounds({ concurrency: 1, deadlineMs: 60_000, what: 'x', signal: ac.signal });
    const first = b.run((s) => new Promise((_r, rej) => s.addEventListener('abort', () => rej(s.reason))));
    const queued = b.run(async () => 'ran');
    ac.abort(new Error('run cancelled'));
    await expect(first).rejects.toThrow('run cancelled');
    await expect(queued).rejects.toThrow('run cancelled');
    b.close();
  });

  it('rejects bad options naming the field', () => {
    expect(() => new QueryBounds({ concurrency: 0, deadlineMs: 10, what: 'x' })).toThrow(/concurrency must be an integer from 1/);
    expect(() => new QueryBounds({ concurrency: 2, deadlineMs: Number.NaN, what: 'x' })).toThrow(/deadlineMs must be an integer/);
    expect(() => new QueryBounds({ concurrency: 2.5, deadlineMs: 10, what: 'x' })).toThrow(/concurrency/);
  });
});

describe('PrometheusClient bounds', () => {
  it('an endless body is cut at the cap, the request aborted, in bounded time', async () => {
    handler = (_r, res) => endless(res);
    const c = new PrometheusClient({ url: base, timeoutMs: 30_000, maxBodyBytes: 1024 * 1024 });
    const t0 = Date.now();
    const e = await rejection(c.query('up{job="endless"}'));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(e.kind).toBe('too-large');
    expect(e.message).toMatch(/larger than the 1 MiB cap \(more than \d+ bytes read\); the request was aborted \(query: up\{job="endless"\}\)/);
    // The connection is closed: the server stops writing (not a body still read in the background).
    await new Promise((r) => setTimeout(r, 150));
    const after = streamed;
    await new Promise((r) => setTimeout(r, 200));
    expect(streamed).toBe(after);
    expect(inFlight).toBe(0);
    // What was written before the abort is about the cap (socket buffers), not unbounded.
    expect(after).toBeLessThan(16 * 1024 * 1024);
  });

  it('the default cap is 16 MiB; a declared content-length above the cap is refused unread', async () => {
    handler = (_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(17 * 1024 * 1024) });
      res.write('{"status":'); // and never the rest
      held.push(res);
    };
    const c = new PrometheusClient({ url: base, timeoutMs: 30_000 });
    const t0 = Date.now();
    const e = await rejection(c.query('up'));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(e.kind).toBe('too-large');
    expect(e.message).toContain('larger than the 16 MiB cap (content-length 17825792)');
  });

  it('the request timeout covers a body that trickles forever', async () => {
    handler = (_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 20);
      held.push(res);
    };
    const c = new PrometheusClient({ url: base, timeoutMs: 300 });
    const t0 = Date.now();
    const e = await rejection(c.query('slow_body'));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(e.kind).toBe('timeout');
    expect(e.message).toMatch(/did not answer within 300 ms \(query: slow_body\)/);
  });

  it('server error text: control characters removed, cut at 200 characters, the query named', async () => {
    const evil = `bad\u001b[31m thing\r\nInjected: header\u0000\u202e${'x'.repeat(100_000)}`;
    handler = (r, res) => {
      if (r.query === 'api_error') json(res, 422, { status: 'error', errorType: 'execution\u0007\n', error: evil, warnings: [] });
      else {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end(`<html>${evil}</html>`);
      }
    };
    const c = new PrometheusClient({ url: base });
    for (const q of ['api_error', 'proxy_page']) {
      const e = await rejection(c.query(q));
      expect(e.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
      expect(e.message.length).toBeLessThan(400);
      expect(e.message).toContain('bad [31m thing Injected: header');
      expect(e.message).toMatch(new RegExp(`x…\\s\\(query: ${q}\\)$`));
    }
    const e = await rejection(c.query('api_error'));
    expect(e.errorType).toBe('execution');
  });

  it('cleanServerText: collapses, strips, cuts without splitting a surrogate pair', () => {
    expect(cleanServerText('a\u0000b\u0085c\u2028d\t\te')).toBe('a b c d e');
    expect(cleanServerText(`${'a'.repeat(199)}😀tail`)).toBe(`${'a'.repeat(199)}…`);
    expect(cleanServerText('y'.repeat(10_000)).length).toBe(201);
  });

  it('a caller\'s deadline is a timeout naming the deadline and the query; another abort is `aborted`', async () => {
    handler = (_r, res) => held.push(res);
    const c = new PrometheusClient({ url: base, timeoutMs: 30_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new DeadlineError('the finish: the 200 ms deadline passed')), 200);
    const e = await rejection(c.query('never', undefined, ac.signal));
    expect(e.kind).toBe('timeout');
    expect(e.message).toBe(`Prometheus at ${base}/ did not answer in time: the finish: the 200 ms deadline passed (query: never)`);
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(new Error('run cancelled')), 50);
    const e2 = await rejection(c.queryRange('never2', 1, 2, 1, ac2.signal));
    expect([e2.kind, e2.message]).toEqual(['aborted', 'request aborted: run cancelled (query: never2)']);
  });

  it('rejects bad options naming the field', () => {
    expect(() => new PrometheusClient({ url: base, maxBodyBytes: 0 })).toThrow(/maxBodyBytes must be a positive integer/);
    expect(() => new PrometheusClient({ url: base, timeoutMs: -1 })).toThrow(/timeoutMs must be a positive integer/);
  });
});

const START = '2026-01-01T00:00:00.000Z';
const END = '2026-01-01T00:00:20.000Z';
const extras = Array.from({ length: 64 }, (_, i) => ({ name: `extra_${i}`, query: `extra_metric_${i}` }));
const input = (over: Partial<ObserveInput> = {}): ObserveInput => ({
  url: base,
  namespace: 'bench',
  run: 'nightly',
  attempt: 1,
  steps: [{ step: 'distributed', category: 'distributed', startedAt: START, finishedAt: END }],
  extraQueries: extras,
  timeoutMs: 30_000,
  ...over,
});
/** A Prometheus that answers time() and has no agent series; extras go to `extra`. */
const withExtras = (extra: (r: Req, res: ServerResponse) => void): Handler => (r, res) => {
  if (r.query === 'time()') return scalar(res, T);
  if (r.query.startsWith('extra_metric_')) return extra(r, res);
  if (r.path.endsWith('query_range')) return json(res, 200, { status: 'success', data: { resultType: 'matrix', result: [] } });
  return emptyVector(res);
};
const byName = (ms: ObservedMetric[]) => new Map(ms.map((m) => [m.name, m]));

describe('observeSteps bounded', () => {
  it('a Prometheus that never answers 64 extra queries costs one deadline, not 64 timeouts', async () => {
    handler = withExtras((_r, res) => held.push(res));
    const t0 = Date.now();
    const o = await observeSteps(input({ deadlineMs: 1000 }));
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2500);
    Observations.parse(o);
    expect(o.prometheus.available).toBe(true);
    expect(o.prometheus.reason).toMatch(/^64 queries not answered within the 1 s deadline of this finish/);
    const ms = byName(o.steps[0]!.metrics);
    for (const q of extras) {
      const m = ms.get(q.name)!;
      expect(m.value, q.name).toBeNull();
      expect(m.reason, q.name).toBe('not answered: the observations of nightly attempt 1: the 1 s deadline for all its Prometheus queries passed');
    }
    // Only the limiter's worth were ever sent; the rest were never sent at all.
    expect(seen.filter((r) => r.query.startsWith('extra_metric_'))).toHaveLength(OBSERVE_CONCURRENCY);
    expect(peak).toBeLessThanOrEqual(OBSERVE_CONCURRENCY);
    // The in-flight ones were aborted, not left open.
    await new Promise((r) => setTimeout(r, 100));
    expect(inFlight).toBe(0);
  });

  it('never more than OBSERVE_CONCURRENCY queries in flight; every answer kept', async () => {
    handler = withExtras((r, res) => setTimeout(() => matrixOf(res, Number(r.query.slice('extra_metric_'.length))), 15));
    const o = await observeSteps(input());
    expect(peak).toBe(OBSERVE_CONCURRENCY);
    expect(o.prometheus.reason).toBeUndefined();
    const ms = byName(o.steps[0]!.metrics);
    extras.forEach((q, i) => expect(ms.get(q.name)!.value, q.name).toBe(i));
  });

  it('endless bodies: each extra cut at the cap with the reason, the finish bounded', async () => {
    handler = withExtras((_r, res) => endless(res));
    const t0 = Date.now();
    const o = await observeSteps(input({ extraQueries: extras.slice(0, 8), maxBodyBytes: 256 * 1024, deadlineMs: 20_000 }));
    expect(Date.now() - t0).toBeLessThan(5000);
    // (No server-side in-flight count here: the server notices an aborted socket a tick after the
    // client has freed its slot. The tests above count it where answers end cleanly.)
    // What the server got to write is about 8 caps plus socket buffers, not an endless amount.
    await new Promise((r) => setTimeout(r, 100));
    expect(streamed).toBeLessThan(8 * 256 * 1024 + 8 * 4 * 1024 * 1024);
    expect(inFlight).toBe(0);
    const ms = byName(o.steps[0]!.metrics);
    for (const q of extras.slice(0, 8)) {
      expect(ms.get(q.name)!.value).toBeNull();
      expect(ms.get(q.name)!.reason).toMatch(new RegExp(`larger than the 256 KiB cap .*\\(query: ${q.query}\\)$`));
    }
  });

  it('Prometheus stopped mid-run: every figure null with the reason, never 0', async () => {
    const gone = createServer((req, res) => {
      // Answers the first query (time()), then stops listening and drops every connection.
      scalar(res, T);
      res.on('finish', () => {
        gone.close();
        gone.closeAllConnections();
      });
      req.resume();
    });
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
    const o = await observeSteps(input({
      url,
      steps: [
        { step: 'distributed', category: 'distributed', startedAt: START, finishedAt: END },
        { step: 'monitoring', category: 'monitoring', startedAt: START, finishedAt: END },
      ],
      extraQueries: extras.slice(0, 3),
    }));
    Observations.parse(o);
    expect(o.prometheus.available).toBe(true);
    expect(o.prometheus.reason).toMatch(/stopped answering during the queries: Prometheus at .* unreachable: ECONNREFUSED/);
    expect(o.steps).toHaveLength(2);
    for (const s of o.steps) {
      expect(s.metrics.length).toBe(7 + 3);
      for (const m of s.metrics) {
        expect(m.value, `${s.step}/${m.name}`).toBeNull();
        expect(m.reason, `${s.step}/${m.name}`).toMatch(/ECONNREFUSED/);
      }
    }
  });

  it('bad bounds are refused naming the field', async () => {
    await expect(observeSteps(input({ concurrency: 0 }))).rejects.toThrow(/concurrency must be an integer/);
  });
});

describe('PrometheusSource (3.2/3.5) bounded', () => {
  it('64 extra queries of a stalled Prometheus: at most 4 at once, one deadline, each with the deadline as its error', async () => {
    const inst = base.slice('http://'.length);
    handler = (r, res) => {
      if (r.path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end('a_metric 1\n');
      }
      if (r.query === 'time()') return scalar(res, T);
      if (r.query.startsWith('extra_metric_')) return held.push(res);
      if (r.query.startsWith('up{') && !r.query.includes('[')) {
        return json(res, 200, { status: 'success', data: { resultType: 'vector', result: [{ metric: { instance: inst }, value: [T, '1'] }] } });
      }
      if (r.query.startsWith('count_over_time(')) {
        return json(res, 200, { status: 'success', data: { resultType: 'vector', result: [{ metric: { instance: inst }, value: [T, '20'] }] } });
      }
      if (r.query.includes('[')) {
        const metric = r.query.slice(0, r.query.indexOf('{'));
        const v = metric === 'up' ? 1 : metric === 'scrape_duration_seconds' ? 0.004 : 120;
        return json(res, 200, {
          status: 'success',
          data: { resultType: 'matrix', result: [{ metric: { instance: inst }, values: Array.from({ length: 20 }, (_, i) => [T - 20 + i, String(v)]) }] },
        });
      }
      return json(res, 200, { status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [T, '500'] }] } });
    };
    const ctx = {
      params: { monitoring: { prometheusUrl: base, scrapeIntervalMs: 1000, extraQueries: extras } },
      signal: new AbortController().signal,
    } as unknown as BenchContext;
    const src = await PrometheusSource.begin(ctx, [{ url: base } as never], 1, { deadlineMs: 1000 });
    peak = 0;
    const t0 = Date.now();
    const { m32, m35 } = await src.finish();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(3000);
    expect(peak).toBeLessThanOrEqual(4);
    // 3.2 and 3.5 were answered within the deadline and are measured.
    expect(m32.value).toBeCloseTo(4, 3);
    expect(m35.value).not.toBeNull();
    const ex = m32.details!.extraQueries as Record<string, { error?: string }>;
    expect(Object.keys(ex)).toHaveLength(64);
    for (const q of extras) expect(ex[q.name]!.error, q.name).toBe('not answered: the Prometheus queries of 3.2/3.5: the 1 s deadline for all its Prometheus queries passed');
    expect(seen.filter((r) => r.query.startsWith('extra_metric_')).length).toBeLessThanOrEqual(4);
  });
});
