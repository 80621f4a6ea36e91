/**
 * Pools of the user's own agent, started from a command (`swarmbench run --agent-command CMD`).
 *
 * - One process per agent, as one container per pod: `/bin/sh -c CMD` in a process group of its
 *   own, with the environment the agent pods get (docs/agent-contract.md, "Running your own agent
 *   locally"): `POD_NAME` and `SWARMBENCH_AGENT_ID` (the agent's id), `POD_IP` (its own loopback
 *   address, 127.1.x.y, also the host of its URL), `PORT` (a free port of its own), `NODE_NAME`,
 *   `SWARMBENCH_SEEDS` (up to three live agents of the pool, comma-separated; empty for the
 *   first), `SWARMBENCH_CAPACITY`, `SWARMBENCH_GOSSIP_INTERVAL_MS`, `SWARMBENCH_FAILURE_TIMEOUT_MS`,
 *   `SWARMBENCH_AGENT_TOKEN` (the run's bearer token, which the agent should require on every
 *   route but `/healthz` and `/readyz`; the harness's requests carry it: src/agent/auth.ts).
 *   The agent listens on `$POD_IP:$PORT` or `0.0.0.0:$PORT`; its URL is `http://$POD_IP:$PORT`.
 * - Ready when `/readyz` answers 200 (within the platform's ready timeout); an agent that exits
 *   first fails the growth with the tail of its stderr.
 * - Shrinking sends SIGTERM to the newest agents' process groups (SIGKILL after 10 s); `kill(id)`
 *   is SIGKILL of the group; `autoHeal` replaces an agent that died with a new one (new id).
 * - Never outliving the platform: each agent's stdin is a pipe that closes when the platform's
 *   process goes (an agent may exit on its end), and one reaper process per platform, watching
 *   its own stdin, SIGKILLs every group still listed when the platform's process dies, however it
 *   dies.
 * - `stats()`: RSS and CPU time summed over each agent's process group (/proc), the heap from
 *   the agent's `/v1/info`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { agentToken, TOKEN_ENV } from '../../agent/auth.ts';
import { AgentClient } from '../../agent/client.ts';
import type { AgentHandle, Pool, PoolOptions, ProcessStats } from '../types.ts';
import { Serial } from '../serial.ts';

/** What a command pool needs from its platform (index.ts `LocalPlatform`). */
export interface CommandHost {
  readonly addresses: { next(): string };
  readonly readyTimeoutMs: number;
  readonly log: { info(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void } | undefined;
  changed(): void;
  poolClosed(pool: CommandPool): void;
}

/** SIGKILLs the process groups it was told of when its stdin closes (its parent is gone). */
const REAPER_SOURCE = `
const groups = new Set();
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => undefined);
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const g = Number(line.slice(1));
    if (!Number.isInteger(g) || g <= 1) continue;
    if (line[0] === '+') groups.add(g);
    else groups.delete(g);
  }
  if (buf.length > 4096) buf = '';
});
process.stdin.on('end', () => {
  for (const g of groups) { try { process.kill(-g, 'SIGKILL'); } catch {} }
  process.exit(0);
});
`;

/** The agents of every command pool of one platform: the command, the reaper, the ports in use. */
export class CommandAgents {
  readonly command: string;
  private reaper: ChildProcess | null = null;
  private readonly ports = new Set<number>();

  constructor(command: string) {
    this.command = command;
  }

  pool(host: CommandHost, opts: PoolOptions): CommandPool {
    return new CommandPool(host, this, opts);
  }

  /** Tell the reaper about a process group (`+`) or that it is gone (`-`). */
  track(pgid: number, add: boolean): void {
    if (add && !this.reaper) {
      this.reaper = spawn(process.execPath, ['-e', REAPER_SOURCE], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      this.reaper.stdin!.on('error', () => undefined);
      this.reaper.once('error', () => undefined);
      // Neither the reaper nor its pipe keeps the platform's process alive.
      this.reaper.unref();
      (this.reaper.stdin as unknown as { unref?: () => void }).unref?.();
    }
    if (this.reaper?.stdin?.writable) this.reaper.stdin.write(`${add ? '+' : '-'}${pgid}\n`);
  }

  /** A port free on every address now, not handed to another agent of this platform. */
  async freePort(): Promise<number> {
    for (let i = 0; i < 50; i++) {
      const port = await new Promise<number>((resolve, reject) => {
        const srv = createServer();
        srv.once('error', reject);
        srv.listen(0, '0.0.0.0', () => {
          const a = srv.address();
          srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
        });
      });
      if (port > 0 && !this.ports.has(port)) {
        this.ports.add(port);
        return port;
      }
    }
    throw new Error('no free port for an agent after 50 tries');
  }

  releasePort(port: number): void {
    this.ports.delete(port);
  }

  /** After every pool is closed: the reaper exits (nothing is left for it to kill). */
  close(): void {
    this.reaper?.stdin?.end();
    this.reaper = null;
  }
}

/** One agent process (the shell and whatever it starts, in one process group). */
class AgentProcess {
  readonly id: string;
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly pid: number;
  alive = true;
  /** Stopped on purpose (shrink, kill, close): its exit is not a crash. */
  stopping = false;
  /** Resolves when every process of the group has exited (at most 5 s after the shell). */
  readonly exited: Promise<number | null>;
  /** Resolves when its output streams are closed too (all of its output has been read). */
  readonly drained: Promise<void>;
  private tail = '';

  constructor(command: string, id: string, host: string, port: number, env: NodeJS.ProcessEnv, onExit: (p: AgentProcess, code: number | null, signal: string | null) => void) {
    this.id = id;
    this.port = port;
    this.url = `http://${host}:${port}`;
    this.child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
    this.pid = this.child.pid ?? -1;
    this.child.stdin!.on('error', () => undefined);
    // Both streams are read (a full pipe would block the agent); the last 4000 characters are kept.
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString('utf8')).slice(-4000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: string | null) => {
        if (done) return;
        done = true;
        this.alive = false;
        // Whatever the shell started in the group goes with it, and the agent has exited when
        // the whole group has (its sockets closed), not only the shell.
        this.signalGroup('SIGKILL');
        void waitGroupGone(this.pid, 5000).then(() => {
          onExit(this, code, signal);
          resolve(code);
        });
      };
      this.child.once('exit', finish);
      this.child.once('error', (err) => {
        this.tail += `\n${err.message}`;
        // Never started: there will be no exit event.
        if (this.child.pid === undefined) finish(null, null);
      });
    });
    this.drained = new Promise((resolve) => this.child.once('close', () => resolve()));
  }

  get output(): string {
    return this.tail.trim().slice(-500);
  }

  signalGroup(sig: NodeJS.Signals): void {
    if (this.pid <= 1) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      // the group is gone
    }
  }
}

interface LiveAgent extends AgentHandle {
  proc: AgentProcess;
}

export class CommandPool implements Pool {
  readonly name: string;
  private readonly host: CommandHost;
  private readonly agentsOf: CommandAgents;
  private readonly opts: PoolOptions;
  private readonly procs = new Set<AgentProcess>();
  private readonly live = new Map<string, LiveAgent>();
  private seq = 0;
  private closed = false;
  private readonly serial = new Serial();
  private readonly client = new AgentClient({ maxSockets: 4, timeoutMs: 2000 });

  constructor(host: CommandHost, agentsOf: CommandAgents, opts: PoolOptions) {
    this.host = host;
    this.agentsOf = agentsOf;
    this.opts = opts;
    this.name = opts.name;
  }

  agents(): AgentHandle[] {
    return [...this.live.values()].map(({ id, url, pid, node }) => ({ id, url, pid, node }));
  }

  targets(): { id: string; url: string }[] {
    return [...this.live.values()].map((a) => ({ id: a.id, url: a.url }));
  }


  scaleTo(n: number): Promise<AgentHandle[]> {
    if (!Number.isInteger(n) || n < 0) return Promise.reject(new Error(`scaleTo: bad size ${n}`));
    return this.serial.run(async () => {
      if (this.closed) throw new Error(`pool ${this.name} is closed`);
      const cur = this.live.size;
      if (n > cur) await this.grow(n - cur);
      else if (n < cur) await this.shrink(cur - n);
      return this.agents();
    });
  }

  /** The contract's environment for one agent (docs/agent-contract.md). */
  private envFor(id: string, host: string, port: number, seeds: string[]): NodeJS.ProcessEnv {
    const o = this.opts;
    return {
      ...process.env,
      POD_NAME: id,
      SWARMBENCH_AGENT_ID: id,
      POD_IP: host,
      PORT: String(port),
      NODE_NAME: hostname(),
      SWARMBENCH_SEEDS: seeds.join(','),
      SWARMBENCH_CAPACITY: String(o.capacity),
      [TOKEN_ENV]: agentToken(),
      ...(o.gossipIntervalMs !== undefined ? { SWARMBENCH_GOSSIP_INTERVAL_MS: String(o.gossipIntervalMs) } : {}),
      ...(o.failureTimeoutMs !== undefined ? { SWARMBENCH_FAILURE_TIMEOUT_MS: String(o.failureTimeoutMs) } : {}),
    };
  }

  private async start(seeds: string[]): Promise<LiveAgent> {
    const id = `${this.name}-${this.seq++}`;
    const host = this.host.addresses.next();
    const port = await this.agentsOf.freePort();
    const proc = new AgentProcess(this.agentsOf.command, id, host, port, this.envFor(id, host, port, seeds), (p, code, signal) => this.onExit(p, code, signal));
    this.procs.add(proc);
    this.agentsOf.track(proc.pid, true);
    const agent: LiveAgent = { id, url: proc.url, pid: proc.pid, node: `cmd-${id}`, proc };
    try {
      await this.waitReady(agent);
      return agent;
    } catch (err) {
      proc.stopping = true;
      proc.signalGroup('SIGKILL');
      await proc.exited;
      throw err;
    }
  }

  private async grow(k: number): Promise<void> {
    const errors: unknown[] = [];
    let left = k;
    if (this.live.size === 0 && left > 0) {
      // The first agent starts the cluster alone; the others are seeded with it.
      const first = await this.start([]);
      this.live.set(first.id, first);
      left--;
    }
    const seeds = [...this.live.values()].slice(0, 3).map((a) => a.url);
    const started = await Promise.allSettled(Array.from({ length: left }, () => this.start(seeds)));
    for (const r of started) {
      if (r.status === 'fulfilled') this.live.set(r.value.id, r.value);
      else errors.push(r.reason);
    }
    this.host.changed();
    if (errors.length > 0) throw errors[0] instanceof Error ? errors[0] : new Error(String(errors[0]));
  }

  private async waitReady(a: LiveAgent): Promise<void> {
    const timeout = this.host.readyTimeoutMs;
    const deadline = Date.now() + timeout;
    for (;;) {
      try {
        const r = await this.client.readyz(a.url);
        if (r.status === 200) return;
      } catch {
        // not answering yet
      }
      if (!a.proc.alive) {
        await Promise.race([a.proc.drained, new Promise((r) => setTimeout(r, 500))]);
        throw new Error(`agent ${a.id} (\`${this.agentsOf.command}\`) exited before it was ready${a.proc.output ? `: ${a.proc.output}` : ''}`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `agent ${a.id} did not answer 200 on ${a.url}/readyz within ${Math.round(timeout / 1000)} s: it must listen on $POD_IP:$PORT ` +
            `(or 0.0.0.0:$PORT) and answer /readyz once it has joined${a.proc.output ? `; its output: ${a.proc.output}` : ''}`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private async stop(a: LiveAgent, sig: NodeJS.Signals): Promise<void> {
    const proc = a.proc;
    proc.stopping = true;
    proc.signalGroup(sig);
    const t = sig === 'SIGKILL' ? undefined : setTimeout(() => proc.signalGroup('SIGKILL'), 10_000);
    await proc.exited;
    if (t) clearTimeout(t);
  }

  private async shrink(k: number): Promise<void> {
    const victims = [...this.live.values()].slice(-k);
    for (const v of victims) this.live.delete(v.id);
    await Promise.all(victims.map((v) => this.stop(v, 'SIGTERM')));
    this.host.changed();
  }

  async kill(id: string): Promise<void> {
    const a = this.live.get(id);
    if (!a) throw new Error(`pool ${this.name}: no live agent ${id}`);
    this.live.delete(id);
    await this.stop(a, 'SIGKILL');
    this.host.changed();
    this.host.log?.info('agent killed', { pool: this.name, agent: id });
    if (this.opts.autoHeal && !this.closed) this.heal(1);
  }

  private heal(count: number): void {
    void this.serial.run(async () => {
      if (this.closed) return;
      await this.grow(count);
    }).catch((err: unknown) => this.host.log?.warn('auto-heal failed', { pool: this.name, error: String(err) }));
  }

  private onExit(proc: AgentProcess, code: number | null, signal: string | null): void {
    this.procs.delete(proc);
    this.agentsOf.track(proc.pid, false);
    this.agentsOf.releasePort(proc.port);
    if (proc.stopping || this.closed) return;
    const a = this.live.get(proc.id);
    if (!a) return;
    this.live.delete(proc.id);
    this.host.log?.warn('agent process died', { pool: this.name, agent: proc.id, pid: proc.pid, code, signal, output: proc.output });
    this.host.changed();
    if (this.opts.autoHeal) this.heal(1);
  }

  async stats(): Promise<ProcessStats[]> {
    const agents = [...this.live.values()];
    const groups = await groupStats(new Set(agents.map((a) => a.pid)));
    return Promise.all(
      agents.map(async (a) => {
        const g = groups?.get(a.pid);
        const s: ProcessStats = { pid: a.pid, agents: 1, rssBytes: g?.rssBytes ?? 0, heapUsedBytes: 0, cpuSeconds: g?.cpuSeconds ?? 0 };
        try {
          const r = await this.client.info(a.url);
          if (r.status === 200 && r.body && typeof r.body === 'object') {
            const mem = (r.body as { memory?: { rss?: unknown; heapUsed?: unknown } }).memory;
            if (typeof mem?.heapUsed === 'number') s.heapUsedBytes = mem.heapUsed;
            if (!g && typeof mem?.rss === 'number') s.rssBytes = mem.rss;
          }
        } catch {
          // the agent may be going away
        }
        return s;
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.live.clear();
    const all = [...this.procs];
    for (const p of all) {
      p.stopping = true;
      p.signalGroup('SIGKILL');
    }
    await Promise.all(all.map((p) => p.exited));
    this.client.close();
    this.host.poolClosed(this);
  }
}

/**
 * RSS and CPU seconds summed over the processes of each of `pgids` (Linux /proc; null
 * elsewhere). A process belongs to a group by field 5 (pgrp) of /proc/<pid>/stat.
 */
export async function groupStats(pgids: ReadonlySet<number>): Promise<Map<number, { rssBytes: number; cpuSeconds: number }> | null> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return null;
  }
  const out = new Map<number, { rssBytes: number; cpuSeconds: number }>();
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (pid) => {
        try {
          const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
          // Fields after the command name (which may hold spaces and parentheses).
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          const pgrp = Number(f[2]);
          if (!pgids.has(pgrp)) return;
          const status = await readFile(`/proc/${pid}/status`, 'utf8');
          const rss = /VmRSS:\s+(\d+)\s+kB/.exec(status);
          const g = out.get(pgrp) ?? { rssBytes: 0, cpuSeconds: 0 };
          g.rssBytes += rss ? Number(rss[1]) * 1024 : 0;
          g.cpuSeconds += (Number(f[11]) + Number(f[12])) / 100;
          out.set(pgrp, g);
        } catch {
          // gone meanwhile
        }
      }),
  );
  return out;
}

let scan: { at: number; groups: Promise<Set<number> | null> } | null = null;

/** Process groups with a member that is not a zombie (Linux /proc; null elsewhere), read at most every 10 ms. */
function liveGroups(): Promise<Set<number> | null> {
  const now = performance.now();
  if (scan && now - scan.at < 10) return scan.groups;
  const groups = (async () => {
    let entries: string[];
    try {
      entries = await readdir('/proc');
    } catch {
      return null;
    }
    const out = new Set<number>();
    await Promise.all(
      entries
        .filter((e) => /^\d+$/.test(e))
        .map(async (pid) => {
          try {
            const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
            const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (f[0] !== 'Z' && f[0] !== 'X') out.add(Number(f[2]));
          } catch {
            // gone meanwhile
          }
        }),
    );
    return out;
  })();
  scan = { at: now, groups };
  return groups;
}

/** Resolves when no live process is left in group `pgid`, or after `timeoutMs`. */
async function waitGroupGone(pgid: number, timeoutMs: number): Promise<void> {
  if (pgid <= 1) return;
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return; // no process at all in the group
    }
    const live = await liveGroups();
    if (live !== null && !live.has(pgid)) return; // only zombies left: their sockets are closed
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}
