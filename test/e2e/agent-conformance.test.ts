/**
 * The conformance check passes against the reference agent and fails against servers that do
 * not implement the contract: one that answers 200 {} to everything, and a proxy in front of a
 * real agent that serves stale state (only the state check may notice).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as conformanceMain } from '../../src/agent/conformance-cli.ts';
import { runConformance } from '../../src/agent/conformance.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import type { Pool } from '../../src/platform/types.ts';

let platform: LocalPlatform;
let pool: Pool;

beforeAll(async () => {
  platform = new LocalPlatform();
  pool = await platform.createPool({ name: 'conf', size: 3, capacity: 16, agentsPerProcess: 3 });
});
afterAll(async () => {
  await platform.close();
});

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

describe('conformance', () => {
  it('passes against the reference agent (with a peer)', async () => {
    const [a, b] = pool.agents();
    const results = await runConformance(a!.url, { peer: b!.url });
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(20);
  });

  it('the CLI exits 0 on a conforming agent and 1 on a broken one', async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    const broken = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    try {
      expect(await conformanceMain(['--url', pool.agents()[0]!.url])).toBe(0);
      expect(out.join('')).toMatch(/checks passed/);
      const url = await listen(broken);
      expect(await conformanceMain(['--url', url])).toBe(1);
      expect(out.join('')).toMatch(/FAIL/);
      expect(await conformanceMain([])).toBe(2);
    } finally {
      process.stdout.write = write;
      broken.close();
    }
  });

  it('fails against a server that answers 200 {} to everything', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const url = await listen(server);
    try {
      const results = await runConformance(url, { timeoutMs: 3000 });
      const failed = results.filter((r) => !r.ok).map((r) => r.name);
      // Only a readiness answer of 200 can be right by accident.
      expect(results.filter((r) => r.ok).map((r) => r.name)).toEqual(['readyz']);
      expect(failed).toContain('task cpu');
      expect(failed).toContain('capacity 429');
      expect(failed).toContain('dispatch');
      expect(failed).toContain('events');
    } finally {
      server.close();
    }
  });

  it('singles out stale state served by an otherwise correct agent', async () => {
    const target = new URL(pool.agents()[1]!.url);
    const firstSeen = new Map<string, string>();
    // A proxy that remembers the first answer for each state key and keeps serving it.
    const proxy = http.createServer((req, res) => {
      const up = http.request(
        { hostname: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (ur) => {
          const chunks: Buffer[] = [];
          ur.on('data', (c: Buffer) => chunks.push(c));
          ur.on('end', () => {
            let body = Buffer.concat(chunks).toString();
            if (req.method === 'GET' && req.url?.startsWith('/v1/state/') && ur.statusCode === 200) {
              body = firstSeen.get(req.url) ?? body;
              firstSeen.set(req.url, body);
            }
            res.writeHead(ur.statusCode ?? 502, { 'content-type': ur.headers['content-type'] ?? 'application/json' }).end(body);
          });
        },
      );
      req.pipe(up);
      up.on('error', () => res.writeHead(502).end());
    });
    const url = await listen(proxy);
    try {
      const results = await runConformance(url);
      const failed = results.filter((r) => !r.ok).map((r) => r.name);
      expect(failed).toContain('state');
      expect(failed).toContain('events'); // the proxy does not forward WebSocket upgrades
      expect(results.find((r) => r.name === 'task cpu')!.ok).toBe(true);
      expect(results.find((r) => r.name === 'dispatch')!.ok).toBe(true);
    } finally {
      proxy.close();
    }
  });
});
