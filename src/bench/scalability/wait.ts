/**
 * Small helpers the scalability and stress categories share: waiting for a point of a load run's
 * clock, and the note a result carries when the load generator fell behind its own schedule.
 */
import { round } from '../../stats.ts';

/** Waits until `ms` on a load run's clock (a point in the schedule, not a stand-in for work). */
export function untilLoadTime(now: () => number, ms: number, signal?: AbortSignal): Promise<void> {
  const wait = ms - now();
  if (wait <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, wait);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A note when the load generator fell behind its own schedule: latencies are still measured from
 * the scheduled times (so they include the lag, by design), but the figures then partly describe
 * the runner's machine rather than the agents. A note only, at a lower threshold than the lag
 * guard's bound (`src/bench/load/lag.ts`), past which a throughput is not judged at all.
 */
export function lagWarning(lag: { p50: number; p99: number }): string | undefined {
  if (lag.p50 <= 10 && lag.p99 <= 100) return undefined;
  return `the load generator fell behind its schedule (lag p50 ${round(lag.p50, 1)} ms, p99 ${round(lag.p99, 1)} ms): the runner's machine is busy, latencies include this lag`;
}
