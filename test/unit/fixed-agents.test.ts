/**
 * Fixed agents (`swarmbench run --agent-url`): pools of them are all of them or none
 * (platform/local/fixed.ts), and what they cannot show is Skipped, never Passed
 * (runner/fixed.ts). The agents here are tiny in-process HTTP servers answering /readyz,
 * /v1/info and /v1/faults.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Measurement } from '../../src/api/schema.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import { FIXED_AGENTS_MARK, FixedAgentsError } from '../../src/platform/types.ts';
import { applyFixedAgents, FIXED_AGENT_SKIPS } from '../../src/runner/fixed.ts';

describe('applyFixedAgents', () => {
  const measured = (id: string, extra: Partial<Measurement> = {}): Measurement => ({ id, value: 1, samples: 5, ...extra });

  it('Skips the tests fixed agents cannot show whatever they measured, and keeps the others', () => {
    const r = applyFixedAgents([measured('1.1'), measured('1.3'), measured('1.4'), measured('1.6', { durationMs: 7 })], ['1.1', '1.3', '1.4', '1.6'], undefined);
    expect(r.error).toBeUndefined();
    expect(r.measurements.map((m) => [m.id, m.skip ? 'skip' : 'kept'])).toEqual([
      ['1.1', 'skip'],
      ['1.3', 'kept'],
      ['1.4', 'kept'],
      ['1.6', 'skip'],
    ]);
    expect(r.measurements[0]).toEqual({ id: '1.1', value: null, samples: 0, skip: `Skipped with fixed agents (--agent-url): ${FIXED_AGENT_SKIPS['1.1']}` });
    expect(r.measurements[3]!.durationMs).toBe(7);
    expect(r.measurements[1]).toEqual(measured('1.3'));
  });

  it('a failure caused by a refusal is Skipped with it; any other failure stays a failure', () => {
    const refusal = new FixedAgentsError('the test needs a pool of 20 agents').message;
    const r = applyFixedAgents(
      [measured('6.1', { value: null, fail: `Sustained load could not run: ${refusal}` }), measured('6.3', { value: null, fail: '3 accepted tasks were lost' })],
      ['6.1', '6.3'],
      undefined,
    );
    expect(r.measurements[0]).toMatchObject({ id: '6.1', value: null, skip: `Skipped with fixed agents (--agent-url): ${refusal}` });
    expect(r.measurements[0]!.fail).toBeUndefined();
    expect(r.measurements[1]).toMatchObject({ id: '6.3', fail: '3 accepted tasks were lost' });
  });

  it('a category that stopped on a refusal: every test without a measurement is Skipped and the step error dropped', () => {
    const error = `step scalability failed: ${FIXED_AGENTS_MARK}the test needs a pool of 1 agent`;
    const r = applyFixedAgents([], ['3.1', '3.2'], error);
    expect(r.error).toBeUndefined();
    expect(r.measurements.map((m) => m.skip)).toEqual([
      `Skipped with fixed agents (--agent-url): ${FIXED_AGENTS_MARK}the test needs a pool of 1 agent`,
      `Skipped with fixed agents (--agent-url): ${FIXED_AGENTS_MARK}the test needs a pool of 1 agent`,
    ]);
  });

  it('a category that stopped for another reason keeps its error (its tests fail with it)', () => {
    const r = applyFixedAgents([], ['3.1', '3.2'], 'step monitoring failed: ECONNREFUSED');
    expect(r).toEqual({ measurements: [], error: 'step monitoring failed: ECONNREFUSED' });
  });
});

describe('a pool of fixed agents', () => {
  const servers: Server[] = [];
  const faultsCleared: string[] = [];
  let urls: string[] = [];
  let impostor = '';

  beforeAll(async () => {
    // The fourth says it is u-1 as well.
    for (const id of ['u-1', 'u-2', 'u-3', 'u-1']) {
      const srv = createServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/readyz') res.end('{"ready":true}');
        else if (req.url === '/v1/info') res.end(JSON.stringify({ id, memory: { rss: 50 * 2 ** 20, heapUsed: 10 * 2 ** 20 } }));
        else if (req.url === '/v1/faults' && req.method === 'DELETE') {
          faultsCleared.push(id);
          res.end('{}');
        } else {
          res.statusCode = 404;
          res.end('{"error":"not found"}');
        }
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      servers.push(srv);
    }
    const all = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    urls = all.slice(0, 3);
    impostor = all[3]!;
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  const opts = (name: string, size: number) => ({ name, size, capacity: 8, agentsPerProcess: 1 });

  it('is all the agents or none; any other size, a kill or a second pool is refused', async () => {
    const platform = new LocalPlatform({ agents: { kind: 'urls', urls }, readyTimeoutMs: 2000 });
    expect(platform.fixedAgents).toMatch(/^3 agents given by --agent-url \(http:\/\/127\.0\.0\.1:\d+, /);
    try {
      const pool = await platform.createPool(opts('dist', 0));
      expect(pool.agents()).toEqual([]);
      await expect(pool.scaleTo(2)).rejects.toThrow(FixedAgentsError);
      await expect(pool.scaleTo(2)).rejects.toThrow(/needs a pool of 2 agents; the 3 agents given by --agent-url .* are fixed/);
      const agents = await pool.scaleTo(3);
      expect(agents.map((a) => [a.id, a.url, a.pid])).toEqual([
        ['u-1', urls[0], 0],
        ['u-2', urls[1], 0],
        ['u-3', urls[2], 0],
      ]);
      await expect(pool.scaleTo(4)).rejects.toThrow(/needs a pool of 4 agents \(from 3\)/);
      await expect(pool.kill('u-2')).rejects.toThrow(FixedAgentsError);
      await expect(platform.createPool(opts('other', 3))).rejects.toThrow(/two pools at once/);
      const stats = await pool.stats();
      expect(stats.map((s) => [s.pid, s.rssBytes, s.heapUsedBytes])).toEqual(Array(3).fill([0, 50 * 2 ** 20, 10 * 2 ** 20]));
      await pool.close();
      expect(faultsCleared.sort()).toEqual(['u-1', 'u-2', 'u-3']);
      // Released: the next pool may hold them, at their size only.
      await expect(platform.createPool(opts('wrong', 5))).rejects.toThrow(/needs a pool of 5 agents/);
      const next = await platform.createPool(opts('next', 3));
      expect(next.agents()).toHaveLength(3);
    } finally {
      await platform.close();
    }
    // The user's agents still run: SwarmBench never stops them.
    const r = await fetch(`${urls[0]}/readyz`);
    expect(r.status).toBe(200);
  });

  it('two agents with one id are refused', async () => {
    const platform = new LocalPlatform({ agents: { kind: 'urls', urls: [urls[0]!, impostor] }, readyTimeoutMs: 2000 });
    try {
      await expect(platform.createPool(opts('dup', 2))).rejects.toThrow(/both say they are "u-1"/);
    } finally {
      await platform.close();
    }
  });
});
