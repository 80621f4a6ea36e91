import { describe, expect, it } from 'vitest';
import { jsonDepth, LimitExceeded, MAX_STATE_DEPTH } from '../../src/agent/limits.ts';
import { newer, StateStore } from '../../src/agent/state.ts';

describe('state versions', () => {
  it('orders by version, then writer id', () => {
    expect(newer(2, 'a', 1, 'z')).toBe(true);
    expect(newer(1, 'b', 1, 'a')).toBe(true);
    expect(newer(1, 'a', 1, 'b')).toBe(false);
    expect(newer(1, 'a', 1, 'a')).toBe(false);
  });

  it('a write takes the highest known version + 1', () => {
    const s = new StateStore('a');
    expect(s.write('k', 1).version).toBe(1);
    s.apply('k', 7, 'b', 'from b');
    expect(s.write('k', 2)).toMatchObject({ version: 8, writer: 'a', value: 2 });
  });

  it('never goes back to an older version, whatever order updates arrive in', () => {
    const s = new StateStore('x');
    const updates: [number, string][] = [[3, 'a'], [1, 'b'], [5, 'a'], [5, 'c'], [4, 'z'], [5, 'b'], [2, 'a']];
    let last: [number, string] = [0, ''];
    for (const [v, w] of updates) {
      s.apply('k', v, w, `${v}${w}`);
      const cur = s.get('k')!;
      expect(newer(last[0], last[1], cur.version, cur.writer)).toBe(false);
      last = [cur.version, cur.writer];
    }
    expect(s.get('k')).toMatchObject({ version: 5, writer: 'c', value: '5c' });
  });

  it('concurrent writers converge on the same winner everywhere', () => {
    const a = new StateStore('a');
    const b = new StateStore('b');
    const wa = a.write('k', 'A');
    const wb = b.write('k', 'B');
    a.apply(wb.key, wb.version, wb.writer, wb.value);
    b.apply(wa.key, wa.version, wa.writer, wa.value);
    expect(a.get('k')).toEqual(b.get('k'));
    expect(a.get('k')!.value).toBe('B');
    expect(a.digest()).toBe(b.digest());
  });

  it('compare says which keys to fetch and which to push, and anti-entropy converges', () => {
    const a = new StateStore('a');
    const b = new StateStore('b');
    a.write('only-a', 1);
    b.write('only-b', 2);
    a.write('both', 'old');
    b.apply('both', 2, 'b', 'new');
    const { want, push } = a.compare(b.versions());
    expect(want.sort()).toEqual(['both', 'only-b']);
    expect(push).toEqual(['only-a']);
    a.applyWire(b.wire(want));
    b.applyWire(a.wire(push));
    expect(a.digest()).toBe(b.digest());
    expect(a.get('both')!.value).toBe('new');
  });

  it('rejects malformed entries', () => {
    const s = new StateStore('a');
    expect(s.apply('', 1, 'w', 1)).toBe(false);
    expect(s.apply('k', 0, 'w', 1)).toBe(false);
    expect(s.apply('k', 1.5, 'w', 1)).toBe(false);
    expect(s.size).toBe(0);
  });
});

describe('state caps (src/agent/limits.ts)', () => {
  const nested = (n: number): unknown => JSON.parse('['.repeat(n) + ']'.repeat(n));

  it('refuses a value nested past the depth cap without recursion (100 000 deep), and keeps nothing', () => {
    const s = new StateStore('a');
    expect(() => s.write('k', nested(100_000))).toThrow(LimitExceeded);
    try {
      s.write('k', nested(100_000));
    } catch (e) {
      expect(e).toMatchObject({ status: 413, limit: 'stateDepth', max: MAX_STATE_DEPTH });
    }
    expect(jsonDepth(nested(1_000_000))).toBe(MAX_STATE_DEPTH + 1);
    expect(s.size).toBe(0);
    expect(s.write('k', nested(MAX_STATE_DEPTH)).version).toBe(1);
    expect(jsonDepth({ a: [1, { b: [] }] })).toBe(4);
  });

  it('refuses a value over the byte cap (413), a new key past the key cap (429) and past the total (413)', () => {
    const s = new StateStore('a', { limits: { maxKeys: 2, maxValueBytes: 100, maxTotalBytes: 150 } });
    expect(() => s.write('big', 'x'.repeat(100))).toThrow(/stateValueBytes = 100/);
    s.write('k1', 'x'.repeat(60));
    expect(() => s.write('k2', 'x'.repeat(90))).toThrow(/stateTotalBytes = 150/);
    s.write('k2', 'y');
    expect(() => s.write('k3', 1)).toThrow(/stateKeys = 2/);
    // An existing key may still be written; its old size is given back.
    expect(s.write('k1', 'z').version).toBe(2);
    expect(s.totalBytes).toBe(2 + 3 + 2 + 3);
  });

  it('drops entries from peers past a cap and counts them', () => {
    const s = new StateStore('a', { limits: { maxKeys: 1 } });
    expect(s.apply('deep', 1, 'b', nested(50))).toBe(false);
    expect(s.apply('ok', 1, 'b', { n: 1 })).toBe(true);
    expect(s.apply('more', 1, 'b', 1)).toBe(false);
    expect(s.applyWire([['x', 1, 'b', 'x'.repeat(70_000)], ['k'.repeat(300), 1, 'b', 1]])).toBe(0);
    expect(s.dropped).toBe(4);
    expect(s.size).toBe(1);
  });

  it('sends state in batches of at most maxBytes (at least one entry)', () => {
    const s = new StateStore('a');
    for (let i = 0; i < 10; i++) s.write(`k${i}`, 'x'.repeat(98));
    expect(s.wire(undefined, 250)).toHaveLength(2);
    expect(s.wire(['k3'], 1)).toHaveLength(1);
    expect(s.wire()).toHaveLength(10);
  });
});
