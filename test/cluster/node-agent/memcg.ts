/**
 * Memory limits of the test node agent's containers, enforced by the kernel as a kubelet's runtime
 * does: each container whose `resources.limits.memory` is set runs in its own cgroup-v1 memory
 * group under the node agent's own (`memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes`
 * where swap accounting exists, so the container cannot swap instead), entered before the
 * container's program starts (a `sh` that writes its pid into `cgroup.procs`, then `exec`s it).
 * When the kernel's OOM killer ends it (`oom_kill` in `memory.oom_control` above 0), the container
 * terminates with reason `OOMKilled`, exit code 137, as containerd reports it.
 *
 * Where no writable cgroup-v1 memory hierarchy exists (cgroup v2 only, not root) the limits are
 * not enforced and the node agent says so once in its log; nothing else changes.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let root: string | null | undefined;

/** The node agent's own memory cgroup, with a `swarmbench-pods` group made under it; null where unusable. */
export function memoryCgroupRoot(log: (msg: string) => void): string | null {
  if (root !== undefined) return root;
  root = null;
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
    const base = '/sys/fs/cgroup/memory';
    if (line && existsSync(join(base, 'memory.limit_in_bytes'))) {
      const own = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
      const dir = join(base, own, 'swarmbench-pods');
      mkdirSync(dir, { recursive: true });
      root = dir;
    }
  } catch {
    root = null;
  }
  if (!root) log('memory limits are not enforced: no writable cgroup-v1 memory hierarchy');
  return root;
}

/** A container's memory group: made with its limit; `procs` is the file its process writes its pid into. */
export interface MemoryGroup {
  dir: string;
  procs: string;
  limitBytes: number;
}

export function createMemoryGroup(rootDir: string, name: string, limitBytes: number): MemoryGroup {
  const dir = join(rootDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  // Without this the container would swap past its limit where swap exists (the kubelet runs without swap).
  const memsw = join(dir, 'memory.memsw.limit_in_bytes');
  if (existsSync(memsw)) writeFileSync(memsw, String(limitBytes));
  return { dir, procs: join(dir, 'cgroup.procs'), limitBytes };
}

/** How many processes of the group the kernel's OOM killer ended. */
export function oomKills(g: MemoryGroup): number {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(g.dir, 'memory.oom_control'), 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Removes the (empty) group; retried a few times while the kernel still holds the exited process. */
export function removeMemoryGroup(g: MemoryGroup, tries = 20): void {
  try {
    rmdirSync(g.dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || tries <= 0) return;
    setTimeout(() => removeMemoryGroup(g, tries - 1), 100).unref();
  }
}
