/**
 * What the three stress tests share: the hooks tests use to plant faults, the options of each
 * test's own pool, and the accounting of a load run's outcomes (served, not served).
 */
import { readFileSync } from 'node:fs';
import type { LoadRun } from '../load/index.ts';
import { OUTCOME } from '../load/index.ts';
import type { Params } from '../../plan/params.ts';
import type { Pool, PoolOptions } from '../../platform/types.ts';

export type StressTest = '6.1' | '6.2' | '6.3';

export interface StressHooks {
  /** Called with each test's pool once it is ready (tests plant faults here). */
  onPool?: (test: StressTest, pool: Pool) => Promise<void> | void;
}

export function poolOptions(p: Params, size: number, name: string): PoolOptions {
  return {
    size,
    capacity: p.agents.capacity,
    agentsPerProcess: p.agents.agentsPerProcess,
    autoHeal: false,
    name,
    gossipIntervalMs: p.agents.gossipIntervalMs,
    failureTimeoutMs: p.agents.failureTimeoutMs,
    defects: p.agents.defects,
  };
}

/** Whether task i of a finished run was served: answered ok, its result checked (a wrong result is not served). */
export function served(run: LoadRun, i: number): boolean {
  return run.outcome[i] === OUTCOME.ok;
}

/** Index of the first task scheduled at or after `ms` (tasks are in schedule order). */
export function firstAtOrAfter(run: LoadRun, ms: number): number {
  let lo = 0;
  let hi = run.n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (run.schedMs[mid]! < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The main threads' CPU time of a set of processes at one moment (`/proc/PID/schedstat`, ns). */
interface SchedSample {
  atMs: number;
  runNs: number;
  waitNs: number;
  /** Processes read (the others are gone, stopped reading, or not on this host). */
  pids: number;
  /** The host's CPU time stolen by the hypervisor, all CPUs (`/proc/stat` steal; ns), if readable. */
  stealNs?: number;
}

/** `/proc/stat` counts in USER_HZ ticks, 100 per second on every Linux architecture Node supports. */
const USER_HZ = 100;

/**
 * The host's stolen CPU time (ns) and its CPU count, from `/proc/stat`'s `cpu` line (its 8th
 * value is steal: time a virtual CPU wanted to run while the hypervisor ran something else), or
 * null where it is not readable.
 */
export function readSteal(text?: string): { stealNs: number; cpus: number } | null {
  try {
    const stat = text ?? readFileSync('/proc/stat', 'utf8');
    const lines = stat.split('\n');
    const all = lines.find((l) => l.startsWith('cpu '));
    const steal = Number(all?.trim().split(/\s+/)[8]);
    const cpus = lines.filter((l) => /^cpu\d+ /.test(l)).length;
    return Number.isFinite(steal) && cpus > 0 ? { stealNs: (steal / USER_HZ) * 1e9, cpus } : null;
  } catch {
    return null;
  }
}

/** What `SchedSampler.between` reads of an interval (CPUs: CPU-seconds per second). */
export interface HostReading {
  /** CPUs the processes' main threads ran, and waited for a CPU while runnable. */
  ranCpus: number;
  waitedCpus: number;
  /** waited / (ran + waited). */
  waitShare: number;
  /** The host's CPUs stolen by the hypervisor, and their share of the host's CPUs (if readable). */
  stolenCpus?: number;
  stealShare?: number;
}

/**
 * Samples, every `periodMs`, how long the main threads of the given processes ran and how long
 * they were runnable but waiting for a CPU (Linux `/proc/PID/schedstat`; elsewhere, or for
 * processes not on this host, nothing is read), and the host's stolen CPU time (`/proc/stat`):
 * on a virtual machine the hypervisor may take a virtual CPU while a thread runs on it, which
 * schedstat shows neither as running nor as waiting, yet slows every agent alike. A stopped
 * process neither runs nor waits, and a stall steals nothing, so a stall of the system is not
 * taken for a busy host.
 */
export class SchedSampler {
  private readonly pids: number[];
  private readonly now: () => number;
  private readonly samples: SchedSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private cpus = 0;

  constructor(pids: readonly number[], now: () => number, periodMs = 250) {
    this.pids = [...new Set(pids)].filter((p) => p > 0);
    this.now = now;
    if (this.pids.length && this.read()) this.timer = setInterval(() => this.read(), periodMs);
  }

  private read(): boolean {
    let runNs = 0;
    let waitNs = 0;
    let pids = 0;
    for (const pid of this.pids) {
      try {
        const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
        if (!Number.isFinite(run) || !Number.isFinite(wait)) continue;
        runNs += run!;
        waitNs += wait!;
        pids++;
      } catch {
        // gone, or not a process of this host
      }
    }
    if (pids === 0) return false;
    const steal = readSteal();
    if (steal) this.cpus = steal.cpus;
    this.samples.push({ atMs: this.now(), runNs, waitNs, pids, ...(steal ? { stealNs: steal.stealNs } : {}) });
    return true;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Over [fromMs, toMs) (the samples nearest inside it): the CPUs' worth of time the processes
   * ran and waited, and the waiting share; null without two samples of the same processes.
   */
  between(fromMs: number, toMs: number): HostReading | null {
    const a = this.samples.find((s) => s.atMs >= fromMs);
    const b = this.samples.findLast((s) => s.atMs <= toMs);
    if (!a || !b || b.atMs - a.atMs < 1 || a.pids !== b.pids) return null;
    const ran = (b.runNs - a.runNs) / 1e6;
    const waited = (b.waitNs - a.waitNs) / 1e6;
    const span = b.atMs - a.atMs;
    if (!(ran + waited > 0)) return null;
    const out: HostReading = { ranCpus: ran / span, waitedCpus: waited / span, waitShare: waited / (ran + waited) };
    if (a.stealNs !== undefined && b.stealNs !== undefined && this.cpus > 0) {
      // Ticks are 10 ms: over a 4 s window of 2 CPUs the share is known to about 0.1 %.
      const stolen = Math.max(0, b.stealNs - a.stealNs) / 1e6 / span;
      out.stolenCpus = stolen;
      out.stealShare = Math.min(1, stolen / this.cpus);
    }
    return out;
  }
}
