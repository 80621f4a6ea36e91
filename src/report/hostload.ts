/**
 * What else the host was doing during a local run, for `environment.hostLoad` (assemble.ts): a
 * run measured beside a busy loop is not the run measured on a quiet machine, and the document
 * must say which it was.
 *
 * Method (Linux): the host's CPU time from the first line of `/proc/stat` (busy = every field but
 * idle and iowait), and the run's own CPU time, `utime + stime + cutime + cstime` of the run's
 * process in `/proc/self/stat` (cutime/cstime hold the CPU of every child the run waited for, and
 * of their children, so runners and agents that have exited and been reaped are counted). Read at
 * the start and the end of the run:
 * - `busyCpus`: the host's busy CPU-seconds ÷ the run's wall seconds (2.0 = two CPUs busy all along);
 * - `ownCpus`: the same for the run's own processes;
 * - `otherCpus`: the difference, what other processes used (never below 0); `otherPct` relates it
 *   to the host's CPUs. On a virtual machine this includes steal, the time a virtual CPU was ready
 *   to run while the hypervisor ran another guest (the `steal` field of /proc/stat counts as busy):
 *   the host's neighbours take it as surely as a process does;
 * - `stealCpus`, `stealPct`: the steal alone, the part of `otherCpus` the hypervisor took (where
 *   /proc/stat has the field, Linux 2.6.11 on). On the development VM it was 12 to 22 % of the CPUs
 *   at times with nothing else running, and a few tenths of a percent at others: a machine that
 *   changed under the same guest;
 * - `loadavg1`: the one-minute load average at the start and at the end.
 * Processes the run started and has not reaped by the end (none, after a run closes its pools)
 * would count as "other". Where /proc cannot be read (not Linux) nothing is recorded.
 */
import { cpus, loadavg } from 'node:os';
import type { Environment } from '../api/schema.ts';
import { readSmallFile } from './cpuset.ts';

export type HostLoad = NonNullable<Environment['hostLoad']>;

/** One reading of the host's and the run's CPU time, in seconds. */
export interface CpuReading {
  atMs: number;
  hostBusyS: number;
  hostCpus: number;
  ownS: number;
  loadavg1: number;
  /** The host's steal so far, in CPU-seconds (absent where /proc/stat has no steal field). */
  hostStealS?: number;
}

/** USER_HZ: the unit of /proc's CPU times. 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/** The fields of the `cpu` line of /proc/stat (user nice system idle iowait irq softirq steal ...), in ticks. */
function cpuFields(text: string): number[] | null {
  const line = text.split('\n', 1)[0] ?? '';
  const m = /^cpu\s+(.*)$/.exec(line);
  if (!m) return null;
  const f = m[1]!.trim().split(/\s+/).map(Number);
  if (f.length < 4 || f.some((x) => !Number.isFinite(x) || x < 0)) return null;
  return f;
}

/** Busy ticks of the `cpu` line of /proc/stat: every field but idle and iowait, steal included. */
export function parseProcStat(text: string): number | null {
  const f = cpuFields(text);
  if (!f) return null;
  // guest and guest_nice (fields 9, 10) are already counted in user and nice.
  const counted = f.slice(0, 8);
  const idle = (counted[3] ?? 0) + (counted[4] ?? 0);
  return counted.reduce((a, b) => a + b, 0) - idle;
}

/** Steal ticks of the `cpu` line of /proc/stat (its eighth field), or null where it has none. */
export function parseProcSteal(text: string): number | null {
  const f = cpuFields(text);
  return f && f.length >= 8 ? f[7]! : null;
}

/** utime + stime + cutime + cstime ticks of a /proc/PID/stat line. */
export function parseProcSelfStat(text: string): number | null {
  // The command name (field 2) is in parentheses and may hold spaces: fields start after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 1).trim().split(/\s+/);
  // After ")" come field 3 (state) onwards: utime is field 14, so index 11 here.
  const ticks = [f[11], f[12], f[13], f[14]].map(Number);
  if (ticks.some((x) => !Number.isFinite(x) || x < 0)) return null;
  return ticks.reduce((a, b) => a + b, 0);
}

/** A reading now, or null where /proc is not readable. `read` is the file reader (tests give a fake one). */
export function readCpu(read: (path: string) => string | null = readSmallFile): CpuReading | null {
  const host = read('/proc/stat');
  const self = read('/proc/self/stat');
  if (host === null || self === null) return null;
  const busy = parseProcStat(host);
  const own = parseProcSelfStat(self);
  if (busy === null || own === null) return null;
  const steal = parseProcSteal(host);
  return {
    atMs: performance.now(),
    hostBusyS: busy / CLOCK_TICKS,
    hostCpus: cpus().length,
    ownS: own / CLOCK_TICKS,
    loadavg1: loadavg()[0] ?? 0,
    ...(steal === null ? {} : { hostStealS: steal / CLOCK_TICKS }),
  };
}

/** The host load between two readings; null when the readings are unusable (no time passed). */
export function hostLoadBetween(start: CpuReading | null, end: CpuReading | null): HostLoad | null {
  if (!start || !end) return null;
  const wallS = (end.atMs - start.atMs) / 1000;
  if (!(wallS > 0)) return null;
  const busyCpus = Math.max(0, (end.hostBusyS - start.hostBusyS) / wallS);
  const ownCpus = Math.max(0, (end.ownS - start.ownS) / wallS);
  const otherCpus = Math.max(0, busyCpus - ownCpus);
  const r = (v: number) => Math.round(v * 100) / 100;
  const pctOf = (cpusUsed: number) => (end.hostCpus > 0 ? Math.round((cpusUsed / end.hostCpus) * 1000) / 10 : 0);
  // Steal is part of busy and never the run's own: at most what "other" holds.
  const stealCpus = start.hostStealS !== undefined && end.hostStealS !== undefined ? Math.min(otherCpus, Math.max(0, (end.hostStealS - start.hostStealS) / wallS)) : null;
  return {
    wallSeconds: r(wallS),
    hostCpus: end.hostCpus,
    busyCpus: r(busyCpus),
    ownCpus: r(ownCpus),
    otherCpus: r(otherCpus),
    otherPct: pctOf(otherCpus),
    loadavg1: { start: r(start.loadavg1), end: r(end.loadavg1) },
    ...(stealCpus === null ? {} : { stealCpus: r(stealCpus), stealPct: pctOf(stealCpus) }),
  };
}

/**
 * One line for the reports: `other processes used 1.02 of 2 CPUs (51 %; the hypervisor's steal
 * 12 %), the run 1.6; load average 0.4 → 2.1`.
 */
export function hostLoadText(h: HostLoad): string {
  const steal = h.stealPct !== undefined ? `; the hypervisor's steal ${h.stealPct} %` : '';
  return `other processes used ${h.otherCpus} of ${h.hostCpus} CPUs (${h.otherPct} %${steal}), the run ${h.ownCpus}; load average ${h.loadavg1.start} → ${h.loadavg1.end}`;
}

/** A host this busy with other work is named in baseline comparisons (baseline.ts). */
export const BUSY_HOST_PCT = 25;
