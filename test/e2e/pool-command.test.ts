/**
 * The local platform running an agent command (`swarmbench run --agent-command`,
 * platform/local/command.ts), with the reference agent as the command: it knows only the agent
 * contract's environment (no flags), so a pool that forms proves the environment is complete.
 * Formation on distinct loopback addresses, ids and capacity from the environment, kill +
 * auto-heal, shrinking, process-group stats, and no agent outliving the pool or the platform's
 * process, even SIGKILLed (the reaper).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import type { Pool } from '../../src/platform/types.ts';

const client = new AgentClient({ timeoutMs: 5000 });
const work = mkdtempSync(join(tmpdir(), 'sb-cmd-'));
afterAll(() => {
  client.close();
  rmSync(work, { recursive: true, force: true });
});

/** The reference agent, configured by the environment only. */
const COMMAND = `'${process.execPath}' '${CLI_ENTRY}' agent`;

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function converged(pool: Pool): Promise<boolean> {
  const ids = pool.agents().map((a) => a.id).sort();
  const views = await Promise.all(pool.agents().map(async (a) => (await client.members(a.url)).body));
  return views.every((v) => JSON.stringify(v.members.filter((m) => m.status === 'alive').map((m) => m.id).sort()) === JSON.stringify(ids));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('local platform with an agent command', () => {
  it('forms, heals, shrinks, measures and cleans up a pool of the command\'s agents', async () => {
    const platform = new LocalPlatform({ agents: { kind: 'command', command: COMMAND } });
    expect(platform.fixedAgents).toBeUndefined();
    try {
      const pool = await platform.createPool({ name: 'cmd', size: 4, capacity: 16, agentsPerProcess: 8, autoHeal: true, gossipIntervalMs: 100, failureTimeoutMs: 1000 });
      const agents = pool.agents();
      expect(agents.map((a) => a.id)).toEqual(['cmd-0', 'cmd-1', 'cmd-2', 'cmd-3']);
      // One process per agent (agentsPerProcess does not apply), each on its own address and port.
      expect(new Set(agents.map((a) => a.pid)).size).toBe(4);
      expect(new Set(agents.map((a) => new URL(a.url).hostname)).size).toBe(4);
      for (const a of agents) expect(new URL(a.url).hostname).toMatch(/^127\.1\.\d+\.\d+$/);
      for (const a of agents) {
        const info = (await client.info(a.url)).body;
        expect(info).toMatchObject({ id: a.id, url: a.url, capacity: 16 });
      }
      await until('views converge', 15_000, () => converged(pool));

      const stats = await pool.stats();
      expect(stats.map((s) => s.pid).sort()).toEqual(agents.map((a) => a.pid).sort());
      for (const s of stats) {
        expect(s.rssBytes).toBeGreaterThan(10 * 2 ** 20);
        expect(s.heapUsedBytes).toBeGreaterThan(0);
      }

      const victim = agents[1]!;
      await pool.kill(victim.id);
      expect(alive(victim.pid)).toBe(false);
      const healed = await until('auto-heal to 4', 20_000, async () => (pool.agents().length === 4 ? pool.agents() : undefined));
      expect(healed.map((a) => a.id)).not.toContain(victim.id);
      await until('views converge after the heal', 20_000, () => converged(pool));

      const before = pool.agents();
      await pool.scaleTo(2);
      const gone = before.slice(2);
      for (const a of gone) expect(alive(a.pid)).toBe(false);
      expect(pool.agents()).toEqual(before.slice(0, 2));

      await pool.close();
      // Gone when close resolves: the shells, the agents they started, and their ports.
      for (const a of before) expect(alive(a.pid)).toBe(false);
      for (const a of before) await expect(fetch(`${a.url}/healthz`)).rejects.toThrow();
    } finally {
      await platform.close();
    }
  });

  it('agents die with the platform\'s process, even when it is SIGKILLed', async () => {
    const script = join(work, 'owner.ts');
    writeFileSync(
      script,
      `import { LocalPlatform } from ${JSON.stringify(join(REPO_ROOT, 'src/platform/local/index.ts'))};
const p = new LocalPlatform({ agents: { kind: 'command', command: ${JSON.stringify(COMMAND)} } });
const pool = await p.createPool({ name: 'orphan', size: 2, capacity: 4, agentsPerProcess: 1 });
process.stdout.write(JSON.stringify(pool.agents().map((a) => a.pid)) + '\\n');
setInterval(() => {}, 1000);
`,
    );
    const owner = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pids = await new Promise<number[]>((resolve, reject) => {
      let buf = '';
      owner.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)) as number[]);
      });
      owner.once('exit', (code) => reject(new Error(`owner exited ${code}`)));
    });
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    owner.kill('SIGKILL');
    await until('agents gone', 10_000, async () => pids.every((pid) => !alive(pid)));
  });
});
