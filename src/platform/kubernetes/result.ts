/**
 * Writes a step's result document into its ConfigMap (key `result.json`), idempotently. The
 * operator creates that ConfigMap (empty) before the step's Job and lets the runner update only
 * it, by name: so read it and replace it with the read resourceVersion (a conflict on replace:
 * read and try again); only where it does not exist (the runner used without the operator) create
 * it. Transient failures (network, 429, 5xx) are retried with backoff until the deadline;
 * refusals (401/403), invalid objects (422) and the like fail at once with the server's message.
 *
 * Ownership: the ConfigMap is replaced only when its controller is the runner's own run
 * (`o.run.uid`, from SWARMBENCH_RUN_UID, which the operator sets on the Job): a ConfigMap of that
 * name that another run (an earlier run of the same name) or nobody controls is never written, and
 * the runner fails at once naming it and its controller. The replace carries the resourceVersion
 * read, so an object swapped in between is a conflict and is read and checked again.
 *
 * Size: a ConfigMap holds at most 1 MiB. A document over `RESULT_BUDGET_BYTES` (900 KiB, leaving
 * the labels and owner reference room) is refused here at once, naming the step and its size,
 * before anything is sent: never an API 422 that fails the Job and has it run the step again. The
 * runner brings its result under that budget first (runner/fit.ts).
 */
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { describeError, isConflict, isNotFound, makeApiClient, statusCode } from '../../kube/client.ts';
import { belongsTo, controllerOf, type RunRef } from '../../kube/names.ts';
import { RESULT_KEY, stepResultConfigMap } from './manifests.ts';

/** The most a step result document (`result.json`) may take, in UTF-8 bytes: 900 KiB. */
export const RESULT_BUDGET_BYTES = 900 * 1024;

export interface WriteResultOptions {
  kc: KubeConfig;
  /** The ConfigMap's name (in the run's namespace). */
  name: string;
  run: RunRef;
  attempt: number;
  step: string;
  category: string;
  /** The StepResult document (serialised here with JSON.stringify; at most `RESULT_BUDGET_BYTES`). */
  result: unknown;
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
}

/** The ConfigMap exists and is not the run's: never retried. */
class NotOwned extends Error {}

function transient(err: unknown): boolean {
  const code = statusCode(err);
  return code === undefined || code === 429 || code >= 500;
}

/** Returns the written ConfigMap and whether it replaced an earlier result (a retried runner). */
export async function writeStepResult(o: WriteResultOptions): Promise<{ configMap: V1ConfigMap; replaced: boolean }> {
  const core = makeApiClient(o.kc, CoreV1Api);
  const namespace = o.run.namespace;
  const json = JSON.stringify(o.result);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > RESULT_BUDGET_BYTES) {
    throw new Error(
      `cannot write the step result of step ${o.step} to ConfigMap ${namespace}/${o.name}: it is ${(bytes / 1024).toFixed(1)} KiB (${bytes} bytes), ` +
        `over the ${RESULT_BUDGET_BYTES / 1024} KiB budget of a result ConfigMap (at most 1 MiB); not sent`,
    );
  }
  const body = stepResultConfigMap({ name: o.name, run: o.run, attempt: o.attempt, step: o.step, category: o.category, json });
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let delay = 200;
  for (;;) {
    try {
      let cur: V1ConfigMap;
      try {
        cur = await core.readNamespacedConfigMap({ namespace, name: o.name });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        return { configMap: await core.createNamespacedConfigMap({ namespace, body }), replaced: false };
      }
      if (!belongsTo(cur, o.run.uid)) {
        throw new NotOwned(`ConfigMap ${namespace}/${o.name} is not controlled by run ${o.run.name} (uid ${o.run.uid}); its controller: ${controllerOf(cur)}; not written`);
      }
      const next: V1ConfigMap = { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata?.resourceVersion } };
      const replaced = cur.data?.[RESULT_KEY] !== undefined;
      return { configMap: await core.replaceNamespacedConfigMap({ namespace, name: o.name, body: next }), replaced };
    } catch (err) {
      if (err instanceof NotOwned) throw new Error(`cannot write the step result: ${err.message}`);
      // A conflict (someone wrote between our read and replace, or created it after our 404) or a
      // delete racing us: go again.
      const again = isConflict(err) || isNotFound(err) || transient(err);
      if (!again || Date.now() + delay > deadline) {
        throw new Error(`cannot write the step result to ConfigMap ${o.run.namespace}/${o.name}: ${describeError(err)}`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}
