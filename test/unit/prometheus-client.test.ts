/**
 * The PromQL client against a tiny local HTTP server that answers with real Prometheus-shaped
 * responses (bodies copied from the Prometheus HTTP API documentation and a 2.42 server).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusClient, PrometheusError, escapeRegex, parseQueryData, parseSampleValue, promDuration } from '../../src/prometheus/client.ts';
import { rejection } from '../support/prometheus-error.ts';


interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  form: URLSearchParams;
}

let server: Server;
let base: string;
const seen: Seen[] = [];
type Handler = (req: Seen, res: ServerResponse) => void;
const routes = new Map<string, Handler>();

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const u = new URL(req.url!, 'http://x');
      const s: Seen = { method: req.method!, path: u.pathname, headers: req.headers, form: new URLSearchParams(body || u.search) };
      seen.push(s);
      const h = routes.get(u.pathname);
      if (!h) return json(res, 404, { status: 'error', errorType: 'not_found', error: `no route ${u.pathname}` });
      h(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('parseSampleValue', () => {
  it('parses numbers and the special values', () => {
    expect(parseSampleValue('1.5')).toBe(1.5);
    expect(parseSampleValue('1e-3')).toBe(0.001);
    expect(parseSampleValue('+Inf')).toBe(Number.POSITIVE_INFINITY);
    expect(parseSampleValue('-Inf')).toBe(Number.NEGATIVE_INFINITY);
    expect(parseSampleValue('NaN')).toBeNaN();
  });
  it('rejects what is not a number instead of reading it as zero', () => {
    expect(() => parseSampleValue('')).toThrow(PrometheusError);
    expect(() => parseSampleValue('abc')).toThrow(/not a number/);
    expect(() => parseSampleValue(3)).toThrow(/not a string/);
  });
});

describe('parseQueryData', () => {
  it('vector', () => {
    const r = parseQueryData({
      resultType: 'vector',
      result: [
        { metric: { __name__: 'up', job: 'prometheus', instance: 'localhost:9090' }, value: [1435781451.781, '1'] },
        { metric: { __name__: 'up', job: 'node', instance: 'localhost:9100' }, value: [1435781451.781, '0'] },
      ],
    });
    expect(r.resultType).toBe('vector');
    expect(r.series).toHaveLength(2);
    expect(r.series[0]!.metric.instance).toBe('localhost:9090');
    expect(r.series[0]!.points).toEqual([{ t: 1435781451.781, v: 1 }]);
    expect(r.series[1]!.points[0]!.v).toBe(0);
  });
  it('matrix', () => {
    const r = parseQueryData({
      resultType: 'matrix',
      result: [
        { metric: { __name__: 'up', job: 'prometheus' }, values: [[1435781430.781, '1'], [1435781445.781, '1'], [1435781460.781, '0.5']] },
      ],
    });
    expect(r.series[0]!.points.map((p) => p.v)).toEqual([1, 1, 0.5]);
    expect(r.series[0]!.points[2]!.t).toBe(1435781460.781);
  });
  it('scalar and string', () => {
    expect(parseQueryData({ resultType: 'scalar', result: [1700000000, '42'] }).series[0]!.points[0]!.v).toBe(42);
    const s = parseQueryData({ resultType: 'string', result: [1700000000, 'hello'] });
    expect(s.series[0]!.metric.value).toBe('hello');
    expect(s.series[0]!.points[0]!.v).toBeNaN();
  });
  it('malformed data is an error', () => {
    expect(() => parseQueryData({ resultType: 'vector', result: [{ metric: {}, value: ['x', '1'] }] })).toThrow(/malformed sample/);
    expect(() => parseQueryData({ resultType: 'weird', result: [] })).toThrow(/unknown resultType/);
    expect(() => parseQueryData(null)).toThrow(/no data/);
    expect(() => parseQueryData({ resultType: 'vector', result: [{ metric: {}, histogram: [1, {}] }] })).toThrow(/native histogram/);
  });
});

describe('PrometheusClient', () => {
  it('instant query: POST form, bearer token, time, parsed vector, warnings', async () => {
    routes.set('/api/v1/query', (_s, res) =>
      json(res, 200, {
        status: 'success',
        data: { resultType: 'vector', result: [{ metric: { job: 'a' }, value: [1700000000.5, '0.0042'] }] },
        warnings: ['something partial'],
      }),
    );
    const c = new PrometheusClient({ url: base, bearerToken: 's3cret' });
    const r = await c.query('scrape_duration_seconds{job="a"}', 1700000000.5);
    expect(r.series[0]!.points[0]).toEqual({ t: 1700000000.5, v: 0.0042 });
    expect(r.warnings).toEqual(['something partial']);
    const s = seen.at(-1)!;
    expect(s.method).toBe('POST');
    expect(s.headers.authorization).toBe('Bearer s3cret');
    expect(s.form.get('query')).toBe('scrape_duration_seconds{job="a"}');
    expect(s.form.get('time')).toBe('1700000000.500');
  });

  it('keeps a path prefix of the base URL', async () => {
    routes.set('/prom/api/v1/query', (_s, res) =>
      json(res, 200, { status: 'success', data: { resultType: 'scalar', result: [1, '7'] } }),
    );
    const c = new PrometheusClient({ url: `${base}/prom` });
    expect(await c.scalar('7')).toBe(7);
    expect(seen.at(-1)!.path).toBe('/prom/api/v1/query');
  });

  it('range query sends start/end/step and parses the matrix', async () => {
    routes.set('/api/v1/query_range', (_s, res) =>
      json(res, 200, {
        status: 'success',
        data: { resultType: 'matrix', result: [{ metric: { instance: 'x:1' }, values: [[10, '1'], [11, '2']] }] },
      }),
    );
    const c = new PrometheusClient({ url: base });
    const r = await c.queryRange('rate(x[1m])', new Date(10_000), 11, 0.5);
    expect(r.resultType).toBe('matrix');
    expect(r.series[0]!.points).toEqual([{ t: 10, v: 1 }, { t: 11, v: 2 }]);
    const f = seen.at(-1)!.form;
    expect([f.get('start'), f.get('end'), f.get('step')]).toEqual(['10.000', '11.000', '0.5']);
    await expect(c.queryRange('x', 1, 2, 0)).rejects.toThrow(/step must be > 0/);
  });

  it('carries the Prometheus error message and type (400 bad_data, 422 execution, 503 unavailable)', async () => {
    routes.set('/api/v1/query', (s, res) => {
      const q = s.form.get('query');
      if (q === 'bad(') {
        return json(res, 400, { status: 'error', errorType: 'bad_data', error: 'invalid parameter "query": 1:5: parse error: unclosed left parenthesis' });
      }
      if (q === 'exec') return json(res, 422, { status: 'error', errorType: 'execution', error: 'query processing would load too many samples into memory in query execution' });
      return json(res, 503, { status: 'error', errorType: 'unavailable', error: 'TSDB not ready' });
    });
    const c = new PrometheusClient({ url: base });
    const e1 = await rejection(c.query('bad('));
    expect(e1).toBeInstanceOf(PrometheusError);
    expect(e1.kind).toBe('api');
    expect(e1.status).toBe(400);
    expect(e1.errorType).toBe('bad_data');
    expect(e1.message).toContain('unclosed left parenthesis');
    const e2 = await rejection(c.query('exec'));
    expect([e2.status, e2.errorType]).toEqual([422, 'execution']);
    const e3 = await rejection(c.query('x'));
    expect(e3.message).toContain('TSDB not ready');
  });

  it('a non-Prometheus HTTP error (proxy 502 page, 401) says the status and the body', async () => {
    routes.set('/api/v1/query', (_s, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>Bad Gateway</body></html>');
    });
    const c = new PrometheusClient({ url: base });
    const e = await rejection(c.query('up'));
    expect(e.kind).toBe('http');
    expect(e.status).toBe(502);
    expect(e.message).toContain('Bad Gateway');
    routes.set('/api/v1/query', (_s, res) => {
      res.writeHead(401);
      res.end('Unauthorized\n');
    });
    await expect(c.query('up')).rejects.toThrow(/HTTP 401.*Unauthorized/);
  });

  it('a 200 that is not an API response is a parse error', async () => {
    routes.set('/api/v1/query', (_s, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>login</html>');
    });
    const e = await rejection(new PrometheusClient({ url: base }).query('up'));
    expect(e.kind).toBe('parse');
  });

  it('times out', async () => {
    routes.set('/api/v1/query', () => {
      /* never answers */
    });
    const c = new PrometheusClient({ url: base, timeoutMs: 150 });
    const t0 = performance.now();
    const e = await rejection(c.query('up'));
    const ms = performance.now() - t0;
    expect(e.kind).toBe('timeout');
    expect(e.message).toMatch(/did not answer within 150 ms/);
    expect(ms).toBeGreaterThanOrEqual(140);
    expect(ms).toBeLessThan(5000);
  });

  it('an unreachable server is a network error with the cause', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const e = await rejection(new PrometheusClient({ url: `http://127.0.0.1:${port}` }).query('up'));
    expect(e.kind).toBe('network');
    expect(e.message).toMatch(/unreachable: ECONNREFUSED/);
    expect(await new PrometheusClient({ url: `http://127.0.0.1:${port}` }).ready()).toBe(false);
  });

  it('scalar() refuses empty and multi-series results', async () => {
    routes.set('/api/v1/query', (s, res) =>
      json(res, 200, {
        status: 'success',
        data: {
          resultType: 'vector',
          result: s.form.get('query') === 'none' ? [] : [{ metric: { a: '1' }, value: [1, '1'] }, { metric: { a: '2' }, value: [1, '2'] }],
        },
      }),
    );
    const c = new PrometheusClient({ url: base });
    await expect(c.scalar('none')).rejects.toThrow(/no data/);
    await expect(c.scalar('two')).rejects.toThrow(/2 series/);
  });

  it('targets() and ready()', async () => {
    routes.set('/api/v1/targets', (_s, res) =>
      json(res, 200, {
        status: 'success',
        data: {
          activeTargets: [
            {
              discoveredLabels: { __address__: '127.1.0.2:4000' },
              labels: { instance: '127.1.0.2:4000', job: 'agents' },
              scrapePool: 'agents',
              scrapeUrl: 'http://127.1.0.2:4000/metrics',
              lastError: '',
              lastScrape: '2024-01-01T00:00:00Z',
              lastScrapeDuration: 0.0031,
              health: 'up',
            },
          ],
          droppedTargets: [],
        },
      }),
    );
    routes.set('/-/ready', (_s, res) => {
      res.writeHead(200);
      res.end('Prometheus Server is Ready.\n');
    });
    const c = new PrometheusClient({ url: base });
    const t = await c.targets();
    expect(t[0]!.health).toBe('up');
    expect(t[0]!.lastScrapeDurationSeconds).toBe(0.0031);
    expect(await c.ready()).toBe(true);
  });

  it('rejects an invalid URL up front', () => {
    expect(() => new PrometheusClient({ url: 'not a url' })).toThrow(/invalid Prometheus URL/);
  });
});

describe('helpers', () => {
  it('escapeRegex makes an address a literal inside a PromQL string', () => {
    expect(escapeRegex('127.1.0.2:4000')).toBe('127\\\\.1\\\\.0\\\\.2:4000');
    expect(escapeRegex('a"b')).toBe('a\\"b');
  });
  it('promDuration', () => {
    expect(promDuration(1500.4)).toBe('1500ms');
    expect(promDuration(0)).toBe('1ms');
  });
});
