import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../src/kube/queue.ts';
import { FakeClock } from '../support/fake-clock.ts';

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

describe('WorkQueue', () => {
  it('merges duplicates while waiting and hands keys out in order', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    q.add('ns/a');
    expect(q.depth()).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
    expect(q.depth()).toBe(0);
    expect(q.inFlight()).toBe(2);
  });

  it('never hands out a key being processed; a key re-added meanwhile waits until done()', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('k');
    const k = await q.get();
    expect(k).toBe('k');
    q.add('k');
    q.add('k');
    expect(q.depth()).toBe(0); // held back while processing, merged
    let second: string | undefined;
    void q.get().then((x) => (second = x));
    await flush();
    expect(second).toBeUndefined();
    q.done('k');
    await flush();
    expect(second).toBe('k'); // exactly once more
    q.done('k');
    expect(q.depth()).toBe(0);
    expect(q.inFlight()).toBe(0);
  });

  it('run(): different keys in parallel up to the concurrency, the same key never twice at once', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const active = new Set<string>();
    let maxParallel = 0;
    let sameKeyOverlap = 0;
    const calls: string[] = [];
    const gates = new Map<string, Array<() => void>>();
    const running = q.run(async (key) => {
      if (active.has(key)) sameKeyOverlap++;
      active.add(key);
      calls.push(key);
      maxParallel = Math.max(maxParallel, active.size);
      const d = deferred();
      gates.set(key, [...(gates.get(key) ?? []), d.resolve]);
      await d.promise;
      active.delete(key);
    }, { concurrency: 2 });
    q.add('a');
    q.add('b');
    q.add('c');
    await flush();
    expect([...active].sort()).toEqual(['a', 'b']); // c waits: only 2 workers
    q.add('a'); // re-added while processing
    await flush();
    expect(calls.filter((x) => x === 'a')).toHaveLength(1);
    gates.get('a')!.shift()!(); // finish a: next is c (waiting first), then a again
    await flush();
    expect([...active].sort()).toEqual(['b', 'c']);
    gates.get('b')!.shift()!();
    await flush();
    expect([...active].sort()).toEqual(['a', 'c']);
    gates.get('a')!.shift()!();
    gates.get('c')!.shift()!();
    await flush();
    expect(calls).toEqual(['a', 'b', 'c', 'a']);
    expect(sameKeyOverlap).toBe(0);
    expect(maxParallel).toBe(2);
    await q.shutdown();
    await running;
  });

  it('backoff: doubles from the base, jitter within bounds, capped, and forget() resets', () => {
    const q = new WorkQueue({ clock: new FakeClock(), baseDelayMs: 5, maxDelayMs: 300_000, jitter: 0, random: () => 0.5 });
    const delays = Array.from({ length: 20 }, () => q.nextBackoff('k'));
    expect(delays.slice(0, 5)).toEqual([5, 10, 20, 40, 80]);
    expect(Math.max(...delays)).toBe(300_000);
    expect(delays.at(-1)).toBe(300_000);
    expect(q.numRequeues('k')).toBe(20);
    expect(q.nextBackoff('other')).toBe(5); // per key
    q.forget('k');
    expect(q.numRequeues('k')).toBe(0);
    expect(q.nextBackoff('k')).toBe(5);
    // A thousand failures do not overflow past the cap.
    for (let i = 0; i < 1000; i++) q.nextBackoff('many');
    expect(q.nextBackoff('many')).toBe(300_000);

    let r = 0.99;
    const j = new WorkQueue({ clock: new FakeClock(), baseDelayMs: 100, maxDelayMs: 1000, jitter: 0.2, random: () => r });
    expect(j.nextBackoff('k')).toBeCloseTo(100 + 100 * 0.2 * 0.99);
    r = 0;
    expect(j.nextBackoff('k')).toBe(200);
    r = 0.99;
    j.nextBackoff('k'); // 400 + jitter
    j.nextBackoff('k'); // 800 + 158 < 1000
    expect(j.nextBackoff('k')).toBe(1000); // 1000 + jitter, capped
  });

  it('a failing handler is retried after its backoff; success forgets the failures', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 5, maxDelayMs: 40, jitter: 0 });
    let failuresLeft = 4;
    const seen: number[] = [];
    const outcomes: string[] = [];
    const running = q.run(async () => {
      seen.push(clock.now());
      if (failuresLeft-- > 0) throw new Error('boom');
    }, { onDone: (_k, o) => outcomes.push(o) });
    q.add('k');
    await flush();
    for (let i = 0; i < 200; i++) {
      clock.advance(1);
      await flush();
    }
    // t=0 fail, +5, +10, +20, +40 (capped at 40 from 80)
    expect(seen).toEqual([0, 5, 15, 35, 75]);
    expect(outcomes).toEqual(['error', 'error', 'error', 'error', 'success']);
    expect(q.numRequeues('k')).toBe(0);
    expect(clock.pending()).toBe(0);
    await q.shutdown();
    await running;
  });

  it('addAfter: fires after the delay, the earliest of several wins, and a handler can ask to be requeued', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter('k', 100);
    q.addAfter('k', 50);
    q.addAfter('k', 300);
    expect(q.pendingDelayed()).toBe(1);
    clock.advance(49);
    expect(q.depth()).toBe(0);
    clock.advance(1);
    expect(q.depth()).toBe(1);
    clock.advance(1000);
    expect(q.depth()).toBe(1); // the later ones were merged into the earliest

    q.addAfter('zero', 0); // not positive: added now
    expect(q.depth()).toBe(2);

    const at: number[] = [];
    const running = q.run(async (key) => {
      if (key !== 'k') return;
      at.push(clock.now());
      return at.length < 3 ? { requeueAfterMs: 30 } : undefined;
    });
    await flush();
    clock.advance(30);
    await flush();
    clock.advance(30);
    await flush();
    clock.advance(30);
    await flush();
    expect(at).toEqual([1050, 1080, 1110]);
    await q.shutdown();
    await running;
  });

  it('shutdown: stops accepting keys, cancels delayed adds, waits for the key in flight; drain processes waiting keys', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const d = deferred();
    const done: string[] = [];
    const running = q.run(async (key) => {
      if (key === 'slow') await d.promise;
      done.push(key);
    });
    q.add('slow');
    await flush();
    q.add('a');
    q.add('b');
    q.addAfter('later', 10);
    let stopped = false;
    const s = q.shutdown({ drain: true }).then(() => (stopped = true));
    q.add('refused');
    expect(clock.pending()).toBe(0);
    await flush();
    expect(stopped).toBe(false); // slow still in flight
    d.resolve();
    await s;
    await running;
    expect(done).toEqual(['slow', 'a', 'b']);
    expect(await q.get()).toBeUndefined();

    const q2 = new WorkQueue({ clock });
    const d2 = deferred();
    const done2: string[] = [];
    const r2 = q2.run(async (key) => {
      if (key === 'slow') await d2.promise;
      done2.push(key);
    }, { concurrency: 3 });
    q2.add('slow');
    await flush();
    q2.add('slow'); // dirty while processing: dropped by a non-draining shutdown
    const s2 = q2.shutdown();
    q2.add('x');
    d2.resolve();
    await s2;
    await r2;
    expect(done2).toEqual(['slow']);
    expect(q2.depth()).toBe(0);
  });

  it('run({ signal }): each handler gets the signal; when it fires the queue shuts down, hands out nothing more and retries nothing', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const term = new AbortController();
    const d = deferred();
    const seen: Array<[string, AbortSignal]> = [];
    const running = q.run(async (key, signal) => {
      seen.push([key, signal]);
      if (key === 'slow') {
        await d.promise;
        if (signal.aborted) throw new Error('refused: the term ended');
      }
    }, { signal: term.signal });
    q.add('slow');
    await flush();
    q.add('waiting');
    term.abort();
    expect(q.isShuttingDown()).toBe(true);
    d.resolve();
    await running;
    expect(seen.map(([k]) => k)).toEqual(['slow']);
    expect(seen[0]![1]).toBe(term.signal);
    expect(q.pendingDelayed()).toBe(0); // the failure was not re-added with backoff
    expect(clock.pending()).toBe(0);
    q.add('late');
    expect(await q.get()).toBeUndefined();

    // A signal that already fired: nothing is handed out at all.
    const q2 = new WorkQueue({ clock });
    const handled: string[] = [];
    q2.add('a');
    const gone = new AbortController();
    gone.abort();
    await q2.run(async (key) => void handled.push(key), { signal: gone.signal });
    expect(handled).toEqual([]);
  });
});
