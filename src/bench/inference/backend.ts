/**
 * An inference backend: one TensorFlow.js engine backend holding the seeded model's weights.
 */
import type { Tensor, Tensor1D, Tensor2D } from '@tensorflow/tfjs';
import type { ModelWeights } from './model.ts';
import type { BackendName, Runtime } from './runtime.ts';

export interface InferenceBackend {
  readonly name: BackendName;
  /** The engine backend it runs on ('tensorflow', 'wasm' or 'cpu'). */
  readonly tfBackend: string;
  /** True only when TensorFlow verifiably placed its ops on a GPU device. */
  readonly gpuInUse: boolean;
  readonly detail: string;
  readonly model: ModelWeights;
  /** Runs the model on `batch` rows of `input` (row-major [batch, inputDim]) and reads the output back. */
  predict(input: Float32Array, batch: number): Promise<Float32Array>;
  /**
   * As `predict`, but leaves `n` tensors of the forward pass undisposed and hands them back: the
   * input, then each layer's output in order (a pass run outside `tf.tidy` leaves exactly these),
   * then, past the pass's own tensors, fresh uploads of the input. The `tensor-leak` profile's
   * leak; absent on stand-in backends.
   */
  predictLeaking?(input: Float32Array, batch: number, n: number): Promise<{ out: Float32Array; leaked: Tensor[] }>;
  /** Tensors and tensor bytes the engine tracks (process-wide, all backends). */
  memory(): { numTensors: number; numBytes: number };
  dispose(): void;
}

/** The backend's device is gone (its engine backend was removed or replaced): its tensors are lost. */
export class BackendLostError extends Error {
  readonly backend: BackendName;
  constructor(backend: BackendName, msg: string) {
    super(msg);
    this.name = 'BackendLostError';
    this.backend = backend;
  }
}

/**
 * Disposes tensors, also those whose backend is gone: the engine then cannot free their data, so
 * its bookkeeping entry is dropped instead (the engine's counters stay right for later tests).
 */
export function releaseTensors(rt: Runtime, tensors: readonly Tensor[]): void {
  const engine = rt.tf.engine();
  for (const t of tensors) {
    try {
      t.dispose();
    } catch {
      const info = engine.state.tensorInfo.get(t.dataId);
      if (info) engine.removeDataId(t.dataId, info.backend);
    }
  }
}

/**
 * Uploads the model's weights to the engine backend `tfName` (already registered and probed) and
 * returns a backend that predicts with them.
 */
export async function createInferenceBackend(
  rt: Runtime,
  info: { name: BackendName; tfName: string; gpuInUse: boolean; detail: string },
  model: ModelWeights,
): Promise<InferenceBackend> {
  const { tf } = rt;
  const { name, tfName } = info;
  if (tf.getBackend() !== tfName) await tf.setBackend(tfName);
  const instance = tf.engine().registry[tfName];
  if (!instance) throw new Error(`engine backend ${tfName} is not initialised`);
  const layers: { w: Tensor2D; b: Tensor1D; relu: boolean }[] = model.layers.map((l) => ({
    w: tf.tensor2d(l.weights, [l.inputs, l.outputs], 'float32'),
    b: tf.tensor1d(l.bias, 'float32'),
    relu: l.relu,
  }));
  let disposed = false;

  const run = async (input: Float32Array, batch: number, leak: number): Promise<{ out: Float32Array; leaked: Tensor[] }> => {
    if (disposed) throw new Error(`inference backend ${name} is disposed`);
    if (tf.engine().registry[tfName] !== instance) {
      throw new BackendLostError(name, `inference backend ${name} lost its device (engine backend '${tfName}' is gone)`);
    }
    if (tf.getBackend() !== tfName) await tf.setBackend(tfName);
    const need = batch * model.inputDim;
    if (input.length < need) throw new Error(`input has ${input.length} values, batch ${batch} needs ${need}`);
    const rows = input.length === need ? input : input.subarray(0, need);
    const leaked: Tensor[] = [];
    const y = tf.tidy(() => {
      let h: Tensor2D = tf.tensor2d(rows, [batch, model.inputDim], 'float32');
      const pass: Tensor[] = [h];
      for (const l of layers) {
        h = tf.fused.matMul({ a: h, b: l.w, bias: l.b, activation: l.relu ? 'relu' : 'linear' }) as Tensor2D;
        pass.push(h);
      }
      for (let i = 0; i < leak; i++) leaked.push(tf.keep(i < pass.length ? pass[i]! : tf.tensor2d(rows, [batch, model.inputDim], 'float32')));
      return h;
    });
    try {
      return { out: (await y.data()) as Float32Array, leaked };
    } finally {
      // The output is left too when the leak reaches it.
      if (leak < layers.length + 1) y.dispose();
    }
  };
  const predict = async (input: Float32Array, batch: number): Promise<Float32Array> => (await run(input, batch, 0)).out;

  return {
    name,
    tfBackend: tfName,
    gpuInUse: info.gpuInUse,
    detail: info.detail,
    model,
    predict,
    predictLeaking: (input, batch, n) => run(input, batch, Math.max(0, Math.floor(n))),
    memory: () => {
      // The engine's own counters (tf.memory() would also ask the active backend, and fails while
      // none is active, e.g. right after a device loss).
      const st = tf.engine().state;
      return { numTensors: st.numTensors, numBytes: st.numBytes };
    },
    dispose: () => {
      if (disposed) return;
      disposed = true;
      releaseTensors(
        rt,
        layers.flatMap((l) => [l.w, l.b]),
      );
    },
  };
}
