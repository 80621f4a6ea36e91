/**
 * Pools of fixed agents: agents the user started, reached by URL (`swarmbench run --agent-url`).
 *
 * SwarmBench cannot start, stop or kill them, so a pool of them is all of them or none:
 * - `scaleTo(N)` (N = the number of URLs) from empty adopts them: each must answer 200 on
 *   `/readyz` and give its id in `/v1/info` (ids unique); `scaleTo(0)` releases them (their faults
 *   cleared with `DELETE /v1/faults`, as a fresh pool would have none). Any other size, a kill,
 *   or a second pool while one holds them throws `FixedAgentsError`, and the test that asked is
 *   Skipped with its message (runner/fixed.ts), never measured on agents it did not ask for.
 * - `close()` releases them and leaves them running: they are the user's.
 * - `stats()`: memory from each agent's `/v1/info` (SwarmBench does not know their processes:
 *   `pid` is 0).
 * - Their token is the user's (`swarmbench run --agent-token-file`, or SWARMBENCH_AGENT_TOKEN),
 *   which the process's clients send (`agentToken()`, src/agent/auth.ts).
 */
import { AgentClient } from '../../agent/client.ts';
import { FixedAgentsError, type AgentHandle, type Pool, type PoolOptions, type ProcessStats } from '../types.ts';
import { Serial } from '../serial.ts';

/** What a fixed pool needs from its platform (index.ts `LocalPlatform`). */
export interface FixedHost {
  readonly readyTimeoutMs: number;
  changed(): void;
  poolClosed(pool: FixedPool): void;
}

/** The user's agents, shared by every pool of one platform (one pool holds them at a time). */
export class FixedAgents {
  readonly urls: readonly string[];
  /** The pool that holds the agents now. */
  holder: FixedPool | null = null;

  constructor(urls: readonly string[]) {
    this.urls = urls;
  }

  /** For `Platform.fixedAgents`: which agents, in a few words. */
  describe(): string {
    const n = this.urls.length;
    return `${n} agent${n === 1 ? '' : 's'} given by --agent-url (${this.urls.slice(0, 3).join(', ')}${n > 3 ? ', ...' : ''})`;
  }

  pool(host: FixedHost, opts: PoolOptions): FixedPool {
    return new FixedPool(host, this, opts);
  }
}

export class FixedPool implements Pool {
  readonly name: string;
  private readonly host: FixedHost;
  private readonly fixed: FixedAgents;
  private adopted: AgentHandle[] = [];
  private closed = false;
  private readonly serial = new Serial();
  private readonly client = new AgentClient({ maxSockets: 4, timeoutMs: 2000 });

  constructor(host: FixedHost, fixed: FixedAgents, opts: PoolOptions) {
    this.host = host;
    this.fixed = fixed;
    this.name = opts.name;
  }

  agents(): AgentHandle[] {
    return [...this.adopted];
  }

  targets(): { id: string; url: string }[] {
    return this.adopted.map((a) => ({ id: a.id, url: a.url }));
  }


  scaleTo(n: number): Promise<AgentHandle[]> {
    if (!Number.isInteger(n) || n < 0) return Promise.reject(new Error(`scaleTo: bad size ${n}`));
    return this.serial.run(async () => {
      if (this.closed) throw new Error(`pool ${this.name} is closed`);
      const total = this.fixed.urls.length;
      const cur = this.adopted.length;
      if (n === cur) return this.agents();
      if (n === 0) await this.release();
      else if (n === total && cur === 0) await this.adopt();
      else {
        throw new FixedAgentsError(
          `the test needs a pool of ${n} agent${n === 1 ? '' : 's'}${cur > 0 ? ` (from ${cur})` : ''}; the ${this.fixed.describe()} are fixed: ` +
            `SwarmBench cannot start or stop agents it did not start (set the spec's pool sizes to ${total}, or use --agent-command)`,
        );
      }
      return this.agents();
    });
  }

  private async adopt(): Promise<void> {
    const other = this.fixed.holder;
    if (other && other !== this) {
      throw new FixedAgentsError(`the test needs two pools at once, and the ${this.fixed.describe()} are already pool ${other.name}`);
    }
    this.fixed.holder = this;
    try {
      const deadline = Date.now() + this.host.readyTimeoutMs;
      const handles = await Promise.all(this.fixed.urls.map((url) => this.identify(url, deadline)));
      const byId = new Map<string, string>();
      for (const h of handles) {
        const dup = byId.get(h.id);
        if (dup) throw new Error(`the agents at ${dup} and ${h.url} both say they are "${h.id}": every agent needs its own id`);
        byId.set(h.id, h.url);
      }
      this.adopted = handles;
    } catch (err) {
      this.fixed.holder = null;
      throw err;
    }
    this.host.changed();
  }

  /** Ready (200 on /readyz) and its id from /v1/info. */
  private async identify(url: string, deadline: number): Promise<AgentHandle> {
    let last = '';
    for (;;) {
      try {
        const r = await this.client.readyz(url);
        if (r.status === 200) break;
        last = `answered ${r.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`the agent at ${url} is not ready (GET /readyz: ${last})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const info = await this.client.info(url);
    if (info.status === 401) throw new Error(`the agent at ${url} refused the agent token (401 on GET /v1/info): give its token with --agent-token-file or SWARMBENCH_AGENT_TOKEN`);
    const id = info.status === 200 && info.body && typeof info.body === 'object' ? (info.body as { id?: unknown }).id : undefined;
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
      throw new Error(`the agent at ${url} gave no id in GET /v1/info (status ${info.status}; the contract's "id" is a string of 1..256 characters)`);
    }
    return { id, url, pid: 0, node: 'external' };
  }

  private async release(): Promise<void> {
    const agents = this.adopted;
    this.adopted = [];
    if (this.fixed.holder === this) this.fixed.holder = null;
    await Promise.all(agents.map((a) => this.client.request('DELETE', a.url, '/v1/faults').catch(() => undefined)));
    this.host.changed();
  }

  kill(id: string): Promise<void> {
    return Promise.reject(
      new FixedAgentsError(`the test kills an agent (${id}); SwarmBench does not kill the ${this.fixed.describe()}, which it did not start (use --agent-command)`),
    );
  }

  async stats(): Promise<ProcessStats[]> {
    return Promise.all(
      this.adopted.map(async (a) => {
        const s: ProcessStats = { pid: 0, key: a.url, agents: 1, rssBytes: 0, heapUsedBytes: 0, cpuSeconds: 0 };
        try {
          const r = await this.client.info(a.url);
          const mem = r.status === 200 && r.body && typeof r.body === 'object' ? (r.body as { memory?: { rss?: unknown; heapUsed?: unknown } }).memory : undefined;
          if (typeof mem?.rss === 'number') s.rssBytes = mem.rss;
          if (typeof mem?.heapUsed === 'number') s.heapUsedBytes = mem.heapUsed;
        } catch {
          // not answering: no figure
        }
        return s;
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.serial.run(() => this.release()).catch(() => undefined);
    this.closed = true;
    this.client.close();
    this.host.poolClosed(this);
  }
}
