/**
 * environment.hostLoad: the parsers of /proc/stat and /proc/self/stat, the arithmetic between two
 * readings, and a real reading on this machine that sees a busy child process as the run's own
 * CPU (it was waited for) and sees nothing of it as "other".
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { hostLoadBetween, hostLoadText, parseProcSelfStat, parseProcStat, parseProcSteal, readCpu, type CpuReading } from '../../src/report/hostload.ts';

describe('host load', () => {
  it('parses the cpu line of /proc/stat: busy = all but idle and iowait, guest not counted twice', () => {
    // user nice system idle iowait irq softirq steal guest guest_nice
    expect(parseProcStat('cpu  100 5 50 1000 20 3 2 0 40 0\ncpu0 1 2 3 4\n')).toBe(160);
    expect(parseProcStat('intr 1 2 3\n')).toBeNull();
    expect(parseProcStat('cpu  1 2 x 4\n')).toBeNull();
  });

  it('reads steal, the eighth field of the cpu line, and nothing where the line is shorter', () => {
    expect(parseProcSteal('cpu  100 5 50 1000 20 3 2 7 40 0\n')).toBe(7);
    expect(parseProcSteal('cpu  100 5 50 1000 20 3 2\n')).toBeNull();
    expect(parseProcSteal('intr 1 2 3\n')).toBeNull();
  });

  it('gives the hypervisor\'s steal apart, as part of what others used and never more than it', () => {
    const at = (atMs: number, hostBusyS: number, ownS: number, hostStealS: number): CpuReading => ({ atMs, hostBusyS, hostCpus: 2, ownS, loadavg1: 1, hostStealS });
    const h = hostLoadBetween(at(0, 100, 10, 50), at(10_000, 120, 25, 53))!;
    expect(h).toMatchObject({ otherCpus: 0.5, otherPct: 25, stealCpus: 0.3, stealPct: 15 });
    expect(hostLoadText(h)).toBe("other processes used 0.5 of 2 CPUs (25 %; the hypervisor's steal 15 %), the run 1.5; load average 1 → 1");
    // Steal counted while the run's own ticks rounded up past busy: at most "other".
    expect(hostLoadBetween(at(0, 0, 0, 0), at(1000, 1, 1.01, 0.2))).toMatchObject({ otherCpus: 0, stealCpus: 0 });
    // A reading without the field (an old kernel): no steal figure.
    const { hostStealS: _none, ...noSteal } = at(0, 0, 0, 0);
    expect(hostLoadBetween(noSteal, at(1000, 1, 0.5, 0))).not.toHaveProperty('stealCpus');
  });

  it('parses utime+stime+cutime+cstime of /proc/self/stat, a command name with spaces and parentheses included', () => {
    const line = '4242 (node (x) y) S 1 4242 4242 0 -1 4194304 500 0 0 0 120 30 400 50 20 0 11 0 100 1000 200';
    expect(parseProcSelfStat(line)).toBe(600);
    expect(parseProcSelfStat('no parenthesis here')).toBeNull();
  });

  it('relates CPU time to wall time, and never reports negative "other" use', () => {
    const at = (atMs: number, hostBusyS: number, ownS: number, loadavg1: number): CpuReading => ({ atMs, hostBusyS, hostCpus: 2, ownS, loadavg1 });
    const h = hostLoadBetween(at(0, 100, 10, 0.5), at(10_000, 120, 25, 2.1))!;
    expect(h).toEqual({ wallSeconds: 10, hostCpus: 2, busyCpus: 2, ownCpus: 1.5, otherCpus: 0.5, otherPct: 25, loadavg1: { start: 0.5, end: 2.1 } });
    expect(hostLoadText(h)).toBe('other processes used 0.5 of 2 CPUs (25 %), the run 1.5; load average 0.5 → 2.1');
    // Tick rounding can make the run's own use exceed the host's busy time by a hair: other is 0, not negative.
    expect(hostLoadBetween(at(0, 0, 0, 0), at(1000, 1, 1.01, 0))!.otherCpus).toBe(0);
    expect(hostLoadBetween(at(0, 0, 0, 0), at(0, 1, 1, 0))).toBeNull();
    expect(hostLoadBetween(null, at(0, 1, 1, 0))).toBeNull();
  });

  it('a real reading counts a reaped busy child as the run\'s own CPU', () => {
    const start = readCpu();
    expect(start).not.toBeNull();
    // About 0.5 s of CPU in a child process that this process waits for.
    const child = spawnSync(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 500);']);
    expect(child.status).toBe(0);
    const end = readCpu()!;
    const h = hostLoadBetween(start, end)!;
    expect(end.ownS - start!.ownS).toBeGreaterThan(0.3);
    expect(h.ownCpus).toBeGreaterThan(0.3);
    expect(h.busyCpus).toBeGreaterThanOrEqual(h.otherCpus);
  });
});
