import { describe, expect, it } from 'vitest';
import { Membership, supersedes, type WireMember } from '../../src/agent/membership.ts';
import { mulberry32 } from '../../src/prng.ts';

function clock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const mk = (id: string, c = clock()): Membership =>
  new Membership({ selfId: id, selfUrl: `http://${id}:7000`, failureTimeoutMs: 1000, tombstoneMs: 5000, now: c.now });

describe('supersedes (SWIM precedence)', () => {
  it('orders by incarnation, then left > dead > suspect > alive', () => {
    expect(supersedes({ status: 'alive', incarnation: 2 }, { status: 'dead', incarnation: 1 })).toBe(true);
    expect(supersedes({ status: 'alive', incarnation: 1 }, { status: 'suspect', incarnation: 1 })).toBe(false);
    expect(supersedes({ status: 'suspect', incarnation: 1 }, { status: 'alive', incarnation: 1 })).toBe(true);
    expect(supersedes({ status: 'dead', incarnation: 1 }, { status: 'suspect', incarnation: 1 })).toBe(true);
    expect(supersedes({ status: 'suspect', incarnation: 0 }, { status: 'alive', incarnation: 1 })).toBe(false);
    expect(supersedes({ status: 'left', incarnation: 1 }, { status: 'dead', incarnation: 1 })).toBe(true);
    // A `left` no longer wins over every incarnation (issue 12): a higher one refutes it.
    expect(supersedes({ status: 'left', incarnation: 0 }, { status: 'alive', incarnation: 5 })).toBe(false);
    expect(supersedes({ status: 'alive', incarnation: 9 }, { status: 'left', incarnation: 1 })).toBe(true);
  });
});

describe('Membership', () => {
  it('merges new members and reports the changes', () => {
    const m = mk('a');
    const ch = m.merge([['b', 'http://b:7000', 0, 0], ['c', 'http://c:7000', 0, 0]]);
    expect(ch.map((c) => c.id)).toEqual(['b', 'c']);
    expect(m.aliveIds()).toEqual(['a', 'b', 'c']);
    expect(m.merge([['b', 'http://b:7000', 0, 0]])).toEqual([]);
  });

  it('ignores dead or left news about ids it never knew (purged tombstones stay purged)', () => {
    const m = mk('a');
    expect(m.merge([['x', 'http://x:7000', 3, 2], ['y', 'http://y:7000', 0, 3]])).toEqual([]);
    expect(m.get('x')).toBeUndefined();
  });

  it('refutes a suspicion about itself with a higher incarnation', () => {
    const m = mk('a');
    const ch = m.merge([['a', 'http://a:7000', 0, 1]]);
    expect(ch).toHaveLength(1);
    expect(m.incarnation).toBe(1);
    expect(m.selfStatus).toBe('alive');
    // The refutation wins over the suspicion elsewhere.
    const other = mk('b');
    other.merge([['a', 'http://a:7000', 0, 0]]);
    other.reportFailure('a');
    expect(other.get('a')!.status).toBe('suspect');
    other.merge([m.selfWire()]);
    expect(other.get('a')).toMatchObject({ status: 'alive', incarnation: 1 });
  });

  it('turns a suspect nobody heard from into dead after the failure timeout, not before', () => {
    const c = clock();
    const m = mk('a', c);
    m.merge([['b', 'http://b:7000', 0, 0]]);
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
    m.merge([['b', 'http://b:7000', 0, 0]]);
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
    m.merge([['b', 'http://b:7000', 0, 0]]);
    m.merge([['b', 'http://b:7000', 1, 3]]);
    expect(m.get('b')!.status).toBe('left');
    c.advance(5000);
    m.tick();
    expect(m.get('b')).toBeUndefined();
  });

  it('digests agree exactly when the tables agree, and bucket diffs carry the missing entries', () => {
    const a = mk('a');
    const b = mk('b');
    const others: WireMember[] = Array.from({ length: 40 }, (_, i) => [`n${i}`, `http://n${i}:7000`, 0, 0]);
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
    m.merge(Array.from({ length: 9 }, (_, i): WireMember => [`p${i}`, `http://p${i}:7000`, 0, 0]));
    const rand = mulberry32(7);
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) for (const t of m.nextTargets(3, rand)) seen.add(t);
    expect(seen.size).toBe(9);
    expect(seen.has('a')).toBe(false);
  });
});

describe('Membership caps and forged entries (issue 12)', () => {
  it('drops malformed entries: ids, URLs (http(s)://host:port only), incarnations, shapes', () => {
    const m = mk('a');
    const bad = [
      ['', 'http://b:1', 0, 0],
      ['x'.repeat(257), 'http://b:1', 0, 0],
      ['b c', 'http://b:1', 0, 0],
      ['b', 'http://b', 0, 0],
      ['b', 'ftp://b:21', 0, 0],
      ['b', 'http://u:p@b:1', 0, 0],
      ['b', 'http://b:1/path', 0, 0],
      ['b', 'http://b:70000', 0, 0],
      ['b', `http://${'h'.repeat(600)}:1`, 0, 0],
      ['b', 'http://b:1', -1, 0],
      ['b', 'http://b:1', 2 ** 60, 0],
      ['b', 'http://b:1', 0, 9],
      'not an entry',
    ] as unknown as WireMember[];
    expect(m.merge(bad)).toEqual([]);
    expect(m.dropped).toBe(bad.length);
    expect(m.merge([['b', 'https://[::1]:8443/', 0, 0]])).toHaveLength(1);
  });

  it('holds at most maxMembers rows: a new member replaces the oldest tombstone, else is dropped', () => {
    const c = clock();
    const m = new Membership({ selfId: 'a', selfUrl: 'http://a:1', failureTimeoutMs: 1000, maxMembers: 3, now: c.now });
    m.merge([['b', 'http://b:1', 0, 0], ['c', 'http://c:1', 0, 0]]);
    expect(m.merge([['d', 'http://d:1', 0, 0]])).toEqual([]);
    expect(m.get('d')).toBeUndefined();
    expect(m.dropped).toBe(1);
    c.advance(10);
    m.merge([['b', 'http://b:1', 1, 3]]);
    expect(m.merge([['d', 'http://d:1', 0, 0]])).toHaveLength(1);
    expect(m.get('b')).toBeUndefined();
    expect(m.size).toBe(3);
  });

  it('a flood of fake members never grows the table past its cap', () => {
    const m = new Membership({ selfId: 'a', selfUrl: 'http://a:1', failureTimeoutMs: 1000, maxMembers: 100 });
    const flood = Array.from({ length: 10_000 }, (_, i): WireMember => [`f${i}`, `http://f${i}:1`, 0, 0]);
    m.merge(flood);
    expect(m.size).toBe(100);
    expect(m.dropped).toBe(10_000 - 99);
  });

  it('a `left` about the receiving agent never evicts it: it refutes by incarnation, and the refutation wins elsewhere', () => {
    const a = mk('a');
    const ch = a.merge([['a', 'http://a:7000', 5, 3]]);
    expect(a.selfStatus).toBe('alive');
    expect(a.incarnation).toBe(6);
    expect(ch).toEqual([{ id: 'a', url: 'http://a:7000', status: 'alive', incarnation: 6, previous: 'alive' }]);
    const b = mk('b');
    b.merge([['a', 'http://a:7000', 0, 0]]);
    b.merge([['a', 'http://a:7000', 5, 3]]);
    expect(b.get('a')!.status).toBe('left');
    b.merge([a.selfWire()]);
    expect(b.get('a')).toMatchObject({ status: 'alive', incarnation: 6 });
  });

  it('a real leave stays final: nothing said before it outranks it', () => {
    const a = mk('a');
    const b = mk('b');
    b.merge([a.selfWire()]);
    const before = a.selfWire();
    b.merge([a.leave()]);
    b.merge([before]);
    expect(b.get('a')!.status).toBe('left');
  });
});
