/**
 * mulberry32: a tiny seeded pseudo-random generator, uniform in [0, 1). Used wherever the
 * project needs randomness that must be reproducible (gossip peer choice, task mixes, model
 * weights and inputs, test data). Not for cryptography. One implementation for every layer.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
