import { afterEach, describe, expect, it } from 'vitest';
import type { LeaderElector } from '../../src/kube/leader.ts';
import { WorkQueue } from '../../src/kube/queue.ts';
import { evaluateChecks, leaderHealthCheck, OperatorMetrics, type OperatorServer, startServer, syncedCheck } from '../../src/operator/server.ts';

const get = async (url: string): Promise<{ status: number; body: string; type: string | null }> => {
  const r = await fetch(url);
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
};

describe('operator server and metrics', () => {
  let srv: OperatorServer | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  it('/metrics: reconcile counters by result, errors, time histogram, queue depth, leader status, runs by phase', async () => {
    const m = new OperatorMetrics();
    const q = new WorkQueue({ name: 'benchmarkrun', baseDelayMs: 60_000 });
    m.trackQueue(q);
    const leading = { v: true };
    m.trackLeader({ name: 'swarmbench-operator', isLeader: () => leading.v } as unknown as LeaderElector);
    let n = 0;
    const calls: string[] = [];
    const running = q.run(async (key) => {
      calls.push(key);
      n++;
      if (key === 'ns/bad') throw new Error('boom');
      if (key === 'ns/later') return { requeueAfterMs: 60_000 };
    }, { onDone: m.onDone('benchmarkrun') });
    q.add('ns/a');
    q.add('ns/bad');
    q.add('ns/later');
    const end = Date.now() + 5000;
    while (n < 3 && Date.now() < end) await new Promise((r) => setImmediate(r));
    await q.shutdown();
    await running;
    // Three keys waiting for the depth gauge (a shut-down queue takes none, so use another).
    const q2 = new WorkQueue({ name: 'other' });
    q2.add('x');
    q2.add('y');
    q2.add('x');
    m.trackQueue(q2);
    m.setRunPhases(['Running', 'Running', 'Succeeded', undefined]);

    srv = await startServer({ metrics: m, port: 0, host: '127.0.0.1' });
    const r = await get(`${srv.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/text\/plain/);
    const t = r.body;
    expect(t).toMatch(/^controller_runtime_reconcile_total\{controller="benchmarkrun",result="success"\} 1$/m);
    expect(t).toMatch(/^controller_runtime_reconcile_total\{controller="benchmarkrun",result="error"\} 1$/m);
    expect(t).toMatch(/^controller_runtime_reconcile_total\{controller="benchmarkrun",result="requeue_after"\} 1$/m);
    expect(t).toMatch(/^controller_runtime_reconcile_errors_total\{controller="benchmarkrun"\} 1$/m);
    expect(t).toMatch(/^controller_runtime_reconcile_time_seconds_count\{controller="benchmarkrun"\} 3$/m);
    expect(t).toMatch(/^controller_runtime_reconcile_time_seconds_bucket\{le="0\.005",controller="benchmarkrun"\} \d+$/m);
    expect(t).toMatch(/^workqueue_depth\{name="benchmarkrun"\} 0$/m);
    expect(t).toMatch(/^workqueue_depth\{name="other"\} 2$/m);
    expect(t).toMatch(/^leader_election_master_status\{name="swarmbench-operator"\} 1$/m);
    expect(t).toMatch(/^swarmbench_runs\{phase="Running"\} 2$/m);
    expect(t).toMatch(/^swarmbench_runs\{phase="Pending"\} 1$/m);
    expect(t).toMatch(/^swarmbench_runs\{phase="Failed"\} 0$/m);
    leading.v = false;
    expect((await get(`${srv.url}/metrics`)).body).toMatch(/^leader_election_master_status\{name="swarmbench-operator"\} 0$/m);
    m.setRunPhases([]);
    expect((await get(`${srv.url}/metrics`)).body).toMatch(/^swarmbench_runs\{phase="Running"\} 0$/m);
  });

  it('/readyz follows the informers; /healthz the leader renew check; unknown paths 404', async () => {
    const informers = [{ name: 'benchmarkruns', synced: false }, { name: 'jobs', synced: true }].map((i) => ({ name: i.name, hasSynced: () => i.synced, i }));
    const elector = { leading: true, age: 1000, renewDeadlineMs: 10_000 };
    const fakeElector = { isLeader: () => elector.leading, msSinceRenew: () => (elector.leading ? elector.age : undefined), renewDeadlineMs: elector.renewDeadlineMs } as unknown as LeaderElector;
    srv = await startServer({
      metrics: new OperatorMetrics(), port: 0, host: '127.0.0.1',
      readyChecks: { informers: syncedCheck(informers) },
      healthChecks: { 'leader-election': leaderHealthCheck(fakeElector, 5000) },
    });
    let r = await get(`${srv.url}/readyz`);
    expect(r.status).toBe(503);
    expect(r.body).toContain('[-]informers failed: not synced: benchmarkruns');
    informers[0]!.i.synced = true;
    r = await get(`${srv.url}/readyz?verbose`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('[+]informers ok\nok\n');

    expect((await get(`${srv.url}/healthz`)).status).toBe(200);
    elector.age = 16_000; // past deadline + grace: the renew loop is stuck
    r = await get(`${srv.url}/healthz`);
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/\[-\]leader-election failed: lease not renewed for 16000 ms/);
    elector.leading = false; // a standby is healthy
    expect((await get(`${srv.url}/healthz`)).status).toBe(200);
    expect((await get(`${srv.url}/nope`)).status).toBe(404);
  });

  it('checks: a throwing check fails with its message; no checks is ok', () => {
    expect(evaluateChecks({})).toEqual({ ok: true, body: 'ok\n' });
    const r = evaluateChecks({ a: () => true, b: () => { throw new Error('kaputt'); }, c: () => false });
    expect(r.ok).toBe(false);
    expect(r.body).toBe('[+]a ok\n[-]b failed: kaputt\n[-]c failed\ncheck failed\n');
  });
});
