/** The PrometheusError a call rejects with (src/prometheus/client.ts); fails the test when it resolves or throws something else. */
import { PrometheusError } from '../../src/prometheus/client.ts';

export async function rejection(p: Promise<unknown>): Promise<PrometheusError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PrometheusError) return e;
    throw e;
  }
  throw new Error('expected a PrometheusError, the call succeeded');
}
