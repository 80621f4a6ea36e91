/**
 * The memory of a whole process tree, sampled from /proc (Linux): a process and every process
 * descended from it (found through the ppid links of /proc/<pid>/stat), their VmRSS summed every
 * `intervalMs`. bench/embedded.ts uses it for `swarmbench run`, whose runner processes start the
 * agent host processes.
 *
 * - A descendant seen once is followed until it exits, even when its parent exits first and it is
 *   re-parented (to init or a subreaper); its identity is the pid with the start time of
 *   /proc/<pid>/stat (field 22), so a reused pid is never counted for it.
 * - The sum counts pages shared between processes (the node binary's text, shared libraries) once
 *   per process, as RSS does: it is an upper bound of the tree's resident memory, never less.
 * - The root's own peak is its VmHWM (the kernel's high-water mark of its RSS), as last read before
 *   it exited: the root's maxRSS up to the last sample.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface TreePeak {
  /** The largest sum of VmRSS over the tree at one sample, in bytes. */
  peakRssBytes: number;
  /** Processes in the tree at that sample. */
  procsAtPeak: number;
  /** The most processes in the tree at one sample. */
  peakProcs: number;
  /** The root's VmHWM as last read (bytes), or null when it was never read. */
  rootHwmBytes: number | null;
  /** Samples taken. */
  samples: number;
  /** Distinct processes seen in the tree over the whole watch. */
  seen: number;
  /** Milliseconds spent sampling, all samples together (the watcher's own cost, in this process). */
  sampleMs: number;
}

interface Stat {
  ppid: number;
  start: string;
}

/** ppid and start time of a process, or undefined when it is gone or unreadable. */
function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: the fields that follow start after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(rest[1]);
  const start = rest[19];
  return Number.isInteger(ppid) && start !== undefined ? { ppid, start } : undefined;
}

/** VmRSS and VmHWM of a process in bytes (0 for a zombie or kernel thread), or undefined when gone. */
function readMem(pid: number): { rss: number; hwm: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

function allPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0) out.push(pid);
  }
  return out;
}

/** Whether /proc can be read here (Linux): without it there is nothing to watch. */
export function procAvailable(): boolean {
  try {
    return readStat(process.pid) !== undefined && readMem(process.pid) !== undefined;
  } catch {
    return false;
  }
}

export interface TreeWatch {
  /** Takes a last sample, stops, and returns the peaks. */
  stop(): TreePeak;
  /** The processes of the tree alive now (pids), the root included when alive. */
  alive(): number[];
}

/** Starts sampling the tree of `rootPid` now and every `intervalMs`. */
export function watchTree(rootPid: number, intervalMs = 200): TreeWatch {
  const known = new Map<number, string>(); // pid -> start time
  const peak: TreePeak = { peakRssBytes: 0, procsAtPeak: 0, peakProcs: 0, rootHwmBytes: null, samples: 0, seen: 0, sampleMs: 0 };

  const members = (): number[] => {
    const stats = new Map<number, Stat>();
    const children = new Map<number, number[]>();
    for (const pid of allPids()) {
      const s = readStat(pid);
      if (!s) continue;
      stats.set(pid, s);
      const list = children.get(s.ppid);
      if (list) list.push(pid);
      else children.set(s.ppid, [pid]);
    }
    const inTree = new Set<number>();
    // The descendants of the root now, and of every known member (a re-parented one keeps its own).
    const queue: number[] = [];
    if (stats.has(rootPid)) queue.push(rootPid);
    for (const [pid, start] of known) {
      if (stats.get(pid)?.start === start) queue.push(pid);
      else known.delete(pid);
    }
    while (queue.length) {
      const pid = queue.pop()!;
      if (inTree.has(pid)) continue;
      inTree.add(pid);
      const s = stats.get(pid);
      if (s && !known.has(pid)) known.set(pid, s.start);
      for (const c of children.get(pid) ?? []) queue.push(c);
    }
    return [...inTree];
  };

  const sample = (): void => {
    const pids = members();
    let rss = 0;
    let procs = 0;
    for (const pid of pids) {
      const m = readMem(pid);
      if (!m) continue;
      rss += m.rss;
      procs++;
      // A zombie has no VmHWM line (0): the high-water mark only grows, so keep the largest read.
      if (pid === rootPid && m.hwm > 0) peak.rootHwmBytes = Math.max(peak.rootHwmBytes ?? 0, m.hwm);
    }
    peak.samples++;
    if (rss > peak.peakRssBytes) {
      peak.peakRssBytes = rss;
      peak.procsAtPeak = procs;
    }
    peak.peakProcs = Math.max(peak.peakProcs, procs);
  };

  let seenTotal = 0;
  const everSeen = new Set<string>();
  const tick = (): void => {
    const t0 = performance.now();
    sample();
    for (const [pid, start] of known) everSeen.add(`${pid}/${start}`);
    seenTotal = everSeen.size;
    peak.sampleMs += performance.now() - t0;
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  let stopped = false;
  return {
    stop(): TreePeak {
      if (!stopped) {
        stopped = true;
        clearInterval(timer);
        tick();
      }
      return { ...peak, seen: seenTotal };
    },
    alive: () => members(),
  };
}
