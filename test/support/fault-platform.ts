/**
 * A real LocalPlatform whose pools inject agent faults (through the agents' own fault API) as
 * soon as agents join. Nothing is mocked: the agents are real processes and the benchmark
 * measures what the faults really do to them.
 */
import { AgentClient } from '../../src/agent/client.ts';
import type { Faults } from '../../src/agent/types.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import type { Platform, Pool, PoolOptions } from '../../src/platform/types.ts';

export interface FaultPlan {
  /** Faults for every agent of every pool. */
  all?: Faults;
  /** Faults for the first agent of the pool with this name (e.g. the coordinator of `failover`). */
  first?: { pool: string; faults: Faults };
}

export class FaultPlatform implements Platform {
  readonly kind = 'local' as const;
  readonly inner = new LocalPlatform();
  private readonly client = new AgentClient({ maxSockets: 8 });
  private readonly plan: FaultPlan;

  constructor(plan: FaultPlan) {
    this.plan = plan;
  }

  async createPool(opts: PoolOptions): Promise<Pool> {
    const pool = await this.inner.createPool(opts);
    const done = new Set<string>();
    const apply = async () => {
      for (const a of pool.agents()) {
        if (done.has(a.id)) continue;
        const isFirst = done.size === 0 && this.plan.first?.pool === opts.name;
        done.add(a.id);
        const f = { ...(this.plan.all ?? {}), ...(isFirst ? this.plan.first!.faults : {}) };
        if (Object.keys(f).length === 0) continue;
        const r = await this.client.putFaults(a.url, f);
        if (r.status !== 200) throw new Error(`fault injection at ${a.id} answered ${r.status}`);
      }
    };
    await apply();
    return {
      name: pool.name,
      agents: () => pool.agents(),
      scaleTo: async (n) => {
        await pool.scaleTo(n);
        await apply();
        return pool.agents();
      },
      kill: (id) => pool.kill(id),
      stats: () => pool.stats(),
      close: () => pool.close(),
    };
  }

  async close(): Promise<void> {
    this.client.close();
    await this.inner.close();
  }
}
