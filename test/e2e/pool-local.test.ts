/**
 * The local platform with real agent processes: formation, scaling, kill + auto-heal, file_sd,
 * and that no agent process outlives the pool or the platform's own process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import type { MembersResult } from '../../src/agent/types.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import type { Pool } from '../../src/platform/types.ts';
import { REPO_ROOT } from '../../src/paths.ts';

const client = new AgentClient({ timeoutMs: 5000 });
afterAll(() => client.close());

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function views(pool: Pool): Promise<MembersResult[]> {
  return Promise.all(pool.agents().map(async (a) => (await client.members(a.url)).body));
}

/** Every agent's view holds exactly the pool's agents, all alive. */
async function converged(pool: Pool): Promise<boolean> {
  const ids = pool.agents().map((a) => a.id).sort();
  const vs = await views(pool);
  return vs.every(
    (v) =>
      v.alive === ids.length &&
      JSON.stringify(v.members.filter((m) => m.status === 'alive').map((m) => m.id).sort()) === JSON.stringify(ids),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('local platform', () => {
  it('forms a pool of 5 whose every view holds 5, on distinct loopback addresses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-sd-'));
    const sd = join(dir, 'agents.json');
    const platform = new LocalPlatform({ fileSdPath: sd });
    try {
      const pool = await platform.createPool({ name: 'form', size: 5, capacity: 16, agentsPerProcess: 2 });
      const agents = pool.agents();
      expect(agents).toHaveLength(5);
      expect(new Set(agents.map((a) => new URL(a.url).hostname)).size).toBe(5);
      for (const a of agents) expect(new URL(a.url).hostname).toMatch(/^127\.1\./);
      // 2 agents per process: 3 processes.
      expect(new Set(agents.map((a) => a.pid)).size).toBe(3);
      for (const a of agents) expect((await client.readyz(a.url)).status).toBe(200);
      await until('every view holds 5', 10_000, () => converged(pool));
      await platform.flushFileSd();
      const groups = JSON.parse(readFileSync(sd, 'utf8')) as { targets: string[]; labels: Record<string, string> }[];
      expect(groups.map((g) => g.targets[0]).sort()).toEqual(agents.map((a) => new URL(a.url).host).sort());
      expect(groups.every((g) => g.labels.pool === 'form' && agents.some((a) => a.id === g.labels.agent))).toBe(true);
      const stats = await pool.stats();
      expect(stats.reduce((n, s) => n + s.agents, 0)).toBe(5);
      for (const s of stats) {
        expect(s.rssBytes).toBeGreaterThan(10e6);
        expect(s.heapUsedBytes).toBeGreaterThan(1e6);
        expect(s.cpuSeconds).toBeGreaterThan(0);
      }
      const pids = [...new Set(agents.map((a) => a.pid))];
      await pool.close();
      await pool.close(); // idempotent
      for (const pid of pids) expect(alive(pid)).toBe(false);
      await platform.flushFileSd();
      expect(JSON.parse(readFileSync(sd, 'utf8'))).toEqual([]);
    } finally {
      await platform.close();
    }
  });

  it('scaleTo grows (new agents join everyone) and shrinks (agents leave)', async () => {
    const platform = new LocalPlatform();
    try {
      const pool = await platform.createPool({ name: 'scale', size: 3, capacity: 8, agentsPerProcess: 2 });
      const grown = await pool.scaleTo(7);
      expect(grown).toHaveLength(7);
      for (const a of grown) expect((await client.readyz(a.url)).status).toBe(200);
      await until('every view holds 7', 10_000, () => converged(pool));
      const before = pool.agents().map((a) => a.id);
      const shrunk = await pool.scaleTo(4);
      expect(shrunk.map((a) => a.id)).toEqual(before.slice(0, 4));
      const gone = before.slice(4);
      await until('every view holds 4 and the others left', 10_000, async () => {
        if (!(await converged(pool))) return false;
        const vs = await views(pool);
        return vs.every((v) => gone.every((id) => ['left', undefined].includes(v.members.find((m) => m.id === id)?.status)));
      });
    } finally {
      await platform.close();
    }
  });

  for (const per of [1, 3]) {
    it(`kill (${per === 1 ? 'SIGKILL of its process' : 'crash inside a shared process'}) and auto-heal`, async () => {
      const platform = new LocalPlatform();
      try {
        const pool = await platform.createPool({
          name: `heal${per}`,
          size: 4,
          capacity: 8,
          agentsPerProcess: per,
          autoHeal: true,
          failureTimeoutMs: 800,
        });
        await until('formed', 10_000, () => converged(pool));
        const victim = pool.agents()[2]!;
        const survivors = pool.agents().filter((a) => a.id !== victim.id);
        await pool.kill(victim.id);
        // The victim no longer answers at all.
        await expect(client.healthz(victim.url)).rejects.toThrow();
        if (per === 1) expect(alive(victim.pid)).toBe(false);
        else expect((await client.healthz(survivors.find((s) => s.pid === victim.pid)!.url)).status).toBe(200);
        // Auto-heal: back to 4 with a new id, every view holds the 4, and the survivors saw the victim die.
        const healed = await until('healed to 4', 15_000, async () => (pool.agents().length === 4 ? pool.agents() : undefined));
        expect(healed.map((a) => a.id)).not.toContain(victim.id);
        await until('views converge on the healed pool', 15_000, () => converged(pool));
        const v = (await client.members(survivors[0]!.url)).body;
        expect(['suspect', 'dead']).toContain(v.members.find((m) => m.id === victim.id)?.status);
        await until('victim declared dead', 10_000, async () => {
          const m = (await client.members(survivors[0]!.url)).body.members.find((x) => x.id === victim.id);
          return m?.status === 'dead';
        });
      } finally {
        await platform.close();
      }
    });
  }

  it('replaces every agent of a host process that dies on its own (auto-heal)', async () => {
    const platform = new LocalPlatform();
    try {
      const pool = await platform.createPool({ name: 'crash', size: 4, capacity: 8, agentsPerProcess: 2, autoHeal: true });
      const victimPid = pool.agents()[0]!.pid;
      const lost = pool.agents().filter((a) => a.pid === victimPid).map((a) => a.id);
      expect(lost).toHaveLength(2);
      process.kill(victimPid, 'SIGKILL');
      const healed = await until('4 agents again, none of the lost ones', 15_000, async () => {
        const ids = pool.agents().map((a) => a.id);
        return ids.length === 4 && lost.every((id) => !ids.includes(id)) ? pool.agents() : undefined;
      });
      expect(healed.every((a) => a.pid !== victimPid)).toBe(true);
      await until('views converge on the healed pool', 15_000, () => converged(pool));
    } finally {
      await platform.close();
    }
  });

  it('agent processes die with the platform process, even when it is SIGKILLed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-orphan-'));
    const script = join(dir, 'owner.ts');
    const entry = join(REPO_ROOT, 'src/platform/local/index.ts');
    writeFileSync(
      script,
      `import { LocalPlatform } from ${JSON.stringify(entry)};
const p = new LocalPlatform();
const pool = await p.createPool({ name: 'orphan', size: 3, capacity: 4, agentsPerProcess: 1 });
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
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    owner.kill('SIGKILL');
    await until('children gone', 10_000, async () => pids.every((pid) => !alive(pid)));
  });
});
