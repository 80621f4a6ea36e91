/**
 * The conformance check passes against the reference agent and fails against servers that do
 * not implement the contract: one that answers 200 {} to everything, a proxy in front of a
 * real agent that serves stale state, and reference agents switched into defect profiles that
 * keep every answer's shape (lost tasks, stale reads): the behavioural checks name them. An
 * agent that serves anyone (a proxy that adds the token to every call) fails `authentication`,
 * and a client with the wrong token is told to give the right one.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentToken, bearer } from '../../src/agent/auth.ts';
import { AgentClient } from '../../src/agent/client.ts';
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

  it('fails an agent that loses 1 in 100 accepted tasks, naming the check', async () => {
    const lossy = await platform.createPool({ name: 'lossy', size: 2, capacity: 16, agentsPerProcess: 2, defects: ['lost-tasks'] });
    const client = new AgentClient({ timeoutMs: 5000 });
    try {
      const [a, b] = lossy.agents();
      // The local platform started the agents with --defect.
      expect((await client.info(a!.url)).body.defects).toEqual(['lost-tasks:0.01']);
      const results = await runConformance(a!.url, { peer: b!.url });
      const check = results.find((r) => r.name === 'dispatch completeness')!;
      expect(check.ok).toBe(false);
      expect(check.detail).toMatch(/^3 of 300 accepted tasks never completed/);
      // Every answer has the contract's shape: the per-request checks see nothing wrong.
      for (const name of ['dispatch', 'state', 'read after write', 'capacity 429', 'task cpu']) {
        expect(results.find((r) => r.name === name)!.ok, name).toBe(true);
      }
      const out: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((chunk: string | Uint8Array) => {
        out.push(String(chunk));
        return true;
      }) as typeof process.stdout.write;
      try {
        expect(await conformanceMain(['--url', a!.url, '--dispatch-tasks', '200'])).toBe(1);
        expect(await conformanceMain(['--url', a!.url, '--dispatch-tasks', 'many'])).toBe(2);
      } finally {
        process.stdout.write = write;
      }
      expect(out.join('')).toMatch(/FAIL +dispatch completeness +2 of 200 accepted tasks never completed/);
    } finally {
      client.close();
      await lossy.close();
    }
  });

  it('fails an agent that serves calls without the token (authentication), and says when the token is wrong', async () => {
    const target = new URL(pool.agents()[2]!.url);
    // An open door: every call is passed on with the token, whatever it carried.
    const open = http.createServer((req, res) => {
      const up = http.request(
        { hostname: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, authorization: bearer(agentToken()) } },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        },
      );
      req.pipe(up);
      up.on('error', () => res.writeHead(502).end());
    });
    const url = await listen(open);
    try {
      const results = await runConformance(url, { dispatchTasks: 0 });
      const auth = results.find((r) => r.name === 'authentication')!;
      expect(auth.ok).toBe(false);
      expect(auth.detail).toMatch(/^GET \/v1\/info without a token: expected HTTP 401, got 200/);
      expect(results.find((r) => r.name === 'task cpu')!.ok).toBe(true);
      // The agent itself passes it, and the token given explicitly is used.
      const direct = await runConformance(target.origin, { dispatchTasks: 0, token: agentToken() });
      expect(direct.find((r) => r.name === 'authentication')).toEqual({ name: 'authentication', ok: true, detail: '10 calls refused with 401, /healthz open' });
      const wrong = await runConformance(target.origin, { dispatchTasks: 0, token: 'not-the-run-token-0123456789' });
      expect(wrong.find((r) => r.name === 'info')!.detail).toMatch(/got 401 .*the agent refused the token: give it with --token-file PATH or SWARMBENCH_AGENT_TOKEN/);
    } finally {
      open.close();
    }
  });

  it('fails an agent that serves stale reads, naming the check', async () => {
    const stale = await platform.createPool({ name: 'stale', size: 2, capacity: 16, agentsPerProcess: 2, defects: ['stale-reads'] });
    try {
      const [a, b] = stale.agents();
      const results = await runConformance(a!.url, { peer: b!.url });
      const check = results.find((r) => r.name === 'read after write')!;
      expect(check.ok).toBe(false);
      expect(check.detail).toMatch(/reads went back to an older version/);
      expect(results.find((r) => r.name === 'dispatch completeness')!.ok).toBe(true);
    } finally {
      await stale.close();
    }
  });
});
