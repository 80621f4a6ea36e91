/**
 * The inference service: what answers the GPU category's prediction requests, and the part that
 * decides what happens when the accelerator's device is lost. It is the reference model server of
 * this category (the system under test, as the reference agent is for the others):
 *
 * - It serves every request on its primary backend (the selected one).
 * - When a request fails because the device is gone (`BackendLostError`), it falls back by itself:
 *   it opens the fallback backend (the CPU, from the host copy of the weights), answers that same
 *   request there, and serves every later request on it until it is given a new primary.
 * - Requests that arrive while the fallback opens wait for it (one fallback per loss).
 *
 * The harness only injects the loss (`loseBackend`) and times answers from outside; what the
 * service records (`losses`) is its own account, kept beside the harness's figures, never in place
 * of them. Under the `no-fallback` profile the service keeps its lost device: every request fails.
 */
import { BackendLostError, type InferenceBackend } from './backend.ts';

/** What the service did about one device loss, by its own clock (`performance.now()`). */
export interface LossRecord {
  lost: string;
  /** When the first request failed with the loss. */
  detectedAt: number;
  /** Null when the service did not fall back (`no-fallback`) or the fallback failed. */
  fallback: string | null;
  /** When the fallback backend was open and holding the weights. */
  readyAt: number | null;
  error: string | null;
}

export interface InferenceService {
  /** The backend answering now: the primary, or the fallback after a device loss. */
  readonly backend: InferenceBackend;
  readonly primary: InferenceBackend;
  /** Every device loss the service saw, oldest first. */
  readonly losses: readonly LossRecord[];
  predict(input: Float32Array, batch: number): Promise<Float32Array>;
  /** Serves on `primary` again: the lost primary and the fallback are disposed. */
  restore(primary: InferenceBackend): void;
  dispose(): void;
}

export interface ServiceOptions {
  /** Opens the fallback backend after a device loss (the CPU, uploading the host copy of the weights). */
  openFallback: () => Promise<InferenceBackend>;
  /** False under the `no-fallback` profile: a lost device is never replaced. */
  fallBack: boolean;
}

export function createService(primaryBackend: InferenceBackend, opts: ServiceOptions): InferenceService {
  let primary = primaryBackend;
  let current = primary;
  let opening: Promise<InferenceBackend> | null = null;
  const losses: LossRecord[] = [];
  /** The record of the current primary's loss (one per loss, however many requests fail on it). */
  let loss: LossRecord | null = null;

  const fallBack = async (err: BackendLostError): Promise<InferenceBackend> => {
    if (!loss) {
      loss = { lost: err.backend, detectedAt: performance.now(), fallback: null, readyAt: null, error: null };
      losses.push(loss);
    }
    const rec = loss;
    if (!opts.fallBack) throw err;
    try {
      const fb = await opts.openFallback();
      rec.fallback = fb.name;
      rec.readyAt = performance.now();
      return fb;
    } catch (e) {
      rec.error = e instanceof Error ? e.message : String(e);
      throw e;
    }
  };

  return {
    get backend() {
      return current;
    },
    get primary() {
      return primary;
    },
    losses,
    async predict(input, batch) {
      const serving = current;
      try {
        return await serving.predict(input, batch);
      } catch (e) {
        if (!(e instanceof BackendLostError) || serving !== primary) throw e;
        if (current === serving) {
          opening ??= fallBack(e).finally(() => {
            opening = null;
          });
          current = await opening;
        }
        return current.predict(input, batch);
      }
    },
    restore(next) {
      if (current !== primary) current.dispose();
      primary.dispose();
      primary = next;
      current = next;
      loss = null;
    },
    dispose() {
      if (current !== primary) current.dispose();
      primary.dispose();
    },
  };
}
