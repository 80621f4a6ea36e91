import { describe, expect, it } from 'vitest';
import { Membership, supersedes, type WireMember } from '../../src/agent/membership.ts';
import { mulberry32 } from '../../src/prng.ts';

function clock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const mk = (id: string, c = clock()): Membership =>
  new Membership({ selfId: id, selfUrl: `http://${id}`, failureTimeoutMs: 1000, tombstoneMs: 5000, now: c.now });

describe('supersedes (SWIM precedence)', () => {
  it('orders by incarnation, then dead > suspect > alive; left is final', () => {
    expect(supersedes({ status: 'alive', incarnation: 2 }, { status: 'dead', incarnation: 1 })).toBe(true);
    expect(supersedes({ status: 'alive', incarnation: 1 }, { status: 'suspect', incarnation: 1 })).toBe(false);
    expect(supersedes({ status: 'suspect', incarnation: 1 }, { status: 'alive', incarnation: 1 })).toBe(true);
    expect(supersedes({ status: 'dead', incarnation: 1 }, { status: 'suspect', incarnation: 1 })).toBe(true);
    expect(supersedes({ status: 'suspect', incarnation: 0 }, { status: 'alive', incarnation: 1 })).toBe(false);
    expect(supersedes({ status: 'left', incarnation: 0 }, { status: 'alive', incarnation: 5 })).toBe(true);
    expect(supersedes({ status: 'alive', incarnation: 9 }, { status: 'left', incarnation: 1 })).toBe(false);
  });
});

describe('Membership', () => {
  it('merges new members and reports the changes', () => {
    const m = mk('a');
    const ch = m.merge([['b', 'http://b', 0, 0], ['c', 'http://c', 0, 0]]);
    expect(ch.map((c) => c.id)).toEqual(['b', 'c']);
    expect(m.aliveIds()).toEqual(['a', 'b', 'c']);
    expect(m.merge([['b', 'http://b', 0, 0]])).toEqual([]);
  });

  it('ignores dead or left news about ids it never knew (purged tombstones stay purged)', () => {
    const m = mk('a');
    expect(m.merge([['x', 'http://x', 3, 2], ['y', 'http://y', 0, 3]])).toEqual([]);
    expect(m.get('x')).toBeUndefined();
  });

  it('refutes a suspicion about itself with a higher incarnation', () => {
    const m = mk('a');
    const ch = m.merge([['a', 'http://a', 0, 1]]);
    expect(ch).toHaveLength(1);
    expect(m.incarnation).toBe(1);
    expect(m.selfStatus).toBe('alive');
    // The refutation wins over the suspicion elsewhere.
    const other = mk('b');
    other.merge([['a', 'http://a', 0, 0]]);
    other.reportFailure('a');
    expect(other.get('a')!.status).toBe('suspect');
    other.merge([m.selfWire()]);
    expect(other.get('a')).toMatchObject({ status: 'alive', incarnation: 1 });
  });

  it('turns a suspect nobody heard from into dead after the failure timeout, not before', () => {
    const c = clock();
    const m = mk('a', c);
    m.merge([['b', 'http://b', 0, 0]]);
    m.reportFailure('b');
    c.advance(999);
    expect(m.tick()).toEqual([]);
    expect(m.get('b')!.status).toBe('suspect');
    c.advance(1);
    expect(m.tick().map((x) => x.status)).toEqual(['dead']);
    expect(m.aliveCount()).toBe(1);
  });

  it('does not bury a suspect that keeps talking to us', () => {
    const c = clock();
    const m = mk('a', c);
    m.merge([['b', 'http://b', 0, 0]]);
    m.reportFailure('b');
    c.advance(800);
    m.observe('b');
    c.advance(800);
    expect(m.tick()).toEqual([]);
    c.advance(200);
    expect(m.tick().map((x) => x.status)).toEqual(['dead']);
  });

  it('purges tombstones after tombstoneMs', () => {
    const c = clock();
    const m = mk('a', c);
    m.merge([['b', 'http://b', 0, 0]]);
    m.merge([['b', 'http://b', 1, 3]]);
    expect(m.get('b')!.status).toBe('left');
    c.advance(5000);
    m.tick();
    expect(m.get('b')).toBeUndefined();
  });

  it('digests agree exactly when the tables agree, and bucket diffs carry the missing entries', () => {
    const a = mk('a');
    const b = mk('b');
    const others: WireMember[] = Array.from({ length: 40 }, (_, i) => [`n${i}`, `http://n${i}`, 0, 0]);
    a.merge([...others, b.selfWire()]);
    b.merge([a.selfWire(), ...others.slice(0, 30)]);
    expect(a.digest()).not.toBe(b.digest());
    // One push-pull exchange as gossip.ts does it.
    const diff = b.diffBuckets(a.digest());
    expect(diff.length).toBeGreaterThan(0);
    expect(diff.length).toBeLessThan(16);
    a.merge(b.entriesInBuckets(diff));
    b.merge(a.entriesInBuckets(diff));
    expect(a.digest()).toBe(b.digest());
    expect(b.aliveCount()).toBe(42);
  });

  it('gossip converges a cluster of 50 from a star in O(log N) rounds', () => {
    const n = 50;
    const nodes = Array.from({ length: n }, (_, i) => mk(`m${i}`));
    // Everyone joined through m0 (m0 knows all; each knows m0 and itself).
    for (const x of nodes.slice(1)) {
      nodes[0]!.merge([x.selfWire()]);
      x.merge(nodes[0]!.all());
    }
    const rand = mulberry32(42);
    let rounds = 0;
    const byId = new Map(nodes.map((x) => [x.selfId, x]));
    while (!nodes.every((x) => x.aliveCount() === n) && rounds < 50) {
      rounds++;
      for (const x of nodes) {
        for (const t of x.nextTargets(3, rand)) {
          const y = byId.get(t)!;
          const diff = y.diffBuckets(x.digest());
          x.merge(y.entriesInBuckets(diff));
          y.merge(x.entriesInBuckets(diff));
        }
      }
    }
    expect(rounds).toBeLessThanOrEqual(8);
  });

  it('nextTargets visits every reachable member before repeating (round robin)', () => {
    const m = mk('a');
    m.merge(Array.from({ length: 9 }, (_, i): WireMember => [`p${i}`, `http://p${i}`, 0, 0]));
    const rand = mulberry32(7);
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) for (const t of m.nextTargets(3, rand)) seen.add(t);
    expect(seen.size).toBe(9);
    expect(seen.has('a')).toBe(false);
  });
});
