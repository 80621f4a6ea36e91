/**
 * A leader that loses its Lease makes no write after `onStoppedLeading` (issue 13): the election
 * (src/kube/leader.ts) on a fake clock over an in-memory Lease, the term's signal handed to the
 * work queue (src/kube/queue.ts) and to the operator's cluster (src/operator/cluster.ts
 * `KubeRunCluster`, its requests over src/kube/client.ts `makeApiClient`), against an HTTP
 * stand-in that counts the writes it receives. A reconcile blocks after its first write; the
 * Lease API hangs, so the renewal cannot finish; at the renew deadline the renewal is aborted and
 * leadership ends; the reconcile resumes and its write is refused before it is sent.
 */
import { createServer, type Server } from 'node:http';
import { type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isRefused } from '../../src/kube/client.ts';
import { LeaderElector, type LeaseApi } from '../../src/kube/leader.ts';
import { WorkQueue } from '../../src/kube/queue.ts';
import { KubeRunCluster } from '../../src/operator/cluster.ts';
import { listenKube } from '../support/kube-stub.ts';
import { FakeClock } from '../support/fake-clock.ts';

const quiet = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} } as never;

/** A Lease kept in memory; with `hang`, every request waits until its signal aborts it. */
class MemoryLease implements LeaseApi {
  lease: V1Lease | undefined;
  hang = false;
  private rv = 1;
  requests = 0;
  private answer<T>(signal: AbortSignal, value: () => T): Promise<T> {
    this.requests++;
    if (!this.hang) {
      try {
        return Promise.resolve(value());
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  }
  read(_ns: string, _name: string, signal: AbortSignal): Promise<V1Lease> {
    return this.answer(signal, () => {
      if (!this.lease) throw Object.assign(new Error('not found'), { statusCode: 404 });
      return structuredClone(this.lease);
    });
  }
  create(_ns: string, body: V1Lease, signal: AbortSignal): Promise<V1Lease> {
    return this.answer(signal, () => (this.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++this.rv) } }));
  }
  replace(_ns: string, _name: string, body: V1Lease, signal: AbortSignal): Promise<V1Lease> {
    return this.answer(signal, () => (this.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++this.rv) } }));
  }
}
let server: Server;
let kc: KubeConfig;
/** Writes (anything but GET) the stand-in received, and whether leadership had stopped by then. */
const writes: { method: string; path: string; afterStop: boolean }[] = [];
let stopped = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    req.resume();
    req.on('end', () => {
      if (req.method !== 'GET') writes.push({ method: req.method ?? '', path: url.pathname, afterStop: stopped });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'r', namespace: 'ns', uid: 'u', resourceVersion: '5' }, status: {} }));
    });
  });
  kc = await listenKube(server);
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

beforeEach(() => {
  writes.length = 0;
  stopped = false;
});

/** Lets promise chains and real I/O run (the fake clock does not move). */
const flush = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 2));
};

async function until(what: string, fn: () => boolean, clock?: FakeClock): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (fn()) return;
    clock?.advance(0);
    await flush(1);
  }
  throw new Error(`never happened: ${what}`);
}

describe('leadership loss stops every write', () => {
  it('a slow reconcile that resumes after the Lease was lost sends nothing; the queue hands out nothing more', async () => {
    const clock = new FakeClock(1_000_000);
    const lease = new MemoryLease();
    let gate!: () => void;
    const blocked = new Promise<void>((r) => (gate = r));
    const outcomes: { key: string; error?: unknown }[] = [];
    let queue: WorkQueue | undefined;
    let workers: Promise<void> | undefined;
    let termSignal: AbortSignal | undefined;
    let writesAtStop = -1;

    const elector = new LeaderElector({
      leaseApi: lease, clock, namespace: 'ns', name: 'op', identity: 'me', log: quiet,
      leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000,
      onStartedLeading: (signal) => {
        termSignal = signal;
        // What main.ts does for a term: a cluster and workers bound to the term's signal.
        const cluster = new KubeRunCluster(kc, undefined, { signal });
        queue = new WorkQueue({ clock });
        workers = queue.run(
          async (key, s) => {
            expect(s).toBe(signal);
            await cluster.patchRunStatus('ns', 'r', { phase: 'Running' }); // sent while leading
            await blocked; // the slow part of the reconcile
            await cluster.patchRunStatus('ns', 'r', { phase: 'Succeeded' }); // after the loss: refused
            await cluster.create('ConfigMap', { metadata: { name: 'export', namespace: 'ns' } });
          },
          { signal, onDone: (key, _o, _s, error) => outcomes.push({ key, error }) },
        );
        queue.add('ns/r');
        queue.add('ns/other'); // waits behind the slow one (concurrency 1): never handed out
      },
      onStoppedLeading: () => {
        stopped = true;
        writesAtStop = writes.length;
      },
    });
    const running = elector.run();
    await until('leading', () => elector.isLeader() && writes.length === 1, clock);
    expect(writes[0]).toMatchObject({ method: 'PATCH', afterStop: false });

    // The API server stops answering the Lease requests: the renewal hangs.
    lease.hang = true;
    clock.advance(2_000); // the renew pause ends: a renewal starts and hangs
    await flush();
    expect(elector.isLeader()).toBe(true);
    clock.advance(7_999);
    await flush();
    expect(elector.isLeader()).toBe(true); // just before the deadline
    clock.advance(1); // the renew deadline: the hung renewal is aborted, leadership ends
    await until('leadership ended', () => stopped, clock);
    await running;
    expect(termSignal!.aborted).toBe(true);
    expect(elector.isLeader()).toBe(false);

    gate(); // the reconcile resumes
    await until('the workers return', () => outcomes.length === 1, clock);
    await workers;
    await flush();
    expect(writesAtStop).toBe(1);
    expect(writes.filter((w) => w.afterStop)).toEqual([]);
    expect(writes).toHaveLength(1);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.key).toBe('ns/r');
    expect(isRefused(outcomes[0]!.error)).toBe(true);
    expect((outcomes[0]!.error as Error).message).toMatch(/PATCH .*benchmarkruns\/r\/status: not sent.*leadership lost/);
    expect(queue!.isShuttingDown()).toBe(true);
    expect(queue!.pendingDelayed()).toBe(0); // the refused key is not retried
  });

  it('a graceful stop aborts the term before it gives the Lease back', async () => {
    const clock = new FakeClock(1_000_000);
    const lease = new MemoryLease();
    let termSignal: AbortSignal | undefined;
    const elector = new LeaderElector({
      leaseApi: lease, clock, namespace: 'ns', name: 'op', identity: 'me', log: quiet,
      onStartedLeading: (signal) => void (termSignal = signal),
    });
    const running = elector.run();
    await until('leading', () => elector.isLeader(), clock);
    let abortedAtRelease: boolean | undefined;
    const replace = lease.replace.bind(lease);
    lease.replace = (ns, name, body, signal) => {
      if (body.spec?.holderIdentity === '') abortedAtRelease = termSignal!.aborted;
      return replace(ns, name, body, signal);
    };
    const stopping = elector.stop();
    await until('stopped', () => abortedAtRelease !== undefined, clock);
    await stopping;
    await running;
    expect(abortedAtRelease).toBe(true);
    expect(lease.lease?.spec?.holderIdentity).toBe('');
  });
});
