/**
 * The CPUs a local run could really use, for `environment.cpuSet` (assemble.ts): the machine's
 * CPU count says little when the run is pinned (`taskset -c 0`) or in a container with a CPU
 * quota, and figures measured on one core beside a busy loop are not those of two free cores.
 *
 * - `availableParallelism`: Node's `os.availableParallelism()`.
 * - `affinity`: the process's CPU affinity, `Cpus_allowed_list` of /proc/self/status (Linux), and
 *   `affinityCpus`, how many CPUs it lists. The runners and agents inherit it.
 * - `quotaCpus`: the cgroup CPU quota in CPUs (quota / period), the smallest along the process's
 *   cgroup path: cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`; absent when
 *   unlimited or unreadable. `quotaSource` names the file.
 * - `effectiveCpus`: the smallest of the three.
 *
 * Every file read is bounded (64 KiB) and every parse refuses what it does not recognise rather
 * than guessing; `readCpuSet` takes the file reader, so tests give it a fake /proc and /sys.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Environment } from '../api/schema.ts';

export type CpuSet = NonNullable<Environment['cpuSet']>;

const MAX_FILE_BYTES = 64 * 1024;
const MAX_CPU_ID = 1 << 20;
const MAX_RANGES = 4096;

/** The first 64 KiB of a file as text, or null when it cannot be read. */
export function readSmallFile(path: string): string | null {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(MAX_FILE_BYTES);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n >= buf.length) break;
    }
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** How many CPUs a list such as `0-3,8,10-11` names; null when it is not such a list. */
export function countCpuList(list: string): number | null {
  const t = list.trim();
  if (t === '' || t.length > 64 * 1024) return null;
  const parts = t.split(',');
  if (parts.length > MAX_RANGES) return null;
  const seen = new Set<number>();
  for (const p of parts) {
    const m = /^(\d{1,7})(?:-(\d{1,7}))?$/.exec(p);
    if (!m) return null;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b >= MAX_CPU_ID) return null;
    for (let c = a; c <= b; c++) seen.add(c);
  }
  return seen.size;
}

/** `Cpus_allowed_list` of a /proc/<pid>/status text, or null. */
export function affinityOf(status: string): string | null {
  const m = /^Cpus_allowed_list:[ \t]*(\S+)[ \t]*$/m.exec(status);
  return m && countCpuList(m[1]!) !== null ? m[1]! : null;
}

/** CPUs of a cgroup v2 `cpu.max` (`QUOTA PERIOD`, or `max PERIOD`): null when unlimited or malformed. */
export function cpuMaxCpus(text: string): number | null {
  const m = /^(max|\d{1,15})[ \t]+(\d{1,15})\s*$/.exec(text.trim());
  if (!m || m[1] === 'max') return null;
  const quota = Number(m[1]);
  const period = Number(m[2]);
  return quota > 0 && period > 0 ? quota / period : null;
}

/** CPUs of a cgroup v1 quota and period (`cpu.cfs_quota_us`, `-1` unlimited): null when unlimited or malformed. */
export function cfsCpus(quotaText: string, periodText: string): number | null {
  const q = quotaText.trim();
  const p = periodText.trim();
  if (!/^-?\d{1,15}$/.test(q) || !/^\d{1,15}$/.test(p)) return null;
  const quota = Number(q);
  const period = Number(p);
  return quota > 0 && period > 0 ? quota / period : null;
}

/** `/a/b/c` → [`/a/b/c`, `/a/b`, `/a`, ``]: a cgroup and its ancestors, the root last. */
function ancestry(path: string): string[] {
  const parts = path.split('/').filter(Boolean).slice(0, 64);
  const out: string[] = [];
  for (let i = parts.length; i >= 0; i--) out.push(i === 0 ? '' : `/${parts.slice(0, i).join('/')}`);
  return out;
}

interface Quota {
  cpus: number;
  source: string;
}

/** The smallest quota along the process's cgroup path (v2, then v1), or null. */
export function cgroupQuota(read: (path: string) => string | null, root = '/sys/fs/cgroup'): Quota | null {
  const cgroup = read('/proc/self/cgroup');
  if (cgroup === null) return null;
  let best: Quota | null = null;
  const consider = (cpus: number | null, source: string) => {
    if (cpus !== null && (best === null || cpus < best.cpus)) best = { cpus, source };
  };
  const lines = cgroup.split('\n').slice(0, 256);
  const v2 = lines.map((l) => /^0::(\/.*)$/.exec(l.trim())).find((m) => m !== null);
  if (v2) {
    // In a container with its own cgroup namespace the path is `/` and the mount is its cgroup.
    // Hybrid hosts mount the v2 hierarchy at `unified/`.
    for (const base of [root, `${root}/unified`]) {
      for (const dir of ancestry(v2[1]!)) {
        const file = `${base}${dir}/cpu.max`;
        const text = read(file);
        if (text !== null) consider(cpuMaxCpus(text), file);
      }
    }
  }
  for (const l of lines) {
    const m = /^\d+:([^:]*):(\/.*)$/.exec(l.trim());
    if (!m || !m[1]!.split(',').includes('cpu')) continue;
    for (const mount of new Set([`${root}/${m[1]}`, `${root}/cpu,cpuacct`, `${root}/cpu`])) {
      for (const dir of ancestry(m[2]!)) {
        const q = read(`${mount}${dir}/cpu.cfs_quota_us`);
        const p = q === null ? null : read(`${mount}${dir}/cpu.cfs_period_us`);
        if (q !== null && p !== null) consider(cfsCpus(q, p), `${mount}${dir}/cpu.cfs_quota_us`);
      }
    }
    break;
  }
  return best;
}

/**
 * The CPU set of this process. `read` reads a file (bounded) or answers null; `parallelism` is
 * Node's figure. Off Linux only `availableParallelism` is known.
 */
export function readCpuSet(read: (path: string) => string | null = readSmallFile, parallelism: number = availableParallelism()): CpuSet {
  const status = read('/proc/self/status');
  const affinity = status === null ? null : affinityOf(status);
  const affinityCpus = affinity === null ? null : countCpuList(affinity);
  const quota = cgroupQuota(read);
  const candidates = [parallelism, ...(affinityCpus !== null ? [affinityCpus] : []), ...(quota ? [quota.cpus] : [])];
  return {
    availableParallelism: parallelism,
    ...(affinity !== null && affinityCpus !== null ? { affinity, affinityCpus } : {}),
    ...(quota ? { quotaCpus: Math.round(quota.cpus * 1000) / 1000, quotaSource: quota.source } : {}),
    effectiveCpus: Math.round(Math.min(...candidates) * 1000) / 1000,
  };
}

/** One line for the reports: `CPU set 0-1 (2 CPUs), cgroup quota 1.5 CPUs: 1.5 effective CPUs`. */
export function cpuSetText(c: CpuSet): string {
  const parts = [
    c.affinity !== undefined ? `affinity ${c.affinity.length > 40 ? `${c.affinity.slice(0, 37)}...` : c.affinity} (${c.affinityCpus} CPU${c.affinityCpus === 1 ? '' : 's'})` : null,
    c.quotaCpus !== undefined ? `cgroup quota ${c.quotaCpus} CPUs` : null,
    `available parallelism ${c.availableParallelism}`,
  ].filter((x): x is string => x !== null);
  return `${c.effectiveCpus} effective CPU${c.effectiveCpus === 1 ? '' : 's'} (${parts.join(', ')})`;
}
