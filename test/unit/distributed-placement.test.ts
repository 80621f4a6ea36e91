/**
 * The pure parts of the distributed-coordination tests: 1.5's chance yardsticks and batches,
 * 1.3's pairs, 1.6's recovery conditions.
 */
import { describe, expect, it } from 'vitest';
import type { MembersResult, MemberStatus } from '../../src/agent/types.ts';
import { CHANCE_PASS_SHARE, PER_AGENT, planBatch } from '../../src/bench/distributed/balance.ts';
import { recoveryState, removedIn } from '../../src/bench/distributed/failover.ts';
import { pingPairs } from '../../src/bench/distributed/latency.ts';
import { ownRunMard, randomMardExpected, randomPlacement } from '../../src/bench/distributed/placement.ts';
import { DEFAULT_TARGETS } from '../../src/plan/catalogue.ts';
import { mulberry32 } from '../../src/prng.ts';

describe('1.5 chance yardsticks', () => {
  it('the exact expectation of random placement matches hand-computed cases', () => {
    // 2 tasks on 2 agents: counts (2,0),(1,1),(1,1),(0,2): MARD 1, 0, 0, 1 -> mean 0.5.
    expect(randomMardExpected(2, 2)).toBeCloseTo(0.5, 12);
    // One agent: always perfectly even.
    expect(randomMardExpected(10, 1)).toBe(0);
    // 1 task on 4 agents: counts (1,0,0,0): MARD = (0.75 + 3 * 0.25) / 4 / 0.25 = 1.5.
    expect(randomMardExpected(1, 4)).toBeCloseTo(1.5, 12);
    expect(() => randomMardExpected(0, 4)).toThrow(/positive integers/);
  });

  it('the Monte-Carlo mean agrees with the exact expectation, and is deterministic', () => {
    const batches = [new Array<number>(32).fill(1), new Array<number>(32).fill(1)];
    const a = randomPlacement(batches, 8, 0.15, 4000, 42);
    const b = randomPlacement(batches, 8, 0.15, 4000, 42);
    expect(a).toEqual(b);
    expect(a.mean).toBeCloseTo(randomMardExpected(32, 8), 2);
  });

  it('the quick counts (4 tasks per agent, 3 batches of 8 agents) cannot pass by chance', () => {
    const m = PER_AGENT * 8;
    const exact = randomMardExpected(m, 8);
    expect(exact).toBeGreaterThan(2 * DEFAULT_TARGETS.loadBalanceDeviation);
    const r = randomPlacement([1, 2, 3].map(() => new Array<number>(m).fill(1)), 8, DEFAULT_TARGETS.loadBalanceDeviation, 2000, 7);
    expect(r.passShare).toBeLessThan(CHANCE_PASS_SHARE / 10);
    // The old design's counts (400 tasks on 8 agents) passed by chance most of the time.
    const old = randomPlacement([new Array<number>(400).fill(1)], 8, DEFAULT_TARGETS.loadBalanceDeviation, 2000, 7);
    expect(old.passShare).toBeGreaterThan(0.5);
  });

  it('each coordinator running its own: two coordinators of eight agents score 1.5', () => {
    expect(ownRunMard([16, 16], 8)).toBeCloseTo(1.5, 12);
    expect(ownRunMard([32], 8)).toBeCloseTo(1.75, 12);
  });

  it('a batch holds 1 CPU task in 4, I/O first, and is the same for the same seed', () => {
    const a = planBatch(32, 'p', mulberry32(1));
    expect(planBatch(32, 'p', mulberry32(1))).toEqual(a);
    expect(a.filter((t) => t.kind === 'cpu')).toHaveLength(8);
    const firstCpu = a.findIndex((t) => t.kind === 'cpu');
    expect(a.slice(firstCpu).every((t) => t.kind === 'cpu')).toBe(true);
    expect(new Set(a.map((t) => t.id)).size).toBe(32);
    expect(new Set(a.filter((t) => t.kind === 'io').map((t) => t.ioMs)).size).toBe(3);
  });
});

describe('1.3 pairs', () => {
  const agents = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `a${i}`, url: `http://x${i}`, pid: 1, node: `proc-${i % 2}` }));
  it('each agent with its successor and the agent half-way round, no pair twice', () => {
    expect(pingPairs(agents(8))).toHaveLength(16);
    expect(pingPairs(agents(2)).map(([a, b]) => `${a.id}>${b.id}`)).toEqual(['a0>a1', 'a1>a0']);
    expect(pingPairs(agents(1))).toEqual([]);
  });
});

describe('1.6 recovery conditions', () => {
  const view = (self: string, members: [string, MemberStatus][]): MembersResult => ({
    self,
    members: members.map(([id, status]) => ({ id, url: `http://${id}`, status, incarnation: 0, lastSeenMs: 0 })),
    alive: members.filter(([, s]) => s === 'alive').length,
  });
  const handle = (id: string) => ({ id, url: `http://${id}`, pid: 1, node: id });

  it('a suspected agent is not removed; dead, left or gone is', () => {
    expect(removedIn(view('a', [['v', 'suspect']]), 'v')).toBe(false);
    expect(removedIn(view('a', [['v', 'alive']]), 'v')).toBe(false);
    expect(removedIn(view('a', [['v', 'dead']]), 'v')).toBe(true);
    expect(removedIn(view('a', [['v', 'left']]), 'v')).toBe(true);
    expect(removedIn(view('a', []), 'v')).toBe(true);
    expect(removedIn(undefined, 'v')).toBe(false);
  });

  it('recovered only with the kill confirmed everywhere and the replacement in every view', () => {
    const now = [handle('a'), handle('r')];
    const both = (va: [string, MemberStatus][], vr: [string, MemberStatus][]) => [view('a', va), view('r', vr)];
    const s1 = recoveryState(now, both([['a', 'alive'], ['v', 'suspect'], ['r', 'alive']], [['r', 'alive'], ['a', 'alive']]), 'v', 2);
    expect(s1).toMatchObject({ notConfirmed: 1, replaced: true, viewsAgree: true });
    const s2 = recoveryState(now, both([['a', 'alive'], ['v', 'dead'], ['r', 'alive']], [['r', 'alive'], ['a', 'alive']]), 'v', 2);
    expect(s2).toMatchObject({ notConfirmed: 0, replaced: true, viewsAgree: true });
    const s3 = recoveryState([handle('a')], [view('a', [['a', 'alive'], ['v', 'dead']])], 'v', 2);
    expect(s3).toMatchObject({ notConfirmed: 0, replaced: false });
  });
});
