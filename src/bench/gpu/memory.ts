/**
 * 2.3 Memory management: the memory pools a prediction can leak into, read with garbage collection
 * settled before the predictions, at evenly spaced checkpoints and after them (docs/gpu.md).
 *
 * Pools: the engine's tensor bytes (on a GPU, device memory), the wasm backend's heap (a
 * WebAssembly memory: it grows and never shrinks), device bytes where the backend reports them
 * (`memory()` fields with GPU in the name) or the driver does (`nvidia-smi`, per process, when a
 * GPU is in use), and the process's JavaScript heap, external memory, ArrayBuffers and resident
 * set (native memory: libtensorflow's allocations, the wasm heap's touched pages, everything).
 *
 * Garbage collection: the runner is started without `--expose-gc`, so `gc` is obtained at run time
 * (the V8 flag set with `v8.setFlagsFromString`, then `gc` taken from a fresh `vm` context, which
 * sees the flag). When that fails, the pools garbage inflates (heap, external, ArrayBuffers, RSS)
 * are reported but not judged.
 */
import { execFile } from 'node:child_process';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Measurement } from '../../api/schema.ts';
import { round } from '../../stats.ts';
import { checkAbort } from '../measure.ts';
import { gpuMeasured, MB, verify, timedPredict, type GpuSession } from './session.ts';
import type { Runtime } from '../inference/index.ts';

export function gcFunction(): (() => void) | null {
  const g = (globalThis as { gc?: unknown }).gc;
  if (typeof g === 'function') return g as () => void;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f: unknown = vm.runInNewContext('gc');
    return typeof f === 'function' ? (f as () => void) : null;
  } catch {
    return null;
  }
}

/** Bytes in each pool (absent: the pool does not exist here). */
export interface Pools {
  tensorBytes: number;
  wasmHeap?: number;
  /** Device bytes the backend reports (`memory()` fields with GPU in the name). */
  deviceReported?: number;
  /** Device memory of this process as the driver reports it (`nvidia-smi`). */
  deviceDriver?: number;
  jsHeap: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

/** Pools whose reading garbage inflates: judged only when a full GC ran before the reading. */
const GARBAGE_POOLS: (keyof Pools)[] = ['jsHeap', 'external', 'arrayBuffers', 'rss'];

/** The wasm backend's heap size, when the wasm backend is initialised in this process. */
function wasmHeapBytes(rt: Runtime): number | undefined {
  const b = rt.tf.engine().registry['wasm'] as unknown as { wasm?: { HEAPU8?: Uint8Array } } | undefined;
  const len = b?.wasm?.HEAPU8?.buffer.byteLength;
  return typeof len === 'number' ? len : undefined;
}

/** Device bytes the engine backend reports (webgl's numBytesInGPU and the like); tfjs-node reports none. */
function reportedDeviceBytes(rt: Runtime, tfName: string): number | undefined {
  try {
    const b = rt.tf.engine().registry[tfName] as unknown as { memory?: () => Record<string, unknown> } | undefined;
    const info = b?.memory?.() ?? {};
    const fields = Object.entries(info).filter(([k, v]) => /GPU/.test(k) && typeof v === 'number' && !/Allocated|Free/.test(k));
    return fields.length ? fields.reduce((a, [, v]) => a + (v as number), 0) : undefined;
  } catch {
    return undefined;
  }
}

/** This process's device memory from `nvidia-smi` (bytes), or why not. */
export function driverDeviceBytes(pid = process.pid, timeoutMs = 3000): Promise<number | string> {
  return new Promise((resolve) => {
    execFile(
      'nvidia-smi',
      ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'],
      { timeout: timeoutMs },
      (err, stdout) => {
        if (err) {
          resolve(`nvidia-smi: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : err.message.split('\n')[0]}`);
          return;
        }
        let mib = 0;
        let found = false;
        for (const line of stdout.split('\n')) {
          const [p, used] = line.split(',').map((x) => x.trim());
          if (Number(p) === pid && Number.isFinite(Number(used))) {
            mib += Number(used);
            found = true;
          }
        }
        resolve(found ? mib * MB : `nvidia-smi lists no compute process with pid ${pid}`);
      },
    );
  });
}

export interface MemoryProbe {
  gcAvailable: boolean;
  /** Why the driver's device figure is missing, when a GPU is in use and it is. */
  deviceNote: string | null;
  read(): Promise<Pools>;
}

/** Reads the pools with garbage collection settled: two full collections a macrotask apart. */
export function memoryProbe(s: GpuSession): MemoryProbe {
  const gc = gcFunction();
  const probe: MemoryProbe = {
    gcAvailable: gc !== null,
    deviceNote: null,
    async read() {
      if (gc) {
        gc();
        await new Promise((r) => setImmediate(r));
        gc();
      }
      const b = s.service.backend;
      const u = process.memoryUsage();
      const pools: Pools = {
        tensorBytes: b.memory().numBytes,
        jsHeap: u.heapUsed,
        external: u.external,
        arrayBuffers: u.arrayBuffers,
        rss: u.rss,
      };
      const wasm = wasmHeapBytes(s.rt);
      if (wasm !== undefined) pools.wasmHeap = wasm;
      const dev = reportedDeviceBytes(s.rt, b.tfBackend);
      if (dev !== undefined) pools.deviceReported = dev;
      if (b.gpuInUse) {
        const d = await driverDeviceBytes();
        if (typeof d === 'number') pools.deviceDriver = d;
        else probe.deviceNote = d;
      }
      return pools;
    },
  };
  return probe;
}

function growthMB(before: Pools, after: Pools): Partial<Record<keyof Pools, number>> {
  const out: Partial<Record<keyof Pools, number>> = {};
  for (const k of Object.keys(after) as (keyof Pools)[]) {
    const a = before[k];
    const b = after[k];
    if (a !== undefined && b !== undefined) out[k] = (b - a) / MB;
  }
  return out;
}

function roundedMB(p: Partial<Record<keyof Pools, number>>, scale = 1): Record<string, number> {
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, round(v / scale, 3)]));
}

/** 2.3: growth of every memory pool over many predictions at the largest batch. */
export async function measureMemory(s: GpuSession): Promise<Measurement> {
  const started = performance.now();
  const { ctx } = s;
  const iterations = Math.max(1, ctx.params.gpu.memoryIterations);
  const checkpoints = Math.min(iterations, Math.max(3, ctx.params.trials));
  const batch = s.sizes[s.sizes.length - 1]!;
  const probe = memoryProbe(s);
  const judged = (k: keyof Pools): boolean => probe.gcAvailable || !GARBAGE_POOLS.includes(k);
  // Warm (allocator pools, kernel caches, the wasm heap's high-water mark) before the baseline.
  const warmUp = 3;
  for (let i = 0; i < warmUp; i++) await timedPredict(s, s.service, batch);
  const tensorsBefore = s.service.backend.memory().numTensors;
  const before = await probe.read();
  const growth: number[] = [];
  const trace: Record<string, unknown>[] = [];
  let worst: { pool: keyof Pools; mb: number; iteration: number } | null = null;
  let done = 0;
  let after = before;
  for (let k = 0; k < checkpoints; k++) {
    const until = Math.round(((k + 1) * iterations) / checkpoints);
    for (; done < until; done++) {
      checkAbort(ctx.signal);
      const out = await s.service.predict(s.inputs, batch);
      verify(s, s.service.backend, out, batch);
    }
    after = await probe.read();
    const g = growthMB(before, after);
    let top: { pool: keyof Pools; mb: number } | null = null;
    for (const [pool, mb] of Object.entries(g) as [keyof Pools, number][]) {
      if (judged(pool) && (top === null || mb > top.mb)) top = { pool, mb };
    }
    const mb = top ? top.mb : 0;
    growth.push(mb);
    if (top && (worst === null || mb > worst.mb)) worst = { ...top, iteration: done };
    trace.push({ iteration: done, largestPool: top?.pool ?? null, ...roundedMB(g) });
    ctx.progress('gpu/memory', `${done}/${iterations}`);
  }
  const tensorsAfter = s.service.backend.memory().numTensors;
  const leakedTensors = tensorsAfter - tensorsBefore;
  const totalGrowth = growthMB(before, after);
  const details = {
    ...s.base,
    batch,
    iterations,
    warmUp,
    gcAvailable: probe.gcAvailable,
    gcMethod: (globalThis as { gc?: unknown }).gc ? 'global.gc' : probe.gcAvailable ? 'v8.setFlagsFromString(--expose-gc) + vm context' : 'none',
    judgedPools: (Object.keys(before) as (keyof Pools)[]).filter(judged),
    ...(probe.deviceNote ? { deviceMemoryNote: probe.deviceNote } : {}),
    largestPool: worst?.pool ?? null,
    largestGrowthAtIteration: worst?.iteration ?? null,
    beforeMB: roundedMB(before as unknown as Partial<Record<keyof Pools, number>>, MB),
    afterMB: roundedMB(after as unknown as Partial<Record<keyof Pools, number>>, MB),
    growthMB: roundedMB(totalGrowth),
    growthPerPredictionKB: roundedMB(totalGrowth, Math.max(1, iterations) / 1024),
    checkpoints: trace,
    tensorsBefore,
    tensorsAfter,
    leakedTensors,
    statistic: `max over ${checkpoints} checkpoints of the largest growth since the baseline among the judged pools, MB (GC settled before each reading)`,
  };
  return gpuMeasured('2.3', growth, Math.max(...growth), 'checkpoints', details, started, {
    ...(leakedTensors > 0
      ? { fail: `${leakedTensors} tensors leaked over ${iterations} predictions (${round(leakedTensors / iterations, 2)} per prediction)` }
      : {}),
  });
}
