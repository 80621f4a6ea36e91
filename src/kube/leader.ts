/**
 * Leader election on a `coordination.k8s.io/v1` Lease, after client-go's leaderelection package
 * (which controller-runtime uses); @kubernetes/client-node has none of its own.
 *
 * - Every `retryPeriodMs` (with up to 20% jitter) a candidate reads the Lease; creates it when
 *   missing; takes it over when it has no holder or the holder has not renewed it within the
 *   holder's `leaseDurationSeconds`; the leader renews it. Writes are replaces carrying the read
 *   `resourceVersion`, so of two candidates racing, the second gets a 409 and loses.
 * - Expiry is judged on this process's own clock, from when it last *saw the record change*
 *   (not from `renewTime`, written by another machine's clock): clock skew cannot steal a lease.
 * - A leader that cannot renew within `renewDeadlineMs` stops leading: `onStoppedLeading` runs and
 *   `run()` returns (the operator should then exit, as controller-runtime does, rather than keep
 *   reconciling with a lease it no longer holds). The leading `AbortSignal` is aborted first.
 * - `stop()` (graceful shutdown) releases the Lease when held: holder empty, `leaseDurationSeconds`
 *   1, so a waiting candidate takes over at its next retry instead of after a whole lease.
 * - A renewal cannot outlast the renew deadline: its requests are aborted when the deadline comes
 *   (a hung API server no longer keeps a leader that cannot renew), and every Lease request has
 *   the renew deadline as its time limit. So leadership ends at most a renew deadline after the
 *   last renewal, before the Lease expires for the others (lease duration > renew deadline).
 * - The leading signal (`onStartedLeading(signal)`) is aborted before `onStoppedLeading` runs:
 *   whoever gave it to their API clients (kube/client.ts `makeApiClient`) sends nothing after.
 *
 * Time (now, timers) goes through an injectable `Clock` and the Lease requests through an
 * injectable `LeaseApi`, so a unit test drives a term deterministically.
 *
 * Defaults are controller-runtime's: lease 15 s, renew deadline 10 s, retry 2 s.
 */
import {
  CoordinationV1Api, KubeConfig, V1MicroTime, type V1Lease,
} from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { createLogger } from '../log.ts';
import { describeError, isConflict, isNotFound, makeApiClient, withSignal } from './client.ts';
import { realClock, type Clock } from './queue.ts';

/** The three Lease requests the election makes; `signal` aborts one. */
export interface LeaseApi {
  read(namespace: string, name: string, signal: AbortSignal): Promise<V1Lease>;
  create(namespace: string, body: V1Lease, signal: AbortSignal): Promise<V1Lease>;
  replace(namespace: string, name: string, body: V1Lease, signal: AbortSignal): Promise<V1Lease>;
}

/** The Lease requests over client-node, each limited to `timeoutMs`. */
export function kubeLeaseApi(kc: KubeConfig, timeoutMs: number): LeaseApi {
  const api = makeApiClient(kc, CoordinationV1Api, { timeoutMs });
  return {
    read: (namespace, name, signal) => api.readNamespacedLease({ name, namespace }, withSignal(signal)),
    create: (namespace, body, signal) => api.createNamespacedLease({ namespace, body }, withSignal(signal)),
    replace: (namespace, name, body, signal) => api.replaceNamespacedLease({ name, namespace, body }, withSignal(signal)),
  };
}

export interface LeaderElectionOptions {
  /** The cluster (its Lease API is built over it); or `leaseApi`. */
  kc?: KubeConfig;
  leaseApi?: LeaseApi;
  clock?: Clock;
  namespace: string;
  /** The Lease's name (e.g. `swarmbench-operator`). */
  name: string;
  /** This candidate's identity: unique per process (default: hostname + pid + random). */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Release the Lease on stop() (default true). */
  releaseOnStop?: boolean;
  /** Called once leadership is acquired; the signal aborts when it is lost or stop() is called. */
  onStartedLeading?: (signal: AbortSignal) => void | Promise<void>;
  /** Called once when leadership ends (lost or released). */
  onStoppedLeading?: () => void;
  /** Called when the observed holder changes (including to this candidate, and to '' on release). */
  onNewLeader?: (identity: string) => void;
  log?: Logger;
}

export class LeaderElector {
  readonly identity: string;
  readonly namespace: string;
  readonly name: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;

  private readonly api: LeaseApi;
  private readonly clock: Clock;
  private readonly opts: LeaderElectionOptions;
  private readonly log: Logger;
  private leading = false;
  private stopped = false;
  private observed: { holder: string; resourceVersion: string; leaseDurationMs: number } | undefined;
  private observedAt = 0;
  private lastRenew = 0;
  private leadingController: AbortController | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  /** Set when leadership was acquired / lost (for tests and logs). */
  acquiredAt: number | undefined;
  lostAt: number | undefined;

  constructor(opts: LeaderElectionOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.namespace = opts.namespace;
    this.name = opts.name;
    this.identity = opts.identity ?? defaultIdentity();
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) throw new Error('leader election: leaseDuration must be greater than renewDeadline');
    if (!(this.renewDeadlineMs > this.retryPeriodMs * 1.2)) throw new Error('leader election: renewDeadline must be greater than retryPeriod * 1.2');
    if (this.leaseDurationMs < 1000) throw new Error('leader election: leaseDuration must be at least 1 s (the Lease counts whole seconds)');
    if (opts.leaseApi) this.api = opts.leaseApi;
    else if (opts.kc) this.api = kubeLeaseApi(opts.kc, this.renewDeadlineMs);
    else throw new Error('leader election: give kc or leaseApi');
    this.log = opts.log ?? createLogger({ component: 'leader-election', lease: `${opts.namespace}/${opts.name}`, identity: this.identity });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Milliseconds since the last successful renewal while leading; undefined when not leading. */
  msSinceRenew(): number | undefined {
    return this.leading ? this.clock.now() - this.lastRenew : undefined;
  }

  /** The holder this candidate last saw in the Lease ('' for none). */
  observedLeader(): string | undefined {
    return this.observed?.holder;
  }

  /**
   * Campaigns until leading, then renews until leadership is lost or `stop()` is called.
   * Resolves when this candidate is done (it does not campaign again after losing).
   */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops campaigning/renewing; releases the Lease when held (unless releaseOnStop is false). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  /**
   * Stops renewing without releasing and without calling anything (what a crashed or partitioned
   * leader looks like to the others). For tests.
   */
  abandon(): void {
    this.stopped = true;
    this.opts.releaseOnStop = false;
    this.leading = false;
    this.leadingController?.abort();
    this.wake?.();
  }

  private async loop(): Promise<void> {
    // Acquire
    let acquired = false;
    while (!this.stopped) {
      if ((acquired = await this.tryAcquireOrRenew())) break;
      await this.pause(jitter(this.retryPeriodMs));
    }
    if (this.stopped) {
      // stop() while the winning write was in flight: give it back at once.
      if (acquired && this.opts.releaseOnStop !== false) await this.release();
      return;
    }
    this.leading = true;
    this.acquiredAt = this.clock.now();
    this.lastRenew = this.clock.now();
    this.leadingController = new AbortController();
    this.log.info('leader election: started leading');
    try {
      const r = this.opts.onStartedLeading?.(this.leadingController.signal);
      if (r && typeof (r as Promise<void>).catch === 'function') {
        (r as Promise<void>).catch((e: unknown) => this.log.warn('leader election: onStartedLeading failed', { error: String(e) }));
      }
    } catch (e) {
      this.log.warn('leader election: onStartedLeading threw', { error: String(e) });
    }

    // Renew
    while (!this.stopped) {
      await this.pause(this.retryPeriodMs);
      if (this.stopped) break;
      const deadline = this.lastRenew + this.renewDeadlineMs;
      let renewed = false;
      // Retry within the renew deadline (client-go retries every retryPeriod until the deadline);
      // requests still running at the deadline are aborted.
      const attempt = new AbortController();
      const timer = this.clock.setTimeout(() => attempt.abort(new Error('renew deadline passed')), Math.max(0, deadline - this.clock.now()));
      try {
        while (!this.stopped && this.clock.now() < deadline) {
          if (await this.tryAcquireOrRenew(attempt.signal)) {
            renewed = true;
            this.lastRenew = this.clock.now();
            break;
          }
          if (!this.leading) break; // someone else holds it now
          await this.pause(Math.min(jitter(this.retryPeriodMs / 2), Math.max(0, deadline - this.clock.now())));
        }
      } finally {
        this.clock.clearTimeout(timer);
      }
      if (this.stopped) break;
      if (!renewed) {
        this.log.warn('leader election: lost leadership', { deadlineMs: this.renewDeadlineMs, holder: this.observed?.holder });
        this.endLeading();
        return;
      }
    }

    // Graceful stop: the term's signal first (nothing more is sent under it), then the Lease goes.
    this.leadingController?.abort(new Error('leader election stopped'));
    if (this.leading && this.opts.releaseOnStop !== false) await this.release();
    this.endLeading();
  }

  private endLeading(): void {
    const was = this.leading || this.acquiredAt !== undefined;
    this.leading = false;
    this.lostAt ??= this.clock.now();
    this.leadingController?.abort(new Error('leadership lost'));
    if (was) {
      try {
        this.opts.onStoppedLeading?.();
      } catch (e) {
        this.log.warn('leader election: onStoppedLeading threw', { error: String(e) });
      }
    }
  }

  /** One attempt: true when this candidate holds the Lease afterwards. */
  private async tryAcquireOrRenew(signal: AbortSignal = new AbortController().signal): Promise<boolean> {
    const now = new V1MicroTime(this.clock.now());
    const durationS = Math.ceil(this.leaseDurationMs / 1000);
    let lease: V1Lease;
    try {
      lease = await this.api.read(this.namespace, this.name, signal);
    } catch (e) {
      if (!isNotFound(e)) {
        this.log.warn('leader election: cannot read the Lease', { error: describeError(e) });
        return false;
      }
      try {
        const created = await this.api.create(
          this.namespace,
          {
            metadata: { name: this.name, namespace: this.namespace },
            spec: { holderIdentity: this.identity, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
          signal,
        );
        this.see(created);
        return true;
      } catch (e2) {
        if (!isConflict(e2)) this.log.warn('leader election: cannot create the Lease', { error: describeError(e2) });
        return false;
      }
    }
    this.see(lease);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const mine = holder === this.identity;
    if (!mine && this.leading) {
      // Someone else holds it now (it expired on their clock, or was taken): we lead no more.
      this.leading = false;
      return false;
    }
    if (!mine && holder !== '' && this.clock.now() < this.observedAt + this.observed!.leaseDurationMs) return false; // held, not expired
    const body: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: durationS,
        renewTime: now,
        acquireTime: mine ? spec.acquireTime : now,
        leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      const updated = await this.api.replace(this.namespace, this.name, body, signal);
      this.see(updated);
      return true;
    } catch (e) {
      if (!isConflict(e)) this.log.warn('leader election: cannot update the Lease', { error: describeError(e) });
      return false; // 409: someone else wrote first (resourceVersion precondition)
    }
  }

  private async release(): Promise<void> {
    try {
      const signal = new AbortController().signal;
      const lease = await this.api.read(this.namespace, this.name, signal);
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = new V1MicroTime(this.clock.now());
      await this.api.replace(this.namespace, this.name, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now } }, signal);
      this.log.info('leader election: released the Lease');
    } catch (e) {
      this.log.warn('leader election: release failed (the lease will expire)', { error: describeError(e) });
    }
  }

  private see(lease: V1Lease): void {
    const holder = lease.spec?.holderIdentity ?? '';
    const rv = lease.metadata?.resourceVersion ?? '';
    if (!this.observed || this.observed.resourceVersion !== rv) {
      const prev = this.observed?.holder;
      this.observed = { holder, resourceVersion: rv, leaseDurationMs: (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)) * 1000 };
      this.observedAt = this.clock.now();
      if (prev !== holder) {
        try {
          this.opts.onNewLeader?.(holder);
        } catch {
          // an observer's failure must not stop the election
        }
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const clock = this.clock;
      const t = clock.setTimeout(done, ms);
      function done(): void {
        clock.clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}

function jitter(ms: number): number {
  return ms * (1 + 0.2 * Math.random());
}

function defaultIdentity(): string {
  const host = process.env.POD_NAME || process.env.HOSTNAME || 'swarmbench';
  return `${host}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}
