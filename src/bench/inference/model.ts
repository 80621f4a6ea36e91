/**
 * The seeded model of the GPU category: a multi-layer perceptron (dense layers, ReLU between
 * them, a linear output) whose weights come from a seeded initializer, plus seeded inputs and a
 * float64 reference forward pass in plain JavaScript.
 *
 * The weights are generated here, not by a backend's initializer, so every backend (TensorFlow on
 * a GPU or a CPU, wasm, the pure-JS cpu backend) computes exactly the same function, and the
 * float64 reference says what the right answer is independently of all of them.
 */
import { deriveSeed, mulberry32, uniformArray } from '../../prng.ts';

export type ModelSize = 'small' | 'medium' | 'large';

/** Layer widths, input first. */
export const MODEL_LAYERS: Readonly<Record<ModelSize, readonly number[]>> = {
  // 784-512-256-10: an MNIST-sized classifier, ~0.54 M multiply-adds per sample.
  small: [784, 512, 256, 10],
  // ~8.5 M multiply-adds per sample.
  medium: [1024, 2048, 2048, 1024, 100],
  // ~54 M multiply-adds per sample (208 MiB of float32 weights).
  large: [4096, 4096, 4096, 4096, 1000],
};

export const DEFAULT_SEED = 0x5eed2;

export interface DenseLayer {
  inputs: number;
  outputs: number;
  /** Row-major [inputs, outputs]. */
  weights: Float32Array;
  bias: Float32Array;
  relu: boolean;
}

export interface ModelWeights {
  size: ModelSize;
  seed: number;
  layers: DenseLayer[];
  inputDim: number;
  outputDim: number;
  /** Multiply-adds per sample. */
  macsPerSample: number;
  /** Bytes of float32 parameters. */
  parameterBytes: number;
}

/**
 * He-uniform weights for the ReLU layers, Glorot-uniform for the linear output layer, small
 * uniform biases; all from one seed.
 */
export function buildWeights(size: ModelSize, seed = DEFAULT_SEED): ModelWeights {
  const dims = MODEL_LAYERS[size];
  const layers: DenseLayer[] = [];
  let macs = 0;
  let params = 0;
  for (let i = 0; i + 1 < dims.length; i++) {
    const inputs = dims[i]!;
    const outputs = dims[i + 1]!;
    const relu = i + 2 < dims.length;
    const limit = relu ? Math.sqrt(6 / inputs) : Math.sqrt(6 / (inputs + outputs));
    const prng = mulberry32(deriveSeed(seed, `layer${i}`));
    const weights = uniformArray(prng, inputs * outputs, -limit, limit);
    const bias = uniformArray(prng, outputs, -0.05, 0.05);
    layers.push({ inputs, outputs, weights, bias, relu });
    macs += inputs * outputs;
    params += inputs * outputs + outputs;
  }
  return {
    size,
    seed,
    layers,
    inputDim: dims[0]!,
    outputDim: dims[dims.length - 1]!,
    macsPerSample: macs,
    parameterBytes: params * 4,
  };
}

/**
 * Seeded inputs: `rows` samples, uniform in [0, 1) (pixel-like). Row r is the same whatever
 * `rows` is, so a batch of b is the first b rows of any larger batch and shares its reference.
 */
export function makeInputs(model: ModelWeights, rows: number, seed = DEFAULT_SEED): Float32Array {
  const prng = mulberry32(deriveSeed(seed, 'inputs'));
  return uniformArray(prng, rows * model.inputDim, 0, 1);
}

/** Float64 forward pass of the first `rows` rows of `input` (the reference answer). */
export function referenceForward(model: ModelWeights, input: Float32Array, rows: number): Float64Array {
  let h = Float64Array.from(input.subarray(0, rows * model.inputDim));
  for (const l of model.layers) {
    const out = new Float64Array(rows * l.outputs);
    for (let r = 0; r < rows; r++) {
      const o = r * l.outputs;
      for (let j = 0; j < l.outputs; j++) out[o + j] = l.bias[j]!;
      for (let k = 0; k < l.inputs; k++) {
        const x = h[r * l.inputs + k]!;
        if (x === 0) continue;
        const wRow = k * l.outputs;
        for (let j = 0; j < l.outputs; j++) out[o + j]! += x * l.weights[wRow + j]!;
      }
      if (l.relu) for (let j = 0; j < l.outputs; j++) if (out[o + j]! < 0) out[o + j] = 0;
    }
    h = out;
  }
  return h;
}

export interface Comparison {
  ok: boolean;
  /** Largest |actual - reference|. */
  maxAbsError: number;
  /** maxAbsError / max|reference|: the error relative to the output's scale. */
  scaledError: number;
  tolerance: number;
  compared: number;
}

/**
 * Float32 backends agree with the float64 reference to ~1e-6 of the output scale; TensorFlow on
 * a GPU may use TF32 matrix multiplies (10-bit mantissa) on Ampere and later, ~1e-3.
 */
export const TOLERANCE = { cpu: 1e-4, gpu: 2e-2 } as const;

/** Compares the first `reference.length` values of `actual` with the reference. */
export function compareOutputs(actual: Float32Array, reference: Float64Array, tolerance: number): Comparison {
  let maxAbs = 0;
  let scale = 0;
  const n = reference.length;
  if (actual.length < n) {
    return { ok: false, maxAbsError: Number.POSITIVE_INFINITY, scaledError: Number.POSITIVE_INFINITY, tolerance, compared: 0 };
  }
  for (let i = 0; i < n; i++) {
    const r = reference[i]!;
    const a = actual[i]!;
    const d = Number.isFinite(a) ? Math.abs(a - r) : Number.POSITIVE_INFINITY;
    if (d > maxAbs) maxAbs = d;
    if (Math.abs(r) > scale) scale = Math.abs(r);
  }
  const scaledError = maxAbs / Math.max(scale, 1e-12);
  return { ok: scaledError <= tolerance, maxAbsError: maxAbs, scaledError, tolerance, compared: n };
}
