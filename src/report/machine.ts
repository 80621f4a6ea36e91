/**
 * The machine a process runs on, as that process sees it: the one place that reads it, used for a
 * local run's `environment` (assemble.ts `environmentOf`) and by every runner for its step's
 * `environment` (src/runner/step.ts), so that a result assembled in a cluster describes the
 * runner nodes and never the operator's own process.
 *
 * - `nodeName`: the Kubernetes node (the runner's `NODE_NAME`, given by the caller) or, without
 *   one, the hostname; `hostname`: the process's own (the pod's name in a cluster).
 * - `memoryBytes`: os.totalmem (in a container that is the node's); `memoryLimitBytes`: the
 *   smallest cgroup memory limit along the process's cgroup path (v2 `memory.max`, v1
 *   `memory.limit_in_bytes`), absent when unlimited or unreadable. Files are read bounded
 *   (cpuset.ts `readSmallFile`, 64 KiB) and a value that is not a plain byte count is ignored.
 * - `cpuSet`: cpuset.ts `readCpuSet` (affinity, cgroup CPU quota).
 */
import { arch, cpus, hostname, platform, release, totalmem } from 'node:os';
import type { Environment, RunnerEnvironment } from '../api/schema.ts';
import { readCpuSet, readSmallFile } from './cpuset.ts';
import { num } from './format.ts';

type Read = (path: string) => string | null;

/** A v1 "no limit" is a page-rounded 2^63-1; anything from 2^60 bytes on means unlimited. */
const UNLIMITED_FROM = 2 ** 60;

/** This process's machine. `nodeName`: the Kubernetes node where known. */
export function thisMachine(nodeName?: string, read: Read = readSmallFile): RunnerEnvironment {
  const host = hostname();
  const list = cpus();
  const limit = cgroupMemoryLimit(read);
  return {
    nodeName: nodeName || host,
    hostname: host,
    node: process.version,
    os: `${platform()} ${release()}`,
    arch: arch(),
    cpus: list.length,
    cpuModel: list[0]?.model.trim() || 'unknown',
    memoryBytes: totalmem(),
    ...(limit !== null ? { memoryLimitBytes: limit } : {}),
    cpuSet: readCpuSet(read),
  };
}

/** A memory limit file's byte count, or null for `max`, an "unlimited" figure or anything else. */
export function memoryLimitOf(text: string): number | null {
  const t = text.trim();
  if (!/^\d{1,20}$/.test(t)) return null;
  const n = Number(t);
  return n > 0 && n < UNLIMITED_FROM ? n : null;
}

/** The smallest cgroup memory limit along the process's cgroup path (v2, then v1), or null. */
export function cgroupMemoryLimit(read: Read, root = '/sys/fs/cgroup'): number | null {
  const cgroup = read('/proc/self/cgroup');
  if (cgroup === null) return null;
  let best: number | null = null;
  const consider = (text: string | null) => {
    const n = text === null ? null : memoryLimitOf(text);
    if (n !== null && (best === null || n < best)) best = n;
  };
  const lines = cgroup.split('\n').slice(0, 256).map((l) => l.trim());
  for (const l of lines) {
    const v2 = /^0::(\/.*)$/.exec(l);
    if (v2) for (const dir of ancestry(v2[1]!)) consider(read(`${root}${dir}/memory.max`));
    const v1 = /^\d+:([^:]*):(\/.*)$/.exec(l);
    if (v1 && v1[1]!.split(',').includes('memory')) {
      for (const dir of ancestry(v1[2]!)) consider(read(`${root}/memory${dir}/memory.limit_in_bytes`));
    }
  }
  return best;
}

/** `/a/b` → [`/a/b`, `/a`, ``]: a cgroup and its ancestors (at most 64 deep), the root last. */
function ancestry(path: string): string[] {
  const parts = path.split('/').filter(Boolean).slice(0, 64);
  const out: string[] = [];
  for (let i = parts.length; i >= 0; i--) out.push(i === 0 ? '' : `/${parts.slice(0, i).join('/')}`);
  return out;
}

/**
 * One runner environment of a cluster run for the reports, figures first (the terminal cuts the
 * end): "node-a: 8 × Xeon, 31 GiB, limit 2 GiB, 2 effective CPUs, Node v24.1.0, linux 6.8 x64;
 * steps stress, gpu". `short` (the terminal's one line) leaves out the Node version and the OS.
 */
export function runnerText(r: NonNullable<Environment['runners']>[number], short = false): string {
  const gib = (b: number) => `${num(Math.round((b / 2 ** 30) * 10) / 10)} GiB`;
  return (
    `${r.nodeName}: ${r.cpus} × ${r.cpuModel}, ${gib(r.memoryBytes)}` +
    (r.memoryLimitBytes !== undefined ? `, limit ${gib(r.memoryLimitBytes)}` : '') +
    (r.cpuSet ? `, ${r.cpuSet.effectiveCpus} effective CPU${r.cpuSet.effectiveCpus === 1 ? '' : 's'}` : '') +
    (short ? '' : `, Node ${r.node}, ${r.os} ${r.arch}`) +
    `; step${r.steps.length === 1 ? '' : 's'} ${r.steps.join(', ')}`
  );
}
