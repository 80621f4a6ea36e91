/**
 * Loading TensorFlow.js and its backends into this process, once.
 *
 * Backends, best first:
 *   - `tensorflow-gpu`: `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA). Only counted as a GPU
 *     backend when TensorFlow really placed its ops on a GPU device: the binding's
 *     `isUsingGpuDevice()` (exposed as `backend.isUsingGpuDevice`) is true only when TensorFlow's
 *     eager context lists a device of type GPU; without one (no device visible, CUDA or cuDNN
 *     libraries missing) the package silently runs on the CPU, and we say so.
 *   - `tensorflow`: `@tensorflow/tfjs-node` (libtensorflow on the CPU), or tfjs-node-gpu that
 *     found no GPU.
 *   - `wasm`: `@tensorflow/tfjs-backend-wasm` (XNNPACK; SIMD, one thread under Node).
 *   - `cpu`: the pure-JavaScript backend of `@tensorflow/tfjs`.
 *
 * tfjs-node and tfjs-node-gpu both register the engine backend `tensorflow`, so at most one of them
 * is ever loaded into a process. They are loaded with a dynamic import only when present: they
 * cannot be installed everywhere (their install downloads libtensorflow), and the GPU runner image
 * is the one that has them.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as TfNamespace from '@tensorflow/tfjs';
import { firstLine } from '../../errors.ts';

export type Tf = typeof TfNamespace;
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
export const NODE_PACKAGE = '@tensorflow/tfjs-node';
export const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
type NodePackage = typeof GPU_PACKAGE | typeof NODE_PACKAGE;

/** How packages are found and loaded (injectable so tests can play a machine with other packages). */
export interface ModuleLoader {
  /** The resolved entry of an installed package, or null when it is not installed. */
  resolve(spec: string): string | null;
  load(spec: string): Promise<unknown>;
}

const require = createRequire(import.meta.url);

export const nodeLoader: ModuleLoader = {
  resolve(spec) {
    try {
      return require.resolve(spec);
    } catch {
      return null;
    }
  },
  load: (spec) => import(spec),
};

export type ProbeResult =
  | { ok: true; name: BackendName; tfName: string; gpuInUse: boolean; detail: string }
  | { ok: false; name: BackendName; reason: string };

export interface Runtime {
  tf: Tf;
  loader: ModuleLoader;
  /** The TensorFlow binding loaded into this process, if any (at most one). */
  nodePackage: NodePackage | null;
  /** Probe outcomes so far: a package is imported at most once per process. */
  probes: Map<BackendName, ProbeResult>;
  /** Engine factories of the backends that initialised, kept to restore one after an injected loss. */
  factories: Map<string, { factory: () => unknown; priority: number }>;
}

let defaultRuntime: Promise<Runtime> | null = null;

/** The process-wide runtime (TensorFlow.js loaded once). */
export function loadRuntime(): Promise<Runtime> {
  defaultRuntime ??= createRuntime(nodeLoader);
  return defaultRuntime;
}

/**
 * A runtime with its own loader. The engine of TensorFlow.js is process-global whatever runtime
 * object refers to it; a separate runtime only has separate probe results (used by tests).
 */
export async function createRuntime(loader: ModuleLoader): Promise<Runtime> {
  const tf = (await import('@tensorflow/tfjs')) as Tf;
  // Production mode: no per-op NaN checks, as an inference server runs.
  tf.env().set('PROD', true);
  return { tf, loader, nodePackage: null, probes: new Map(), factories: new Map() };
}

/** The chain of backends tried for a preference, best first. A preference names the best one to try. */
export function chainFor(pref: BackendPreference): BackendName[] {
  switch (pref) {
    case 'auto':
    case 'tensorflow':
      return ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
    case 'wasm':
      return ['wasm', 'cpu'];
    case 'cpu':
      return ['cpu'];
  }
}

export function engineName(name: BackendName): string {
  return name === 'tensorflow-gpu' ? 'tensorflow' : name;
}


async function activate(rt: Runtime, tfName: string): Promise<string | null> {
  try {
    ensureRegistered(rt, tfName);
    const ok = await rt.tf.setBackend(tfName);
    if (!ok) return `the engine backend '${tfName}' failed to initialise`;
  } catch (e) {
    return `the engine backend '${tfName}' failed to initialise: ${firstLine(e)}`;
  }
  if (tfName === 'cpu') {
    // The cpu backend prints an advert for tfjs-node on its first use; the selection records why
    // each better backend was not used instead.
    const b = rt.tf.engine().registry['cpu'] as unknown as { firstUse?: boolean } | undefined;
    if (b?.firstUse === true) b.firstUse = false;
  }
  const entry = rt.tf.engine().registryFactory[tfName];
  if (entry && !rt.factories.has(tfName)) rt.factories.set(tfName, { factory: entry.factory, priority: entry.priority });
  return null;
}

/** Re-registers a backend removed from the engine (an injected device loss) from its saved factory. */
export function ensureRegistered(rt: Runtime, tfName: string): void {
  if (rt.tf.engine().registryFactory[tfName]) return;
  const saved = rt.factories.get(tfName);
  if (!saved) return;
  rt.tf.registerBackend(tfName, saved.factory as Parameters<Tf['registerBackend']>[1], saved.priority);
}

async function loadNodePackage(rt: Runtime, pkg: NodePackage): Promise<string | null> {
  if (rt.nodePackage === pkg) return null;
  if (rt.nodePackage !== null) {
    return `${rt.nodePackage} is already loaded in this process (both register the 'tensorflow' backend)`;
  }
  if (rt.loader.resolve(pkg) === null) return `${pkg} is not installed`;
  try {
    await rt.loader.load(pkg);
  } catch (e) {
    return `${pkg} is installed but failed to load: ${firstLine(e)}`;
  }
  rt.nodePackage = pkg;
  return null;
}

interface NodeBackendShape {
  isGPUPackage?: unknown;
  isUsingGpuDevice?: unknown;
  binding?: { TF_Version?: unknown };
}

function tfVersion(rt: Runtime): string {
  const b = rt.tf.backend() as unknown as NodeBackendShape;
  const v = b.binding?.TF_Version;
  return typeof v === 'string' ? `, libtensorflow ${v}` : '';
}

async function probeUncached(rt: Runtime, name: BackendName): Promise<ProbeResult> {
  const fail = (reason: string): ProbeResult => ({ ok: false, name, reason });
  const { tf } = rt;
  switch (name) {
    case 'tensorflow-gpu': {
      const err = await loadNodePackage(rt, GPU_PACKAGE);
      if (err) return fail(err);
      const initErr = await activate(rt, 'tensorflow');
      if (initErr) return fail(initErr);
      const b = tf.backend() as unknown as NodeBackendShape;
      if (b.isGPUPackage !== true) return fail(`the 'tensorflow' backend is not the GPU build`);
      if (b.isUsingGpuDevice !== true) {
        return fail(
          `GPU not used: ${GPU_PACKAGE} loaded but TensorFlow found no GPU device (isUsingGpuDevice=false); ` +
            'it falls back to the CPU silently (no visible device, or CUDA/cuDNN libraries missing)',
        );
      }
      return {
        ok: true,
        name,
        tfName: 'tensorflow',
        gpuInUse: true,
        detail: `${GPU_PACKAGE}${tfVersion(rt)}: TensorFlow places ops on a GPU device (isUsingGpuDevice=true)`,
      };
    }
    case 'tensorflow': {
      if (rt.nodePackage === GPU_PACKAGE) {
        const initErr = await activate(rt, 'tensorflow');
        if (initErr) return fail(initErr);
        const b = tf.backend() as unknown as NodeBackendShape;
        if (b.isUsingGpuDevice === true) return fail(`the loaded binding (${GPU_PACKAGE}) runs on the GPU`);
        return {
          ok: true,
          name,
          tfName: 'tensorflow',
          gpuInUse: false,
          detail: `${GPU_PACKAGE}${tfVersion(rt)} without a GPU device: TensorFlow on the CPU`,
        };
      }
      const err = await loadNodePackage(rt, NODE_PACKAGE);
      if (err) return fail(err);
      const initErr = await activate(rt, 'tensorflow');
      if (initErr) return fail(initErr);
      return { ok: true, name, tfName: 'tensorflow', gpuInUse: false, detail: `${NODE_PACKAGE}${tfVersion(rt)}: TensorFlow on the CPU` };
    }
    case 'wasm': {
      const entry = rt.loader.resolve(WASM_PACKAGE);
      if (entry === null) return fail(`${WASM_PACKAGE} is not installed`);
      let mod: { setWasmPaths?: (p: string) => void; getThreadsCount?: () => number; version_wasm?: string };
      try {
        mod = (await rt.loader.load(WASM_PACKAGE)) as typeof mod;
      } catch (e) {
        return fail(`${WASM_PACKAGE} failed to load: ${firstLine(e)}`);
      }
      // The binaries ship in the package's dist/ beside its Node entry; point at them explicitly so
      // a bundled or relocated entry still finds them (nothing is downloaded).
      const dir = `${dirname(entry)}/`;
      if (!rt.tf.engine().registry['wasm']) mod.setWasmPaths?.(dir);
      const initErr = await activate(rt, 'wasm');
      if (initErr) return fail(initErr);
      const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
      const threads = mod.getThreadsCount?.() ?? 1;
      return {
        ok: true,
        name,
        tfName: 'wasm',
        gpuInUse: false,
        detail: `${WASM_PACKAGE} ${mod.version_wasm ?? ''} (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})`.replace('  ', ' '),
      };
    }
    case 'cpu': {
      const initErr = await activate(rt, 'cpu');
      if (initErr) return fail(initErr);
      return { ok: true, name, tfName: 'cpu', gpuInUse: false, detail: `@tensorflow/tfjs ${tf.version_core} pure-JavaScript cpu backend` };
    }
  }
}

/** Whether a backend can run in this process, and why not. Cached per runtime. */
export async function probe(rt: Runtime, name: BackendName): Promise<ProbeResult> {
  const cached = rt.probes.get(name);
  if (cached) {
    // Re-activate (and re-register after an injected loss) a backend that worked before.
    if (cached.ok) {
      const err = await activate(rt, cached.tfName);
      if (err) return { ok: false, name, reason: err };
    }
    return cached;
  }
  const r = await probeUncached(rt, name);
  rt.probes.set(name, r);
  return r;
}

/**
 * Injects the loss of a backend's device: the engine backend is disposed and removed (its
 * tensors are gone with it) and the engine has no active backend until one is set. Its factory
 * stays saved in the runtime, so `ensureRegistered` (or a later `probe`) can bring it back.
 */
export function loseBackend(rt: Runtime, tfName: string): void {
  const engine = rt.tf.engine();
  const entry = engine.registryFactory[tfName];
  if (!entry) throw new Error(`engine backend '${tfName}' is not registered`);
  if (!rt.factories.has(tfName)) rt.factories.set(tfName, { factory: entry.factory, priority: entry.priority });
  try {
    rt.tf.removeBackend(tfName);
  } catch (e) {
    // A backend whose dispose() throws is still gone for our purposes once the engine forgot it.
    if (engine.registry[tfName] || engine.registryFactory[tfName]) {
      throw new Error(`cannot remove engine backend '${tfName}': ${firstLine(e)}`);
    }
  }
}
