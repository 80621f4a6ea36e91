import { describe, expect, it } from 'vitest';
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
