/**
 * Waiting in the monitoring category, on the runner's monotonic clock: a condition polled until
 * a deadline, a promise resolved by a later event (with a deadline), and the deadlines the tests
 * share.
 */

/** Deadline of one event (a mark on a stream, a first dashboard update, a stream opening): plan/deadlines.ts holds it, for the step's deadline. */
export { EVENT_DEADLINE_MS } from '../../plan/deadlines.ts';

export function now(): number {
  return performance.now();
}

/** Waits for `cond` with a deadline, checking every `pollMs`. Returns whether it held. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, deadlineMs: number, signal: AbortSignal, pollMs = 20): Promise<boolean> {
  const end = now() + deadlineMs;
  for (;;) {
    if (await cond()) return true;
    if (now() >= end || signal.aborted) return false;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, end - now()))));
  }
}

/** A promise resolved by a later call, with a deadline. */
export function deferred<T>(deadlineMs: number, what: string): { promise: Promise<T>; resolve(v: T): void } {
  let resolve!: (v: T) => void;
  let timer: NodeJS.Timeout;
  const promise = new Promise<T>((res, rej) => {
    resolve = (v: T) => {
      clearTimeout(timer);
      res(v);
    };
    timer = setTimeout(() => rej(new Error(`${what}: nothing within ${deadlineMs} ms`)), deadlineMs);
  });
  // A caller that gave up waiting (its request failed first) must not leave an unhandled rejection.
  promise.catch(() => {});
  return { promise, resolve };
}
