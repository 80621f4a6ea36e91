/**
 * Notifications wired into the reconcile (src/operator/reconcile.ts step 10, notify.ts
 * `notifyFinished`; admission's `admitNotify` in step 2), against the in-memory cluster of
 * test/support/fake-cluster.ts and a real HTTP receiver on 127.0.0.1: the reconcile of a finished
 * run queues its notifications and returns while the receiver still holds the request; what
 * settled is recorded in status.notifications (with an event) by the reconcile its `onSettled`
 * asks for; a restarted operator sends what was not recorded, with the same id and body, and never
 * again what was; an API server that drops the field does not make it send again; a Secret that
 * does not consent is SpecInvalid naming the field.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { NotificationRecord } from '../../src/api/notify.ts';
import type { BenchmarkRunSpec } from '../../src/api/schema.ts';
import type { Logger } from '../../src/log.ts';
import { eventId, NOTIFY_RECHECK_MS, notifySettingsOf, type CloudEvent } from '../../src/operator/notify.ts';
import { Notifier } from '../../src/operator/notify-sender.ts';
import { CONSUMER_LABEL, DEFAULT_ADMISSION, type AdmissionSettings } from '../../src/operator/policy.ts';
import { Reconciler } from '../../src/operator/reconcile.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { act, KEY, NAME, NS, POLL, reasons, silent, World } from '../support/reconcile-world.ts';

const SPEC: BenchmarkRunSpec = {
  mode: 'quick',
  categories: ['integration'],
  notify: [{ secretRef: { name: 'hook', key: 'url' }, events: ['finished', 'failed'] }],
};
const ADMISSION: AdmissionSettings = { ...DEFAULT_ADMISSION, notifySecrets: ['hook'], notifications: { ...DEFAULT_ADMISSION.notifications, allowLoopback: true } };

interface Got {
  id: string;
  body: string;
  status: number;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** A receiver: answers `answer()` (a status, or 'hold' until `release`). */
async function receiver(answer: () => number | 'hold') {
  const got: Got[] = [];
  const held: [ServerResponse, Got][] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const a = answer();
      const g: Got = { id: (JSON.parse(body) as CloudEvent).id, body, status: a === 'hold' ? 0 : a };
      got.push(g);
      if (a === 'hold') return void held.push([res, g]);
      res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T0K3N`,
    got,
    held: () => held.length,
    release(status: number) {
      for (const [res, g] of held.splice(0)) {
        g.status = status;
        res.writeHead(status).end();
      }
    },
    /** Requests answered 2xx, by event id. */
    delivered(): Record<string, number> {
      const out: Record<string, number> = {};
      for (const g of got) if (g.status >= 200 && g.status < 300) out[g.id] = (out[g.id] ?? 0) + 1;
      return out;
    },
  };
}

/** One operator process: its Notifier (fast retries) and the runs its `onSettled` enqueued. */
function operatorNotify(admission = ADMISSION) {
  const woken: string[] = [];
  const settings = notifySettingsOf(admission);
  const notifier = new Notifier({ log: silent, policy: settings.policy, baseDelayMs: 20, maxDelayMs: 50, timeoutMs: 5_000, onSettled: (s) => woken.push(s.runKey) });
  closers.push(() => notifier.close());
  return { woken, notifier, settings };
}

function world(n: ReturnType<typeof operatorNotify>, url: string, labels: Record<string, string> = { [CONSUMER_LABEL]: 'true' }): World {
  const w = new World(SPEC, { reconciler: { admission: ADMISSION, notify: { notifier: n.notifier, settings: n.settings } } });
  w.fake.put('Secret', { metadata: { name: 'hook', namespace: NS, labels }, data: { url: Buffer.from(url).toString('base64') } });
  return w;
}

/** A second operator over the same cluster (the first one died). */
function restart(w: World, n: ReturnType<typeof operatorNotify>): Reconciler {
  return new Reconciler({ cluster: w.fake, images: { image: 'reg/sb:1', gpuImage: 'reg/sb-gpu:1' }, log: silent, version: '9.9.9', now: () => new Date(w.clock), pollMs: POLL, admission: ADMISSION, notify: { notifier: n.notifier, settings: n.settings } });
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const records = (w: World): NotificationRecord[] => ((w.status as { notifications?: NotificationRecord[] }).notifications ?? []);

describe('notifications through the reconcile', () => {
  it('a finished run: queued without waiting on the receiver, delivered once per event, recorded with an event; nothing sent again', async () => {
    const r = await receiver(() => 'hold');
    const n = operatorNotify();
    const w = world(n, r.url);
    await w.settle();
    await w.finish(['5.1']);
    expect(w.status.phase).toBe('Failed');
    expect(r.got).toHaveLength(0);

    // The reconcile of the finished run queues both events and returns while the receiver holds them.
    const o1 = await act(w);
    expect(o1.result).toEqual({ requeueAfterMs: NOTIFY_RECHECK_MS });
    expect(o1.patches).toEqual([]);
    await until('both requests to be held', () => r.held() === 2);
    const uid = w.run.metadata.uid;
    expect(r.got.map((g) => g.id).sort()).toEqual([eventId(uid, 1, 'failed'), eventId(uid, 1, 'finished')]);
    const ce = JSON.parse(r.got.find((g) => g.id.endsWith('.finished'))!.body) as CloudEvent;
    expect(ce).toMatchObject({ specversion: '1.0', type: 'dev.swarmbench.run.finished', subject: NAME, time: w.status.finishedAt });
    expect(ce.data).toMatchObject({ namespace: NS, name: NAME, attempt: 1, phase: 'Failed', verdict: 'Failed', reason: 'TargetsMissed', regressions: [] });
    // From the attempt's export: the failed test with its name and reason.
    expect(ce.data.failedTests).toEqual([expect.objectContaining({ id: '5.1', name: expect.any(String), reason: expect.any(String) })]);
    expect(ce.data.summary).toMatchObject({ total: w.status.summary!.total, failed: 1 });
    // Reconciled again before they settle: nothing queued twice, nothing recorded.
    expect((await act(w)).patches).toEqual([]);

    r.release(200);
    await until('both to settle', () => n.woken.length === 2);
    expect(n.woken).toEqual([KEY, KEY]);
    const o2 = await act(w);
    expect(o2.patches).toHaveLength(1);
    expect(records(w).map((x) => [x.event, x.result, x.tries, x.target, x.attempt]).sort()).toEqual([
      ['failed', 'Delivered', 1, 'hook/url:cloudevents', 1],
      ['finished', 'Delivered', 1, 'hook/url:cloudevents', 1],
    ]);
    expect(reasons(o2)).toEqual(['Notified', 'Notified']);
    expect(o2.events[0]!.message).toMatch(/^attempt 1: (finished|failed) notification to hook\/url:cloudevents delivered \(1 try\), id /);
    expect(JSON.stringify(w.run)).not.toContain('T0K3N');
    // The Notifier forgot them once the status held them; later reconciles write and send nothing.
    expect(n.notifier.stats()).toEqual({ held: 0, inFlight: 0, settled: 0 });
    const o3 = await act(w, 2);
    expect(o3.patches).toEqual([]);
    expect(o3.calls.filter((c) => c.op === 'readSecret')).toEqual([]);
    // A new operator: the status says it is done.
    const n2 = operatorNotify();
    await restart(w, n2).reconcile(KEY);
    expect(n2.notifier.stats().held).toBe(0);
    expect(r.got).toHaveLength(2);
    expect(r.delivered()).toEqual({ [eventId(uid, 1, 'finished')]: 1, [eventId(uid, 1, 'failed')]: 1 });
  });

  it('an operator that dies before the delivery settles: the next one sends it again, same id and body, and records it once', async () => {
    let status = 503;
    const r = await receiver(() => status);
    const n1 = operatorNotify();
    const w = world(n1, r.url);
    await w.settle();
    await w.finish();
    expect(w.status.phase).toBe('Succeeded');
    await act(w);
    await until('two refused tries', () => r.got.length >= 2);
    await n1.notifier.close(); // the process is gone: its retries with it
    expect(n1.woken).toEqual([]);
    expect(records(w)).toEqual([]);
    const first = r.got[0]!;

    status = 200;
    const n2 = operatorNotify();
    const op2 = restart(w, n2);
    await op2.reconcile(KEY);
    await until('the new operator to deliver', () => n2.woken.length === 1);
    await op2.reconcile(KEY);
    const uid = w.run.metadata.uid;
    expect(records(w)).toEqual([expect.objectContaining({ id: eventId(uid, 1, 'finished'), event: 'finished', result: 'Delivered', tries: 1 })]);
    expect(r.got.every((g) => g.id === first.id && g.body === first.body)).toBe(true);
    expect(r.delivered()).toEqual({ [first.id]: 1 });
    const sent = r.got.length;
    await op2.reconcile(KEY);
    await restart(w, operatorNotify()).reconcile(KEY);
    expect(r.got).toHaveLength(sent);
  });

  it('an API server that drops status.notifications (an old CRD): the Notifier keeps the delivery, nothing is sent again, a warning says why', async () => {
    const r = await receiver(() => 200);
    const n = operatorNotify();
    const warned: string[] = [];
    const log: Logger = { ...silent, warn: (m: string) => void warned.push(m) };
    const w = new World(SPEC, { reconciler: { admission: ADMISSION, log, notify: { notifier: n.notifier, settings: n.settings } } });
    w.fake.put('Secret', { metadata: { name: 'hook', namespace: NS, labels: { [CONSUMER_LABEL]: 'true' } }, data: { url: Buffer.from(r.url).toString('base64') } });
    await w.settle();
    await w.finish();
    const patch = w.fake.patchRunStatus.bind(w.fake);
    w.fake.patchRunStatus = (ns, name, status) => patch(ns, name, Object.fromEntries(Object.entries(status).filter(([k]) => k !== 'notifications')));
    await act(w);
    await until('delivery', () => n.woken.length === 1);
    await act(w);
    expect(records(w)).toEqual([]);
    expect(warned).toContain('status.notifications was not stored (is the BenchmarkRun CRD up to date?): the notifications stay held, not sent again');
    expect(n.notifier.stats().settled).toBe(1);
    await act(w, 3);
    expect(r.got).toHaveLength(1);
  });

  it('consent withdrawn after admission: recorded Failed with the reason and a NotificationFailed warning, no request', async () => {
    const r = await receiver(() => 200);
    const n = operatorNotify();
    const w = world(n, r.url);
    await w.settle();
    await w.finish();
    w.fake.update('Secret', NS, 'hook', (o) => {
      o.metadata!.labels = {};
    });
    const o = await act(w);
    expect(records(w)).toEqual([expect.objectContaining({ event: 'finished', result: 'Failed', tries: 0, reason: `Secret hook does not consent (no label ${CONSUMER_LABEL}: "true")` })]);
    expect(o.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'NotificationFailed' })]);
    expect(r.got).toHaveLength(0);
    expect((await act(w)).patches).toEqual([]);
  });
});

describe('admission of spec.notify', () => {
  async function admitted(secrets: Record<string, Record<string, string>>, admission: AdmissionSettings, notify: BenchmarkRunSpec['notify']) {
    const fake = new FakeCluster();
    fake.put('BenchmarkRun', { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'r', namespace: NS }, spec: { mode: 'quick', notify } });
    for (const [name, labels] of Object.entries(secrets)) fake.put('Secret', { metadata: { name, namespace: NS, labels }, data: { url: Buffer.from('https://hooks.example.com/T0K3N').toString('base64') } });
    const n = operatorNotify(admission);
    await new Reconciler({ cluster: fake, images: { image: 'i', gpuImage: 'g' }, log: silent, version: '0', pollMs: 1000, admission, notify: n }).reconcile(`${NS}/r`);
    const st = fake.get('BenchmarkRun', NS, 'r')!.status!;
    const ready = (st.conditions as { type: string; reason: string; message: string }[]).find((c) => c.type === 'Ready')!;
    return { fake, st, ready };
  }
  const target = (name: string) => ({ secretRef: { name, key: 'url' } });

  it('a Secret that does not consent, is missing or is not in rbac.notifySecrets is SpecInvalid naming spec.notify[i].secretRef.name; nothing made, no value read', async () => {
    const { fake, st, ready } = await admitted({ quiet: {}, hook: { [CONSUMER_LABEL]: 'true' } }, { ...ADMISSION, notifySecrets: ['hook', 'quiet', 'gone'] }, [target('hook'), target('quiet'), target('gone')]);
    expect(st.phase).toBe('Failed');
    expect(ready.reason).toBe('SpecInvalid');
    expect(ready.message).toMatch(/spec\.notify\[1\]\.secretRef\.name: Secret quiet does not consent to SwarmBench runs \(no label swarmbench\.io\/consumer: "true"\): if its owner agrees, label it: kubectl label secret quiet -n bench swarmbench\.io\/consumer=true/);
    expect(ready.message).toMatch(/spec\.notify\[2\]\.secretRef\.name: Secret gone not found in bench/);
    expect(ready.message).not.toMatch(/spec\.notify\[0\]/);
    expect(fake.calls.filter((c) => c.op === 'create')).toEqual([]);
    expect(fake.calls.filter((c) => c.op === 'readSecret')).toEqual([]);
    const unlisted = await admitted({ other: { [CONSUMER_LABEL]: 'true' } }, ADMISSION, [target('other')]);
    expect(unlisted.ready.message).toMatch(/spec\.notify\[0\]\.secretRef\.name: Secret other is not one the operator may read: the cluster administrator adds its name to the chart value rbac\.notifySecrets/);
    expect(unlisted.fake.calls.filter((c) => c.op === 'readSecretMetadata')).toEqual([]);
  });

  it('a consenting, listed Secret is admitted: the attempt starts, only its metadata read', async () => {
    const { fake, st } = await admitted({ hook: { [CONSUMER_LABEL]: 'true' } }, ADMISSION, [target('hook')]);
    expect(st.phase).toBe('Running');
    expect(fake.calls.filter((c) => c.op === 'readSecretMetadata').map((c) => c.name)).toEqual(['hook']);
    expect(fake.calls.filter((c) => c.op === 'readSecret')).toEqual([]);
  });
});
