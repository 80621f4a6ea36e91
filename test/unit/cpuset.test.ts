/**
 * The CPU-set reader (report/cpuset.ts): the affinity list, cgroup v2 and v1 quotas along the
 * cgroup path, the effective figure, and refusals of what it does not recognise. The reader is
 * given fake /proc and /sys files; one case reads this machine.
 */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { affinityOf, cfsCpus, cgroupQuota, countCpuList, cpuMaxCpus, cpuSetText, readCpuSet, readSmallFile } from '../../src/report/cpuset.ts';

const fakeFs = (files: Record<string, string>) => (path: string) => files[path] ?? null;
const STATUS = (list: string) => `Name:\tnode\nCpus_allowed:\tff\nCpus_allowed_list:\t${list}\nMems_allowed_list:\t0\n`;

describe('the CPU list', () => {
  it.each([
    ['0', 1],
    ['0-1', 2],
    ['0-3,8-11', 8],
    ['0,2,4', 3],
    ['1-1', 1],
    ['0-3,2-5', 6],
  ])('%s is %i CPUs', (list, n) => expect(countCpuList(list)).toBe(n));

  it.each(['', 'a', '0-', '3-1', '0,,1', '-1', '0-99999999', '0 1'])('refuses %j', (list) => expect(countCpuList(list)).toBeNull());

  it('refuses a list with too many ranges rather than counting it', () => {
    expect(countCpuList(Array.from({ length: 5000 }, (_, i) => String(i)).join(','))).toBeNull();
  });

  it('reads Cpus_allowed_list from a status text, and nothing from a malformed one', () => {
    expect(affinityOf(STATUS('0-1'))).toBe('0-1');
    expect(affinityOf(STATUS('0-3,6'))).toBe('0-3,6');
    expect(affinityOf('Name:\tnode\n')).toBeNull();
    expect(affinityOf(STATUS('zz'))).toBeNull();
  });
});

describe('cgroup quotas', () => {
  it('cpu.max (v2) and cfs quota/period (v1) in CPUs; unlimited and malformed are null', () => {
    expect(cpuMaxCpus('150000 100000\n')).toBe(1.5);
    expect(cpuMaxCpus('max 100000\n')).toBeNull();
    expect(cpuMaxCpus('1 2 3')).toBeNull();
    expect(cpuMaxCpus('0 100000')).toBeNull();
    expect(cfsCpus('50000\n', '100000\n')).toBe(0.5);
    expect(cfsCpus('-1\n', '100000\n')).toBeNull();
    expect(cfsCpus('x', '100000')).toBeNull();
  });

  it('v2: the smallest quota along the path, a parent limit included', () => {
    const read = fakeFs({
      '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
      '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/cpu.max': '200000 100000\n',
      '/sys/fs/cgroup/kubepods/cpu.max': '400000 100000\n',
    });
    expect(cgroupQuota(read)).toEqual({ cpus: 2, source: '/sys/fs/cgroup/kubepods/pod1/cpu.max' });
  });

  it('v2 in a container namespace (path /): the mount root', () => {
    const read = fakeFs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '100000 100000\n' });
    expect(cgroupQuota(read)).toEqual({ cpus: 1, source: '/sys/fs/cgroup/cpu.max' });
  });

  it('v1 (and a hybrid host): cpu,cpuacct quota; unlimited is none', () => {
    const v1 = fakeFs({
      '/proc/self/cgroup': '4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/\n',
      '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '150000\n',
      '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
    });
    expect(cgroupQuota(v1)).toEqual({ cpus: 1.5, source: '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us' });
    const unlimited = fakeFs({
      '/proc/self/cgroup': '1:cpu:/\n0::/\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
    });
    expect(cgroupQuota(unlimited)).toBeNull();
  });

  it('nothing readable: no quota', () => {
    expect(cgroupQuota(fakeFs({}))).toBeNull();
    expect(cgroupQuota(fakeFs({ '/proc/self/cgroup': 'garbage\n' }))).toBeNull();
  });
});

describe('readCpuSet', () => {
  it('pinned to one CPU under a 0.5 CPU quota: effective 0.5, every figure recorded', () => {
    const read = fakeFs({
      '/proc/self/status': STATUS('1'),
      '/proc/self/cgroup': '0::/bench\n',
      '/sys/fs/cgroup/bench/cpu.max': '50000 100000\n',
    });
    const c = readCpuSet(read, 1);
    expect(c).toEqual({ availableParallelism: 1, affinity: '1', affinityCpus: 1, quotaCpus: 0.5, quotaSource: '/sys/fs/cgroup/bench/cpu.max', effectiveCpus: 0.5 });
    expect(cpuSetText(c)).toBe('0.5 effective CPUs (affinity 1 (1 CPU), cgroup quota 0.5 CPUs, available parallelism 1)');
  });

  it('off Linux (no /proc): only availableParallelism', () => {
    expect(readCpuSet(fakeFs({}), 8)).toEqual({ availableParallelism: 8, effectiveCpus: 8 });
  });

  it('this machine: Node\'s figure, and on Linux the affinity that bounds it', () => {
    const c = readCpuSet();
    expect(c.availableParallelism).toBe(availableParallelism());
    expect(c.effectiveCpus).toBeLessThanOrEqual(c.availableParallelism);
    if (process.platform === 'linux') {
      expect(c.affinityCpus).toBeGreaterThanOrEqual(1);
      expect(c.effectiveCpus).toBeLessThanOrEqual(c.affinityCpus!);
    }
  });

  it('reads at most 64 KiB of a file, and null for a missing one', () => {
    expect(readSmallFile('/nonexistent/swarmbench')).toBeNull();
    if (process.platform === 'linux') expect(readSmallFile('/dev/zero')!.length).toBe(64 * 1024);
  });
});
