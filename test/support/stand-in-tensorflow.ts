/**
 * A stand-in for `@tensorflow/tfjs-node-gpu` on a machine without it: a loader whose import of the
 * package registers an engine backend 'tensorflow' that is really the cpu backend (its kernels
 * re-registered under that name), flagged as the GPU build with `isUsingGpuDevice` as given. It
 * lets the tests walk the GPU paths (verification, 2.1, fallback) without a GPU; it never stands in
 * for a measurement of one. Used by the tests only.
 */
import { createRuntime, nodeLoader, type ModuleLoader, type Runtime } from '../../src/bench/inference/runtime.ts';

export async function installFakeTensorflow(opts: { isUsingGpuDevice: boolean; corrupt?: boolean }): Promise<{
  runtime: Runtime;
  uninstall(): void;
}> {
  const base = await createRuntime(nodeLoader);
  const tf = base.tf;
  const registered: string[] = [];
  const loader: ModuleLoader = {
    resolve: (spec) => (spec === '@tensorflow/tfjs-node-gpu' ? '/fake/tfjs-node-gpu/index.js' : nodeLoader.resolve(spec)),
    load: async (spec) => {
      if (spec !== '@tensorflow/tfjs-node-gpu') return nodeLoader.load(spec);
      await tf.setBackend('cpu');
      const cpuCtor = tf.findBackend('cpu').constructor as new () => object;
      for (const k of tf.getKernelsForBackend('cpu')) {
        let kernelFunc = k.kernelFunc;
        if (opts.corrupt && k.kernelName === '_FusedMatMul') {
          // A device that computes the wrong thing: every output doubled.
          kernelFunc = (args) => {
            const r = k.kernelFunc(args) as { dataId: object; shape: number[]; dtype: 'float32' };
            const values = (args.backend as { readSync(id: object): unknown }).readSync(r.dataId) as Float32Array;
            for (let i = 0; i < values.length; i++) values[i]! *= 2;
            return r;
          };
        }
        tf.registerKernel({ ...k, kernelFunc, backendName: 'tensorflow' });
        registered.push(k.kernelName);
      }
      tf.registerBackend(
        'tensorflow',
        () => Object.assign(new cpuCtor(), { isGPUPackage: true, isUsingGpuDevice: opts.isUsingGpuDevice, firstUse: false }) as never,
        3,
      );
      return {};
    },
  };
  const runtime = await createRuntime(loader);
  return {
    runtime,
    uninstall() {
      if (tf.engine().registryFactory['tensorflow']) tf.removeBackend('tensorflow');
      for (const name of registered) tf.unregisterKernel(name, 'tensorflow');
    },
  };
}
