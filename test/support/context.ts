/** A BenchContext for running one category in-process in tests. */
import type { BenchContext } from '../../src/bench/types.ts';
import type { Params } from '../../src/plan/params.ts';
import type { Platform } from '../../src/platform/types.ts';

export function benchContext(params: Params, platform: Platform): BenchContext {
  return {
    params,
    platform,
    log: { info() {}, warn() {}, debug() {} },
    progress() {},
    signal: new AbortController().signal,
  };
}
