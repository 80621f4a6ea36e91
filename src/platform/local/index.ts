/**
 * The local platform: agent pools as child processes on this machine.
 *
 * - Every agent has its own loopback address (127.1.x.y, port 0), so agents look like distinct
 *   hosts to each other and to Prometheus. Linux routes all of 127.0.0.0/8 to `lo`.
 * - A host process (`swarmbench agent --control`) hosts up to `agentsPerProcess` agents. The
 *   platform talks to it over its stdin (JSON commands: start, leave, crash) and reads its stdout
 *   (JSON lines: listening, left, crashed, error). The process dies when its stdin closes, so
 *   agents never outlive the platform, even when the platform's process is SIGKILLed.
 * - Growing fills free slots of the pool's processes first, then starts processes. A pool keeps
 *   one warm spare process (started, modules loaded, no agent yet), like a node with the image
 *   already pulled, so growing by a batch does not pay Node's start-up; `warmSpare: false`
 *   turns that off. New agents are seeded with up to three live agents of the pool. `scaleTo`
 *   resolves when every new agent answers 200 on /readyz.
 * - Shrinking removes the newest agents: a process whose agents all go gets SIGTERM (every agent
 *   leaves, then it exits); otherwise the agents leave one by one through the control channel.
 * - `kill(id)`: SIGKILL of the process when the agent is alone in it; otherwise the `crash`
 *   command, which destroys that agent's listener and sockets at once (no goodbye).
 * - `autoHeal`: a killed agent, or every agent of a process that died, is replaced by a new agent
 *   with a new id (as a ReplicaSet replaces a pod).
 * - `fileSdPath`: a Prometheus file_sd JSON listing every live agent of every pool
 *   (`host:port`, labels `agent`, `pool`), rewritten atomically (tmp + rename) on every change.
 * - `agents` (source.ts): the user's own agent instead of the reference agent, as a command
 *   (command.ts: one process per agent with the contract's environment) or as fixed agents
 *   reached by URL (fixed.ts: pools that cannot change size; `fixedAgents` says so).
 * - Authentication (src/agent/auth.ts): the agents of every pool require the process's agent
 *   token (`agentToken()`: SWARMBENCH_AGENT_TOKEN, or one generated for this process), given to
 *   each agent process in its environment (host and spare processes alike); the platform's
 *   clients, and every other client of the harness in this process, send it. A Prometheus that
 *   scrapes the file_sd targets needs the same token (`authorization` with `credentials_file`,
 *   docs/agent-contract.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { agentToken, TOKEN_ENV } from '../../agent/auth.ts';
import { AgentClient } from '../../agent/client.ts';
import { CLI_ENTRY } from '../../paths.ts';
import type { AgentHandle, Platform, Pool, PoolOptions, ProcessStats } from '../types.ts';
import { CommandAgents } from './command.ts';
import { FixedAgents } from './fixed.ts';
import type { AgentSource } from './source.ts';
import { Serial } from '../serial.ts';

export interface PlatformLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug?(msg: string, fields?: Record<string, unknown>): void;
}

export interface LocalPlatformOptions {
  /** Write a Prometheus file_sd JSON of every live agent here. */
  fileSdPath?: string;
  log?: PlatformLog;
  /** Keep one started, empty host process per pool for fast growth (default true). */
  warmSpare?: boolean;
  /** Deadline for new agents to listen and pass /readyz (default 60 s). */
  readyTimeoutMs?: number;
  /** What runs as the agents (default: the reference agent). */
  agents?: AgentSource;
}

/** A pool of any kind, as the platform lists it for file_sd. */
type AnyPool = Pool & { targets(): { id: string; url: string }[] };

interface AgentEventLine {
  event: string;
  id?: string;
  url?: string;
  pid?: number;
  message?: string;
}

interface Waiter {
  resolve(ev: AgentEventLine): void;
  reject(err: Error): void;
}

/** One `swarmbench agent --control` child process. */
class HostProcess {
  readonly index: number;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Agents hosted now (and those being started). */
  readonly agents = new Set<string>();
  alive = true;
  /** Set when the pool stops it on purpose (shrink, close): its exit is not a crash. */
  stopping = false;
  readonly exited: Promise<number | null>;
  private readonly waiters = new Map<string, Waiter>();
  private stderrTail = '';

  constructor(index: number, args: string[], onExit: (p: HostProcess, code: number | null) => void) {
    this.index = index;
    this.child = spawn(process.execPath, [CLI_ENTRY, 'agent', '--control', '--count', '0', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1', [TOKEN_ENV]: agentToken() },
    });
    this.pid = this.child.pid ?? -1;
    this.child.stdin!.on('error', () => undefined);
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.onLine(line));
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-4000);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => {
        this.alive = false;
        const err = new Error(`agent host process ${this.pid} exited (${code ?? 'signal'}): ${this.stderrTail.trim().slice(-500)}`);
        for (const w of this.waiters.values()) w.reject(err);
        this.waiters.clear();
        onExit(this, code);
        resolve(code);
      });
    });
    this.child.once('error', () => undefined);
  }

  get stderr(): string {
    return this.stderrTail;
  }

  private onLine(line: string): void {
    let ev: AgentEventLine;
    try {
      ev = JSON.parse(line) as AgentEventLine;
    } catch {
      return;
    }
    if (!ev.id) return;
    const key = `${ev.event === 'error' ? '*' : ev.event}:${ev.id}`;
    const w = this.waiters.get(key) ?? (ev.event === 'error' ? this.firstWaiterFor(ev.id) : undefined);
    if (!w) return;
    if (ev.event === 'error') w.reject(new Error(`agent ${ev.id}: ${ev.message ?? 'error'}`));
    else w.resolve(ev);
  }

  private firstWaiterFor(id: string): Waiter | undefined {
    for (const [k, w] of this.waiters) {
      if (k.endsWith(`:${id}`)) {
        this.waiters.delete(k);
        return w;
      }
    }
    return undefined;
  }

  /** Wait for a `{event, id}` line. */
  waitFor(event: string, id: string, timeoutMs: number): Promise<AgentEventLine> {
    if (!this.alive) return Promise.reject(new Error(`agent host process ${this.pid} is gone`));
    return new Promise((resolve, reject) => {
      const key = `${event}:${id}`;
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`agent ${id}: no "${event}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(key, {
        resolve: (ev) => {
          clearTimeout(timer);
          this.waiters.delete(key);
          resolve(ev);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.waiters.delete(key);
          reject(err);
        },
      });
    });
  }

  send(cmd: Record<string, unknown>): void {
    if (this.alive) this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) {
      try {
        this.child.kill(sig);
      } catch {
        // already gone
      }
    }
  }
}

interface LiveAgent extends AgentHandle {
  proc: HostProcess;
}

/** Allocates 127.1.x.y addresses (never .0 or .255 as last octet), shared by all pools. */
export class AddressAllocator {
  private n = 1;
  next(): string {
    for (;;) {
      this.n++;
      const v = this.n;
      const d = v & 0xff;
      const c = (v >> 8) & 0xff;
      const b = 1 + ((v >> 16) % 254);
      if (d === 0 || d === 255) continue;
      return `127.${b}.${c}.${d}`;
    }
  }
}

class LocalPool implements Pool {
  readonly name: string;
  private readonly opts: PoolOptions;
  private readonly platform: LocalPlatform;
  private readonly procs = new Set<HostProcess>();
  private readonly live = new Map<string, LiveAgent>();
  private spare: HostProcess | null = null;
  private seq = 0;
  private procSeq = 0;
  private closed = false;
  private readonly serial = new Serial();
  private readonly client = new AgentClient({ maxSockets: 4, timeoutMs: 2000 });

  constructor(platform: LocalPlatform, opts: PoolOptions) {
    this.platform = platform;
    this.opts = opts;
    this.name = opts.name;
  }

  agents(): AgentHandle[] {
    return [...this.live.values()].map(({ id, url, pid, node }) => ({ id, url, pid, node }));
  }

  /** Serialize changes of the pool (scale, heal). */

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

  private spawnProcess(): HostProcess {
    const o = this.opts;
    const args = ['--name', o.name, '--capacity', String(o.capacity)];
    if (o.gossipIntervalMs !== undefined) args.push('--gossip-interval-ms', String(o.gossipIntervalMs));
    if (o.failureTimeoutMs !== undefined) args.push('--failure-timeout-ms', String(o.failureTimeoutMs));
    if (o.defects && o.defects.length > 0) args.push('--defect', o.defects.join(','));
    const p = new HostProcess(this.procSeq++, args, (proc, code) => this.onProcessExit(proc, code));
    this.procs.add(p);
    return p;
  }

  private takeProcess(): HostProcess {
    let p = this.spare;
    this.spare = null;
    if (!p || !p.alive) p = this.spawnProcess();
    return p;
  }

  private refillSpare(): void {
    if (this.platform.warmSpare && !this.closed && (!this.spare || !this.spare.alive)) this.spare = this.spawnProcess();
  }

  private seeds(): string[] {
    return [...this.live.values()].slice(0, 3).map((a) => a.url);
  }

  private async grow(k: number): Promise<void> {
    const per = Math.max(1, this.opts.agentsPerProcess);
    const placements: { proc: HostProcess; ids: string[] }[] = [];
    let left = k;
    for (const p of this.procs) {
      if (left === 0) break;
      if (!p.alive || p.stopping || p === this.spare || p.agents.size === 0) continue;
      const free = per - p.agents.size;
      if (free <= 0) continue;
      const take = Math.min(free, left);
      placements.push({ proc: p, ids: [] });
      for (let i = 0; i < take; i++) placements[placements.length - 1]!.ids.push(this.newId(p));
      left -= take;
    }
    while (left > 0) {
      const p = this.takeProcess();
      const take = Math.min(per, left);
      const ids: string[] = [];
      for (let i = 0; i < take; i++) ids.push(this.newId(p));
      placements.push({ proc: p, ids });
      left -= take;
    }
    let seeds = this.seeds();
    let started = placements;
    const newAgents: LiveAgent[] = [];
    const errors: unknown[] = [];
    if (seeds.length === 0 && placements.length > 0) {
      // An empty pool: the first process starts the cluster (its first agent bootstraps and its
      // others join it); everyone else is seeded with that first agent.
      const first = placements[0]!;
      newAgents.push(...(await this.startOn(first.proc, first.ids, [])));
      seeds = newAgents.length > 0 ? [newAgents[0]!.url] : [];
      started = placements.slice(1);
    }
    const rest = await Promise.allSettled(started.map((pl) => this.startOn(pl.proc, pl.ids, seeds)));
    for (const r of rest) {
      if (r.status === 'fulfilled') newAgents.push(...r.value);
      else errors.push(r.reason);
    }
    this.refillSpare();
    const ready = await Promise.allSettled(newAgents.map((a) => this.waitReady(a)));
    // Agents that came up are part of the pool even if others failed (so close() and kill() see them).
    newAgents.forEach((a, i) => {
      if (ready[i]!.status === 'fulfilled') this.live.set(a.id, a);
      else errors.push((ready[i] as PromiseRejectedResult).reason);
    });
    this.platform.changed();
    if (errors.length > 0) throw errors[0] instanceof Error ? errors[0] : new Error(String(errors[0]));
  }

  private newId(p: HostProcess): string {
    const id = `${this.name}-${this.seq++}`;
    p.agents.add(id);
    return id;
  }

  private async startOn(proc: HostProcess, ids: string[], seeds: string[]): Promise<LiveAgent[]> {
    const timeout = this.platform.readyTimeoutMs;
    const waits = ids.map((id) => proc.waitFor('listening', id, timeout));
    proc.send({ op: 'start', agents: ids.map((id) => ({ id, host: this.platform.addresses.next() })), seeds });
    try {
      const evs = await Promise.all(waits);
      return evs.map((ev) => ({ id: ev.id!, url: ev.url!, pid: proc.pid, node: `proc-${proc.index}`, proc }));
    } catch (err) {
      for (const id of ids) proc.agents.delete(id);
      throw err;
    }
  }

  private async waitReady(a: LiveAgent): Promise<void> {
    const deadline = Date.now() + this.platform.readyTimeoutMs;
    for (;;) {
      try {
        const r = await this.client.readyz(a.url);
        if (r.status === 200) return;
      } catch {
        // not answering yet
      }
      if (!a.proc.alive) throw new Error(`agent ${a.id} died before it was ready: ${a.proc.stderr.slice(-500)}`);
      if (Date.now() > deadline) throw new Error(`agent ${a.id} not ready within ${this.platform.readyTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async shrink(k: number): Promise<void> {
    const victims = [...this.live.values()].slice(-k);
    const byProc = new Map<HostProcess, LiveAgent[]>();
    for (const v of victims) byProc.set(v.proc, [...(byProc.get(v.proc) ?? []), v]);
    await Promise.all(
      [...byProc].map(async ([proc, list]) => {
        for (const v of list) this.live.delete(v.id);
        if (list.length >= proc.agents.size) {
          proc.stopping = true;
          proc.signal('SIGTERM');
          const t = setTimeout(() => proc.signal('SIGKILL'), 10_000);
          await proc.exited;
          clearTimeout(t);
        } else {
          await Promise.all(
            list.map(async (v) => {
              const w = proc.waitFor('left', v.id, 10_000);
              proc.send({ op: 'leave', id: v.id });
              await w.catch(() => undefined);
              proc.agents.delete(v.id);
            }),
          );
        }
      }),
    );
    this.platform.changed();
  }

  async kill(id: string): Promise<void> {
    const a = this.live.get(id);
    if (!a) throw new Error(`pool ${this.name}: no live agent ${id}`);
    this.live.delete(id);
    const proc = a.proc;
    if (proc.agents.size <= 1) {
      proc.stopping = true; // healed below, not by the exit handler
      proc.signal('SIGKILL');
      await proc.exited;
    } else {
      const w = proc.waitFor('crashed', id, 5000);
      proc.send({ op: 'crash', id });
      await w;
      proc.agents.delete(id);
    }
    this.platform.changed();
    this.log('info', 'agent killed', { pool: this.name, agent: id });
    if (this.opts.autoHeal && !this.closed) this.heal(1);
  }

  private heal(count: number): void {
    void this.serial.run(async () => {
      if (this.closed) return;
      await this.grow(count);
    }).catch((err: unknown) => this.log('warn', 'auto-heal failed', { pool: this.name, error: String(err) }));
  }

  private onProcessExit(proc: HostProcess, code: number | null): void {
    this.procs.delete(proc);
    if (this.spare === proc) this.spare = null;
    if (proc.stopping || this.closed) return;
    const lost = [...this.live.values()].filter((a) => a.proc === proc);
    for (const a of lost) this.live.delete(a.id);
    if (lost.length > 0) {
      this.log('warn', 'agent host process died', { pool: this.name, pid: proc.pid, code, agents: lost.length });
      this.platform.changed();
      if (this.opts.autoHeal) this.heal(lost.length);
    }
  }

  async stats(): Promise<ProcessStats[]> {
    const byProc = new Map<HostProcess, LiveAgent[]>();
    for (const a of this.live.values()) byProc.set(a.proc, [...(byProc.get(a.proc) ?? []), a]);
    return Promise.all(
      [...byProc].map(async ([proc, list]) => {
        const s: ProcessStats = { pid: proc.pid, agents: list.length, rssBytes: 0, heapUsedBytes: 0, cpuSeconds: 0 };
        const fromProc = await procStats(proc.pid);
        if (fromProc) {
          s.rssBytes = fromProc.rssBytes;
          s.cpuSeconds = fromProc.cpuSeconds;
        }
        try {
          const r = await this.client.info(list[0]!.url);
          if (r.status === 200) {
            s.heapUsedBytes = r.body.memory.heapUsed;
            if (!fromProc) s.rssBytes = r.body.memory.rss;
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
      p.signal('SIGKILL');
    }
    await Promise.all(all.map((p) => p.exited));
    this.client.close();
    this.platform.poolClosed(this);
  }

  /** Live agents with their pool name, for file_sd. */
  targets(): { id: string; url: string }[] {
    return [...this.live.values()].map((a) => ({ id: a.id, url: a.url }));
  }

  private log(level: 'info' | 'warn', msg: string, fields: Record<string, unknown>): void {
    this.platform.log?.[level](msg, fields);
  }
}

/** rss and cpu time of a process from /proc (Linux); null elsewhere or when it is gone. */
async function procStats(pid: number): Promise<{ rssBytes: number; cpuSeconds: number } | null> {
  try {
    const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]);
    const rss = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    // Fields after the command name (which may contain spaces): utime is field 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rssBytes: rss ? Number(rss[1]) * 1024 : 0, cpuSeconds: ticks / 100 };
  } catch {
    return null;
  }
}

export class LocalPlatform implements Platform {
  readonly kind = 'local' as const;
  readonly addresses = new AddressAllocator();
  readonly log: PlatformLog | undefined;
  readonly warmSpare: boolean;
  readonly readyTimeoutMs: number;
  private readonly fileSdPath: string | undefined;
  private readonly pools = new Set<AnyPool>();
  private readonly command: CommandAgents | null;
  private readonly fixed: FixedAgents | null;
  private sdWrite: Promise<void> = Promise.resolve();
  private sdDirty = false;

  constructor(opts: LocalPlatformOptions = {}) {
    this.fileSdPath = opts.fileSdPath;
    this.log = opts.log;
    this.warmSpare = opts.warmSpare ?? true;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
    const a = opts.agents;
    this.command = a?.kind === 'command' ? new CommandAgents(a.command) : null;
    this.fixed = a?.kind === 'urls' ? new FixedAgents(a.urls) : null;
  }

  get fixedAgents(): string | undefined {
    return this.fixed?.describe();
  }

  async createPool(opts: PoolOptions): Promise<Pool> {
    const pool: AnyPool = this.command ? this.command.pool(this, opts) : this.fixed ? this.fixed.pool(this, opts) : new LocalPool(this, opts);
    this.pools.add(pool);
    try {
      await pool.scaleTo(opts.size);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** A pool changed: rewrite the file_sd targets (coalesced, one write at a time). */
  changed(): void {
    if (!this.fileSdPath) return;
    if (this.sdDirty) return;
    this.sdDirty = true;
    this.sdWrite = this.sdWrite.then(async () => {
      this.sdDirty = false;
      await this.writeFileSd().catch((err: unknown) => this.log?.warn('file_sd write failed', { error: String(err) }));
    });
  }

  /** Resolves when the file_sd file reflects every change so far. */
  flushFileSd(): Promise<void> {
    return this.sdWrite;
  }

  private async writeFileSd(): Promise<void> {
    const path = this.fileSdPath!;
    const groups: { targets: string[]; labels: Record<string, string> }[] = [];
    for (const pool of this.pools) {
      for (const t of pool.targets()) {
        groups.push({ targets: [new URL(t.url).host], labels: { agent: t.id, pool: pool.name } });
      }
    }
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify(groups, null, 1)}\n`);
    await rename(tmp, path);
  }

  poolClosed(pool: AnyPool): void {
    this.pools.delete(pool);
    this.changed();
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools].map((p) => p.close()));
    this.command?.close();
    await this.flushFileSd();
  }
}
