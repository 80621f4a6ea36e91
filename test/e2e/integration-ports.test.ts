/**
 * 5.3 resource cleanup (src/bench/integration.ts) tells a leftover agent from a stranger: once the
 * pool is closed, another process may take an agent's freed port (ephemeral ports are reused on a
 * busy machine, as in CI). Such a port still accepts connections, but it does not answer as the
 * agent, so it is counted in `portsTakenByOthers` and does not fail the test. A real local pool
 * runs the category; its close() is followed by a plain TCP server on the first agent's address.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { BenchmarkRunSpec } from '../../src/api/schema.ts';
import { run as runIntegration } from '../../src/bench/integration.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import type { Platform, Pool, PoolOptions } from '../../src/platform/types.ts';
import { benchContext } from '../support/context.ts';

const local = new LocalPlatform();
const strangers: Server[] = [];

/** The local platform, but each pool's close() lets a stranger listen on its first agent's address. */
const platform: Platform = {
  kind: local.kind,
  async createPool(opts: PoolOptions): Promise<Pool> {
    const pool = await local.createPool(opts);
    return {
      name: pool.name,
      agents: () => pool.agents(),
      scaleTo: (n) => pool.scaleTo(n),
      kill: (id) => pool.kill(id),
      stats: () => pool.stats(),
      async close() {
        const first = pool.agents()[0];
        await pool.close();
        if (!first) return;
        const u = new URL(first.url);
        const s = createServer((c) => {
          c.on('error', () => undefined);
          c.end('not an agent\n');
        });
        await new Promise<void>((resolve, reject) => s.once('error', reject).listen(Number(u.port), u.hostname, () => resolve()));
        strangers.push(s);
      },
    };
  },
  close: () => local.close(),
};

afterAll(async () => {
  for (const s of strangers) s.close();
  await local.close();
});

describe('5.3 and a freed port taken by another process', () => {
  it('counts the port as taken by others, not as a leftover, and passes', async () => {
    const params = resolveParams(BenchmarkRunSpec.parse({ mode: 'quick', categories: ['integration'], trials: 3 }));
    const ms = await runIntegration(benchContext(params, platform));
    const m = ms.find((x) => x.id === '5.3')!;
    expect(strangers).toHaveLength(1);
    expect(m.details).toMatchObject({ leftoverProcesses: 0, leftoverPorts: 0, portsTakenByOthers: 1 });
    expect(m.fail).toBeUndefined();
  }, 120_000);
});
