/**
 * A small seeded pseudo-random generator (mulberry32) for weights and inputs. Every figure of the
 * GPU category comes from a model and inputs that are a pure function of a seed, so every backend
 * computes the same function on the same data and two runs are comparable. Not for cryptography.
 */
import { mulberry32 as uniform01 } from '../../prng.ts';

export interface Prng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
}

export function mulberry32(seed: number): Prng {
  const next = uniform01(seed);
  return { next, uniform: (lo, hi) => lo + (hi - lo) * next() };
}

/** Derives an independent stream seed from a base seed and a label (FNV-1a over the label). */
export function deriveSeed(base: number, label: string): number {
  let h = (0x811c9dc5 ^ base) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Fills a new Float32Array of length n with uniform values in [lo, hi). */
export function uniformArray(prng: Prng, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = prng.uniform(lo, hi);
  return out;
}
