/**
 * What the host did during a scalability window, measured by the operating system (never by the
 * agents): the host's CPUs (`os.cpus()` times), this process's CPU (the harness, `process.cpuUsage`),
 * the pool's processes (`pool.stats()`), the harness's event-loop delay, and, where Linux exposes
 * it (`/proc/PID/schedstat`), how long the main threads of the harness and of the pool's processes
 * were runnable but waiting for a CPU (starved). It decides whether a step that misses its target
 * is **host-bound** (Skipped with these figures) rather than Failed.
 *
 * Host-bound (`hostBound`), any of:
 * - the harness's process used at least 90 % of a core (the load generator itself was saturated);
 * - this benchmark's processes (harness and pool) used at least 90 % of the CPUs this process may
 *   run on (the step's own load ran the host out);
 * - starvation could explain the shortfall: the step's throughput (the window's, or the whole run's
 *   when higher: a starved pool may complete almost nothing inside the window) scaled by the CPU
 *   its processes wanted (ran + waited) over the CPU they got (ran) reaches the target; or the
 *   starvation was severe (they waited at least twice as long as they ran: a collapse is not
 *   linear, timeouts and back-offs pile up).
 *
 * A pool slow for another reason (a serialising lock) completes far too little for the
 * throughput rule, and `judge.ts` claims host-bound only for a pool whose every agent executed
 * tasks and that completed at least two tasks per agent, which a lock or a coordinator that runs
 * everything itself does not: those fail even on a host other processes keep busy.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { round } from '../../stats.ts';
import { sameProcess } from '../measure.ts';
import type { Pool, ProcessStats } from '../../platform/types.ts';

export interface CpuMark {
  /** When the host, harness and schedstat figures were read (synchronously), and when the pool's stats came. */
  atMs: number;
  poolAtMs: number;
  hostBusyMs: number;
  hostTotalMs: number;
  hostCpus: number;
  harness: NodeJS.CpuUsage;
  pool: ProcessStats[] | null;
  /** Main-thread run and run-queue wait (ns) of the harness and the pool's processes, by pid. */
  sched: Map<number, { runNs: number; waitNs: number }>;
}

export interface HostUse {
  seconds: number;
  hostCpus: number;
  /** CPUs this process may run on. */
  usableCpus: number;
  /** Busy share of all the host's CPUs, %. */
  hostBusyPct: number | null;
  /** The harness's process, % of one core. */
  harnessCpuPct: number;
  /** The pool's processes together, % of one core (null when the platform cannot say). */
  poolCpuPct: number | null;
  /** Harness + pool, in CPUs (at most what the host's CPUs were busy). */
  benchmarkCpus: number;
  /** What the rest of the host used, in CPUs (busy minus this benchmark, never below 0). */
  otherCpus: number | null;
  /** The harness's event-loop delay over the window, p99 (ms). */
  harnessLoopDelayP99Ms: number | null;
  /**
   * Main threads of the harness and the pool's processes: CPUs they ran, and CPUs' worth of time
   * they were runnable but waiting for a CPU (`/proc/PID/schedstat`; null where not readable).
   */
  mainThreadsRanCpus: number | null;
  mainThreadsWaitedCpus: number | null;
}

function hostTimes(): { busy: number; total: number; n: number } {
  let busy = 0;
  let total = 0;
  const list = cpus();
  for (const c of list) {
    const t = c.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total, n: list.length };
}

/**
 * CPU-seconds used by the processes present in both snapshots: matched by pid, or where the
 * platform knows none (pid 0: pods) by their key (the pod's uid). A process without either is
 * not counted: which earlier figure is its own cannot be told.
 */
export function cpuSecondsBetween(a: readonly ProcessStats[], b: readonly ProcessStats[]): number {
  let s = 0;
  for (const x of b) {
    const y = sameProcess(a, x);
    if (y) s += Math.max(0, x.cpuSeconds - y.cpuSeconds);
  }
  return s;
}

/** `/proc/PID/schedstat` of a process's main thread: ns on a CPU, ns runnable and waiting. */
export function readSchedstat(pid: number): { runNs: number; waitNs: number } | null {
  try {
    const f = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    if (f.length < 2 || !Number.isFinite(f[0]) || !Number.isFinite(f[1])) return null;
    return { runNs: f[0]!, waitNs: f[1]! };
  } catch {
    return null;
  }
}

/**
 * Reads the host, the harness and the main threads at once (so the window's bounds are exact even
 * when the pool's own figures, which come over its control channel, are slow on a busy host).
 */
export async function markCpu(pool: Pool): Promise<CpuMark> {
  const atMs = performance.now();
  const h = hostTimes();
  const harness = process.cpuUsage();
  const sched = new Map<number, { runNs: number; waitNs: number }>();
  for (const pid of new Set([process.pid, ...pool.agents().map((a) => a.pid)])) {
    if (!(pid > 0)) continue;
    const v = readSchedstat(pid);
    if (v) sched.set(pid, v);
  }
  const stats = await pool.stats().catch(() => null);
  return { atMs, poolAtMs: performance.now(), hostBusyMs: h.busy, hostTotalMs: h.total, hostCpus: h.n, harness, pool: stats, sched };
}

/** Starts recording the harness's event-loop delay; `stop()` gives its p99 (ms). */
export function loopDelay(): { stop(): number | null } {
  let h: ReturnType<typeof monitorEventLoopDelay> | null = null;
  try {
    h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
  } catch {
    h = null;
  }
  return {
    stop() {
      if (!h) return null;
      h.disable();
      const v = h.count > 0 ? h.percentile(99) / 1e6 : null;
      return v;
    },
  };
}

export function hostUseBetween(a: CpuMark, b: CpuMark, loopDelayP99Ms: number | null): HostUse {
  const seconds = Math.max(1e-3, (b.atMs - a.atMs) / 1000);
  const totalMs = b.hostTotalMs - a.hostTotalMs;
  const hostBusyPct = totalMs > 0 ? ((b.hostBusyMs - a.hostBusyMs) / totalMs) * 100 : null;
  const harnessS = (b.harness.user - a.harness.user + b.harness.system - a.harness.system) / 1e6;
  const harnessCpuPct = (harnessS / seconds) * 100;
  // The pool's figures were taken somewhere between a mark's reading and the answer: the midpoints.
  const poolSeconds = ((b.atMs + b.poolAtMs) / 2 - (a.atMs + a.poolAtMs) / 2) / 1000;
  const poolCpuPct = a.pool && b.pool && poolSeconds > 0 ? (cpuSecondsBetween(a.pool, b.pool) / poolSeconds) * 100 : null;
  const busyCpus = hostBusyPct === null ? null : (hostBusyPct / 100) * b.hostCpus;
  // Never more than the host's CPUs were busy over the window (the pool's own reading is the less exact one).
  const benchmarkCpus = Math.min((harnessCpuPct + (poolCpuPct ?? 0)) / 100, busyCpus ?? Number.POSITIVE_INFINITY);
  let ranNs = 0;
  let waitedNs = 0;
  let seen = 0;
  for (const [pid, y] of b.sched) {
    const x = a.sched.get(pid);
    if (!x) continue;
    seen++;
    ranNs += Math.max(0, y.runNs - x.runNs);
    waitedNs += Math.max(0, y.waitNs - x.waitNs);
  }
  return {
    seconds: round(seconds, 3),
    hostCpus: b.hostCpus,
    usableCpus: availableParallelism(),
    hostBusyPct: hostBusyPct === null ? null : round(hostBusyPct, 1),
    harnessCpuPct: round(harnessCpuPct, 1),
    poolCpuPct: poolCpuPct === null ? null : round(poolCpuPct, 1),
    benchmarkCpus: round(benchmarkCpus, 2),
    otherCpus: busyCpus === null ? null : round(Math.max(0, busyCpus - benchmarkCpus), 2),
    harnessLoopDelayP99Ms: loopDelayP99Ms === null ? null : round(loopDelayP99Ms, 1),
    mainThreadsRanCpus: seen > 0 ? round(ranNs / 1e9 / seconds, 3) : null,
    mainThreadsWaitedCpus: seen > 0 ? round(waitedNs / 1e9 / seconds, 3) : null,
  };
}

/**
 * Why the window was host-bound (see the module comment), or null when it was not. `throughput`
 * is what the step achieved and `needed` what would have met the target (tasks/s).
 */
export function hostBound(u: HostUse, throughput: number, needed: number): string | null {
  if (u.harnessCpuPct >= 90) return `the load generator's process used ${u.harnessCpuPct} % of a core`;
  if (u.benchmarkCpus >= 0.9 * u.usableCpus) {
    return `this benchmark's processes used ${u.benchmarkCpus} of the ${u.usableCpus} CPUs it may run on (harness ${u.harnessCpuPct} %, agents ${u.poolCpuPct ?? '?'} % of a core)`;
  }
  const ran = u.mainThreadsRanCpus;
  const waited = u.mainThreadsWaitedCpus;
  if (ran !== null && waited !== null && ran > 0 && waited > 0 && (throughput * (ran + waited)) / ran >= needed) {
    return (
      `its processes were starved of CPU: their main threads ran ${ran} CPUs and waited ${waited} CPUs' worth for one ` +
      `(the host's ${u.hostCpus} CPUs ${u.hostBusyPct ?? '?'} % busy, ${u.otherCpus ?? '?'} CPUs of it other processes), ` +
      `and ${round(throughput, 1)} tasks/s x ${round((ran + waited) / ran, 2)} reaches the ${round(needed, 1)} tasks/s the target needs`
    );
  }
  if (ran !== null && waited !== null && waited > 0 && waited >= 2 * ran) {
    return (
      `its processes were severely starved of CPU: their main threads ran ${ran} CPUs and waited ${waited} CPUs' worth for one ` +
      `(the host's ${u.hostCpus} CPUs ${u.hostBusyPct ?? '?'} % busy, ${u.otherCpus ?? '?'} CPUs of it other processes)`
    );
  }
  return null;
}
