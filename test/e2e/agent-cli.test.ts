/**
 * `swarmbench agent` as a process: listening lines, several agents per process, joining through
 * seeds, and SIGTERM (announce `left`, exit 0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import { CLI_ENTRY } from '../../src/paths.ts';

const client = new AgentClient({ timeoutMs: 5000 });
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; lines: Promise<{ id: string; url: string; pid: number }[]> } {
  const child = spawn(process.execPath, [CLI_ENTRY, 'agent', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(child);
  const want = Number(args[args.indexOf('--count') + 1] ?? 1) || 1;
  const lines = new Promise<{ id: string; url: string; pid: number }[]>((resolve, reject) => {
    const got: { id: string; url: string; pid: number }[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const ev = JSON.parse(l) as { event: string; id: string; url: string; pid: number };
      if (ev.event === 'listening') got.push(ev);
      if (got.length === want) resolve(got);
    });
    child.once('exit', (code) => reject(new Error(`agent exited ${code}`)));
  });
  return { child, lines };
}

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('swarmbench agent', () => {
  it('hosts several agents in one process, joins another process through a seed, leaves on SIGTERM', async () => {
    const a = start(['--count', '3', '--hosts', '127.1.200.1,127.1.200.2,127.1.200.3', '--ids', 'x1,x2,x3', '--port', '0']);
    const la = await a.lines;
    expect(la.map((l) => l.id)).toEqual(['x1', 'x2', 'x3']);
    expect(new Set(la.map((l) => l.pid))).toEqual(new Set([a.child.pid]));
    expect(la.map((l) => new URL(l.url).hostname)).toEqual(['127.1.200.1', '127.1.200.2', '127.1.200.3']);
    // Environment configuration, as in a pod.
    const b = start(['--host', '127.1.200.4', '--port', '0'], { SWARMBENCH_AGENT_ID: 'y1', SWARMBENCH_SEEDS: la[1]!.url, SWARMBENCH_CAPACITY: '3' });
    const [lb] = await b.lines;
    expect(lb!.id).toBe('y1');
    await until('y1 ready', 5000, async () => (await client.readyz(lb!.url)).status === 200);
    expect((await client.info(lb!.url)).body).toMatchObject({ id: 'y1', capacity: 3, agentsInProcess: 1 });
    expect((await client.info(la[0]!.url)).body.agentsInProcess).toBe(3);
    await until('all four see four', 10_000, async () => {
      const vs = await Promise.all([...la, lb!].map((l) => client.members(l.url)));
      return vs.every((v) => v.body.alive === 4);
    });
    const exited = new Promise<number | null>((r) => b.child.once('exit', (code) => r(code)));
    b.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // The leave was announced: the others list y1 as left (not dead after a timeout).
    await until('y1 left everywhere', 3000, async () => {
      const vs = await Promise.all(la.map((l) => client.members(l.url)));
      return vs.every((v) => v.body.alive === 3 && v.body.members.find((m) => m.id === 'y1')?.status === 'left');
    });
  });

  it('an agent whose seeds do not answer is healthy but not ready (503)', async () => {
    const b = start(['--host', '127.1.201.2', '--port', '0', '--id', 'lonely', '--seeds', 'http://127.1.201.1:1']);
    const [lb] = await b.lines;
    expect((await client.readyz(lb!.url)).status).toBe(503);
    expect((await client.healthz(lb!.url)).status).toBe(200);
  });
});
