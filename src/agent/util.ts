/**
 * Small pure helpers of the reference agent: FNV-1a hashing for digests and sleeping. (Gossip
 * shuffles with the project's seeded PRNG, `src/prng.ts` `shuffle`, never Math.random, so runs are
 * reproducible.)
 */

/** 32-bit FNV-1a of a string (UTF-16 code units; only used for digests compared between agents). */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Waits at least `ms` milliseconds as measured by performance.now(). A bare setTimeout can fire
 * a fraction of a millisecond early against performance.now() (timers run on the loop's cached
 * millisecond clock), and an injected latency must never be smaller than what was asked for.
 */
export async function sleep(ms: number): Promise<void> {
  const end = performance.now() + ms;
  for (let left = ms; left > 0; left = end - performance.now()) {
    await new Promise((resolve) => setTimeout(resolve, Math.ceil(left)));
  }
}

/**
 * Wall-clock epoch milliseconds with sub-millisecond resolution (a float), for `/v1/time` and
 * event timestamps: performance.timeOrigin + performance.now().
 */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
