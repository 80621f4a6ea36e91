/**
 * The PromQL client against a real Prometheus (Debian binary) scraping a real /metrics endpoint
 * (prom-client) found through file_sd.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentToken, bearer } from '../../src/agent/auth.ts';
import { PrometheusClient, PrometheusError, escapeRegex } from '../../src/prometheus/client.ts';
import { prometheusBinary, startPrometheus, type PrometheusInstance } from '../support/prometheus.ts';
import { rejection } from '../support/prometheus-error.ts';


const bin = prometheusBinary();

describe.skipIf(!bin)('PrometheusClient against a real Prometheus', () => {
  let prom: PrometheusInstance;
  let target: Server;
  let instance: string;
  let dir: string;
  const reg = new Registry();
  const hits = new Counter({ name: 'swarmbench_test_hits_total', help: 'scrapes served', registers: [reg] });
  /** The `authorization` headers the scrapes carried (the agents' token, test/support/prometheus.ts). */
  const auth = new Set<string>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swarmbench-sd-'));
    target = createServer(async (req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      hits.inc();
      auth.add(String(req.headers.authorization));
      res.writeHead(200, { 'content-type': reg.contentType });
      res.end(await reg.metrics());
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    instance = `127.0.0.1:${(target.address() as AddressInfo).port}`;
    const sd = join(dir, 'sd.json');
    prom = await startPrometheus({ fileSdPath: sd, scrapeInterval: '1s' });
    writeFileSync(sd, JSON.stringify([{ targets: [instance], labels: { pool: 'client-e2e' } }]));
  });

  afterAll(async () => {
    await prom?.stop();
    target?.closeAllConnections();
    await new Promise<void>((r) => (target ? target.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('waits for the target, then instant and range queries return real samples', async () => {
    const c = new PrometheusClient({ url: prom.url, timeoutMs: 5000 });
    expect(await c.ready()).toBe(true);
    const sel = `{instance=~"${escapeRegex(instance)}"}`;
    const deadline = performance.now() + 30_000;
    let up = 0;
    while (performance.now() < deadline) {
      const r = await c.query(`up${sel}`);
      up = r.series[0]?.points[0]?.v ?? 0;
      if (up === 1) break;
      await new Promise((r2) => setTimeout(r2, 200));
    }
    expect(up, prom.logTail()).toBe(1);
    // Scraped as an agent is: with the run's bearer token.
    expect([...auth]).toEqual([bearer(agentToken())]);
    const targets = await c.targets();
    const t = targets.find((x) => x.labels.instance === instance);
    expect(t?.health).toBe('up');
    expect(t?.labels.pool).toBe('client-e2e');

    // Wait for a few scrapes (a condition with a deadline), then read raw samples back.
    const d2 = performance.now() + 30_000;
    let n = 0;
    while (performance.now() < d2) {
      const r = await c.query(`count_over_time(scrape_duration_seconds${sel}[1m])`);
      n = r.series[0]?.points[0]?.v ?? 0;
      if (n >= 4) break;
      await new Promise((r2) => setTimeout(r2, 250));
    }
    expect(n).toBeGreaterThanOrEqual(4);

    const raw = await c.query(`scrape_duration_seconds${sel}[1m]`);
    expect(raw.resultType).toBe('matrix');
    const pts = raw.series[0]!.points;
    expect(pts.length).toBeGreaterThanOrEqual(4);
    for (const p of pts) {
      expect(p.v).toBeGreaterThan(0);
      expect(p.v).toBeLessThan(1);
    }
    // Consecutive raw samples are one scrape interval (1 s) apart.
    const gaps = pts.slice(1).map((p, i) => p.t - pts[i]!.t);
    for (const g of gaps) expect(g).toBeGreaterThan(0.5);

    const now = Date.now() / 1000;
    const range = await c.queryRange(`swarmbench_test_hits_total${sel}`, now - 10, now, 1);
    expect(range.resultType).toBe('matrix');
    const vals = range.series[0]!.points.map((p) => p.v);
    expect(vals.length).toBeGreaterThan(1);
    // A counter of scrapes served: non-decreasing and at least the number of scrapes seen.
    for (let i = 1; i < vals.length; i++) expect(vals[i]!).toBeGreaterThanOrEqual(vals[i - 1]!);

    const ss = await c.scalar(`sum(scrape_samples_scraped${sel})`);
    expect(ss).toBeGreaterThan(0);
  });

  it('a bad query carries the Prometheus parse error', async () => {
    const c = new PrometheusClient({ url: prom.url });
    const e = await rejection(c.query('sum(up'));
    expect(e).toBeInstanceOf(PrometheusError);
    expect(e.errorType).toBe('bad_data');
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/parse error/);
  });
});
