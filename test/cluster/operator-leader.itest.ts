/**
 * Leader election on a real Lease (test cluster: `npm run cluster:up`, then `npm run test:cluster`):
 * two candidates, one leads; a leader that stops renewing (crashed) is replaced within the lease
 * duration; a graceful stop releases the Lease and hands over within a retry period; a leader
 * whose Lease is taken stops leading and returns.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBECONFIG } from './lib/config.ts';
import { LeaderElector, type LeaderElectionOptions } from '../../src/kube/leader.ts';
import { clusterNotUp, until as untilBase } from './lib/itest.ts';

const notUp = await clusterNotUp();
if (notUp && process.env.SWARMBENCH_REQUIRE_CLUSTER === '1') throw new Error(`the test cluster is not up (${notUp}); run npm run cluster:up`);
const title = notUp ? `operator leader election [SKIPPED: cluster not up: ${notUp}; run npm run cluster:up]` : 'operator leader election';

/** The shared poll-until-deadline, with this file's defaults (30_000 ms, every 20 ms). */
const until = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 20): Promise<T> =>
  untilBase(what, fn, timeoutMs, everyMs);
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

describe.skipIf(!!notUp)(title, () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  let leases: CoordinationV1Api;
  const ns = `optest-lease-${Date.now().toString(36)}`;
  const all: LeaderElector[] = [];

  /** A candidate that records when it led, and whether two ever led at once. */
  const state = { leading: new Set<string>(), overlaps: 0 };
  function candidate(identity: string, lease: string, o: Partial<LeaderElectionOptions> = {}): LeaderElector & { startedAt?: number; stoppedAt?: number } {
    const e: LeaderElector & { startedAt?: number; stoppedAt?: number } = new LeaderElector({
      kc, namespace: ns, name: lease, identity, leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 250, log: quiet,
      onStartedLeading: () => {
        if (state.leading.size > 0) state.overlaps++;
        state.leading.add(identity);
        e.startedAt = Date.now();
      },
      onStoppedLeading: () => {
        state.leading.delete(identity);
        e.stoppedAt = Date.now();
      },
      ...o,
    });
    all.push(e);
    return e;
  }
  const holder = async (lease: string): Promise<string | undefined> => (await leases.readNamespacedLease({ name: lease, namespace: ns })).spec?.holderIdentity;

  beforeAll(async () => {
    kc.loadFromFile(KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    leases = kc.makeApiClient(CoordinationV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });
  afterAll(async () => {
    for (const e of all) e.abandon();
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('two candidates: exactly one leads; a leader that stops renewing is replaced within the lease duration', async () => {
    const a = candidate('a', 'crash');
    const b = candidate('b', 'crash');
    const runs = [a.run(), b.run()]; // both race to create the Lease: one create gets a 409
    const first = await until('a leader', () => (a.isLeader() ? a : b.isLeader() ? b : undefined));
    const second = first === a ? b : a;
    expect(await holder('crash')).toBe(first.identity);
    // Several renewals later, still exactly one.
    const rv0 = (await leases.readNamespacedLease({ name: 'crash', namespace: ns })).metadata?.resourceVersion;
    await until('three renewals', async () => {
      const l = await leases.readNamespacedLease({ name: 'crash', namespace: ns });
      return Number(l.metadata?.resourceVersion) > Number(rv0) + 2 && l.spec?.holderIdentity === first.identity;
    });
    expect(second.isLeader()).toBe(false);
    expect(state.overlaps).toBe(0);

    const killed = Date.now();
    first.abandon(); // no more renewals, no release: a crash as the others see it
    await until('the other candidate leads', () => second.isLeader(), 10_000);
    const handoverMs = second.startedAt! - killed;
    console.log(`leader handover after a crash: ${handoverMs} ms (lease 2000 ms, retry 250 ms)`);
    // Not before the lease could have expired (its last renewal was at most ~one retry before the crash)...
    expect(handoverMs).toBeGreaterThanOrEqual(2000 - 2 * 300);
    // ...and within the lease duration plus a couple of retry periods.
    expect(handoverMs).toBeLessThan(2000 + 3 * 300 + 1000);
    expect(await holder('crash')).toBe(second.identity);
    const l = await leases.readNamespacedLease({ name: 'crash', namespace: ns });
    expect(l.spec?.leaseTransitions).toBe(1);
    expect(state.overlaps).toBe(0);
    await second.stop();
    await Promise.all(runs);
  });

  it('a graceful stop releases the Lease: the waiting candidate takes over within a retry period, not a lease duration', async () => {
    const long = { leaseDurationMs: 8000, renewDeadlineMs: 5000, retryPeriodMs: 250 };
    const a = candidate('ga', 'graceful', long);
    const ra = a.run();
    await until('ga leads', () => a.isLeader());
    const b = candidate('gb', 'graceful', long);
    const rb = b.run();
    await until('gb has seen ga hold the lease', () => b.observedLeader() === 'ga');
    const t0 = Date.now();
    await a.stop();
    await ra;
    expect(a.isLeader()).toBe(false);
    expect(a.stoppedAt).toBeDefined();
    await until('gb leads', () => b.isLeader(), 8000);
    const handoverMs = b.startedAt! - t0;
    console.log(`leader handover after a graceful release: ${handoverMs} ms (lease 8000 ms, retry 250 ms)`);
    expect(handoverMs).toBeLessThan(1500);
    await b.stop();
    await rb;
    expect((await leases.readNamespacedLease({ name: 'graceful', namespace: ns })).spec?.holderIdentity).toBe('');
  });

  it('a leader whose Lease was taken stops leading: onStoppedLeading, the signal aborts, run() returns', async () => {
    let signal: AbortSignal | undefined;
    let onStopped!: () => void;
    const stopped = new Promise<void>((r) => (onStopped = r));
    const a = candidate('victim', 'taken', { onStartedLeading: (s) => void (signal = s), onStoppedLeading: () => onStopped() });
    const ra = a.run();
    await until('victim leads', () => a.isLeader());
    const l = await leases.readNamespacedLease({ name: 'taken', namespace: ns });
    await leases.replaceNamespacedLease({ name: 'taken', namespace: ns, body: { ...l, spec: { ...l.spec, holderIdentity: 'intruder', leaseDurationSeconds: 60 } } });
    await stopped;
    await ra;
    expect(a.isLeader()).toBe(false);
    expect(signal?.aborted).toBe(true);
    expect(await holder('taken')).toBe('intruder'); // it did not fight back
  });

  it('rejects timings that cannot work', () => {
    expect(() => new LeaderElector({ kc, namespace: ns, name: 'x', leaseDurationMs: 1000, renewDeadlineMs: 2000 })).toThrow(/leaseDuration/);
    expect(() => new LeaderElector({ kc, namespace: ns, name: 'x', renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(/renewDeadline/);
  });
});
