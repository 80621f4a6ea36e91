/**
 * Run notifications end to end on the real control plane (docs/notifications.md): the operator
 * runs as a local process, so the webhook receiver is an HTTP server in this test process on
 * 127.0.0.1, which the operator may reach only because its `--admission` allows loopback
 * receivers (`notifications.allowLoopback`, the chart's `security.notifications.allowLoopback`:
 * never in a real cluster) and lists the Secrets (`notifySecrets`, `rbac.notifySecrets`).
 *
 * - A notify Secret without consent, and one the chart does not list, make the run SpecInvalid
 *   naming `spec.notify[0].secretRef.name`; nothing runs.
 * - A real run (quick, integration, a pool of 3) that finishes: the receiver gets exactly one
 *   CloudEvent, with the verdict and counts of the status, and the status records it Delivered.
 * - A second run compared with a baseline planted from the first's export (its 5.1 samples ten
 *   times faster: a clear regression) asks for `finished` and `regressed`; the receiver answers
 *   503, so the deliveries are pending (retrying, not recorded) when the operator is SIGKILLed. A
 *   new operator sends them again; the receiver then answers 200: each event id is answered 2xx
 *   exactly once, every send of an id is the same body, the regressed event carries 5.1 with its
 *   shift and interval, and the first run's event is not sent again by the new operator.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BatchV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NotificationRecord } from '../../src/api/notify.ts';
import { ResultDocument } from '../../src/api/schema.ts';
import type { CloudEvent } from '../../src/operator/notify.ts';
import { adminClients, clusterGate, kill9, kubectl, prepareNamespace, readRun, startOperator, until, type OperatorProcess } from './lib/itest.ts';

const gate = await clusterGate('notifications end to end');

const ns = `notify-${Date.now().toString(36)}`;
/** The same workload for both runs (a baseline of another workload is refused): about a minute on 2 cores. */
const WORKLOAD = '  mode: quick\n  categories: [integration]\n  agents: {poolSize: 3}\n  cleanup: {policy: Never}\n';
const manifest = (name: string, spec: string) => `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}`;
/** The test operators' admission: the test defaults (loopback Prometheus), loopback receivers, the Secrets runs may name. */
const ADMISSION = JSON.stringify({ prometheus: { allowLoopback: true }, notifications: { allowLoopback: true }, notifySecrets: ['hook', 'quiet'] });

interface Run {
  metadata: { uid: string };
  status?: {
    phase?: string;
    attempt?: number;
    finishedAt?: string;
    summary?: { total: number; passed: number; failed: number; verdict: string };
    comparison?: { regressed: string[] };
    conditions?: { type: string; reason: string; message: string }[];
    export?: { configMapName: string };
    notifications?: NotificationRecord[];
  };
}

/** What the receiver got: each request, and the answer it gave. */
interface Got {
  ce: CloudEvent;
  body: string;
  path: string;
  status: number;
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let custom: CustomObjectsApi;
  let server: Server;
  let hookUrl = '';
  const got: Got[] = [];
  /** Runs (CloudEvent subjects) the receiver answers 503. */
  const unavailable = new Set<string>();
  let operator: OperatorProcess | undefined;

  const get = (name: string) => readRun<Run>(custom, ns, name);
  const logTail = () => `\noperator log tail:\n${(operator?.log ?? []).slice(-40).join('')}`;
  const finished = (name: string) =>
    until(`${name} to finish`, async () => {
      const r = await get(name);
      return r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed' ? r : undefined;
    }, 240_000, 1000).catch((e: unknown) => {
      throw new Error(`${String(e)}${logTail()}`);
    });
  /** Waits until the run's status records `n` notifications. */
  const recorded = (name: string, n: number) =>
    until(`${name}'s ${n} notification(s) recorded`, async () => {
      const r = await get(name);
      return (r.status?.notifications?.length ?? 0) >= n ? r : undefined;
    }, 90_000, 500).catch((e: unknown) => {
      throw new Error(`${String(e)}${logTail()}`);
    });
  /** Requests answered 2xx, by event id. */
  const delivered = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const g of got) if (g.status >= 200 && g.status < 300) out[g.ce.id] = (out[g.ce.id] ?? 0) + 1;
    return out;
  };
  const start = () => (operator = startOperator(ns, ['--leader-elect', 'false', '--admission', ADMISSION], 'notify-op'));

  beforeAll(async () => {
    ({ core, batch, custom } = adminClients());
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        let ce: CloudEvent;
        try {
          ce = JSON.parse(body) as CloudEvent;
        } catch {
          return void res.writeHead(400).end();
        }
        const status = unavailable.has(ce.subject) ? 503 : 202;
        got.push({ ce, body, path: req.url ?? '', status });
        res.writeHead(status, { 'content-type': req.headers['content-type'] ?? '' }).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T0K3N`;
    prepareNamespace(ns);
    const secret = (name: string, labels: Record<string, string>) =>
      core.createNamespacedSecret({ namespace: ns, body: { metadata: { name, labels }, stringData: { url: hookUrl } } });
    await secret('hook', { 'swarmbench.io/consumer': 'true' });
    await secret('quiet', {});
    await secret('unlisted', { 'swarmbench.io/consumer': 'true' });
    start();
  });

  afterAll(async () => {
    if (operator) await kill9(operator.proc);
    server?.closeAllConnections();
    server?.close();
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('a notify Secret without consent, or one the chart does not list, is SpecInvalid naming the field; nothing runs', async () => {
    for (const [name, secret, message] of [
      ['no-consent', 'quiet', /spec\.notify\[0\]\.secretRef\.name: Secret quiet does not consent to SwarmBench runs \(no label swarmbench\.io\/consumer: "true"\)/],
      ['not-listed', 'unlisted', /spec\.notify\[0\]\.secretRef\.name: Secret unlisted is not one the operator may read: the cluster administrator adds its name to the chart value rbac\.notifySecrets/],
    ] as const) {
      const a = kubectl(['apply', '-f', '-'], manifest(name, `${WORKLOAD}  notify: [{secretRef: {name: ${secret}, key: url}}]\n`));
      expect(a.code, a.stderr).toBe(0);
      const r = await until(`${name} to be SpecInvalid`, async () => {
        const x = await get(name);
        const ready = x.status?.conditions?.find((c) => c.type === 'Ready');
        return ready?.reason === 'SpecInvalid' ? { x, ready } : undefined;
      }, 30_000);
      expect(r.x.status!.phase).toBe('Failed');
      expect(r.ready.message).toMatch(message);
      const jobs = await batch.listNamespacedJob({ namespace: ns, labelSelector: `swarmbench.io/run=${name}` });
      expect(jobs.items).toHaveLength(0);
    }
    expect(got).toHaveLength(0);
  }, 90_000);

  it('a finished run: exactly one CloudEvent with the verdict and counts of its status, recorded Delivered', async () => {
    const a = kubectl(['apply', '-f', '-'], manifest('first', `${WORKLOAD}  notify: [{secretRef: {name: hook, key: url}}]\n`));
    expect(a.code, a.stderr).toBe(0);
    const done = await finished('first');
    const r = await recorded('first', 1);
    const id = `${done.metadata.uid}.1.finished`;
    expect(r.status!.notifications).toEqual([expect.objectContaining({ id, event: 'finished', target: 'hook/url:cloudevents', attempt: 1, result: 'Delivered', tries: 1 })]);
    const mine = got.filter((g) => g.ce.subject === 'first');
    expect(mine).toHaveLength(1);
    const { ce } = mine[0]!;
    expect(mine[0]!.path).toBe('/hooks/T0K3N');
    expect(ce).toMatchObject({ specversion: '1.0', id, type: 'dev.swarmbench.run.finished', source: `/apis/swarmbench.io/v1alpha1/namespaces/${ns}/benchmarkruns`, time: done.status!.finishedAt });
    const st = done.status!;
    expect(ce.data).toMatchObject({ namespace: ns, name: 'first', uid: done.metadata.uid, attempt: 1, phase: st.phase, verdict: st.summary!.verdict, regressions: [] });
    expect(ce.data.summary).toMatchObject({ total: st.summary!.total, passed: st.summary!.passed, failed: st.summary!.failed });
    expect(ce.data.summary!.total).toBe(3);
    const events = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=first' });
    expect(events.items.filter((e) => e.reason === 'Notified')).toHaveLength(1);
  }, 300_000);

  it('an operator killed while a delivery is pending: the next one sends it, each event id is delivered exactly once', async () => {
    // The baseline: the first run's results with 5.1 ten times faster.
    const first = await get('first');
    const exp = await core.readNamespacedConfigMap({ namespace: ns, name: first.status!.export!.configMapName });
    const doc = ResultDocument.parse(JSON.parse(exp.data!['results.json']!));
    const t51 = doc.tests.find((t) => t.id === '5.1')!;
    expect(t51.rawSamples!.length).toBeGreaterThanOrEqual(5);
    const planted = { ...doc, tests: doc.tests.map((t) => (t.id === '5.1' ? { ...t, value: t.value! / 10, rawSamples: t.rawSamples!.map((v) => v / 10) } : t)) };
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'planted' }, data: { 'results.json': JSON.stringify(planted) } } });

    unavailable.add('second');
    const spec = `${WORKLOAD}  baseline: {configMapRef: {name: planted}}\n  notify: [{secretRef: {name: hook, key: url}, events: [finished, regressed]}]\n`;
    const a = kubectl(['apply', '-f', '-'], manifest('second', spec));
    expect(a.code, a.stderr).toBe(0);
    const done = await finished('second');
    expect(done.status!.comparison?.regressed).toContain('5.1');
    const ids = [`${done.metadata.uid}.1.finished`, `${done.metadata.uid}.1.regressed`];
    await until('both events refused once (503)', () => ids.every((id) => got.some((g) => g.ce.id === id)), 60_000, 100);
    // Pending: retried by the operator, recorded nowhere.
    expect((await get('second')).status!.notifications ?? []).toEqual([]);
    await kill9(operator!.proc);
    const before = got.length;

    start();
    await until('the new operator to send (still refused)', () => got.slice(before).some((g) => ids.includes(g.ce.id)), 60_000, 100).catch((e: unknown) => {
      throw new Error(`${String(e)}${logTail()}`);
    });
    unavailable.delete('second');
    const r = await recorded('second', 2);
    expect(r.status!.notifications!.map((n) => [n.event, n.result]).sort()).toEqual([['finished', 'Delivered'], ['regressed', 'Delivered']]);
    expect(delivered()).toEqual({ [`${first.metadata.uid}.1.finished`]: 1, [ids[0]!]: 1, [ids[1]!]: 1 });
    for (const id of ids) {
      const sends = got.filter((g) => g.ce.id === id);
      // Refused (503) by operator 1 at least once, then delivered by operator 2, the same bytes every time.
      expect(sends[0]!.status, id).toBe(503);
      expect(got.findIndex((g) => g.ce.id === id && g.status < 300), id).toBeGreaterThanOrEqual(before);
      expect(new Set(sends.map((g) => g.body)).size, `${id}: every send the same body`).toBe(1);
    }
    // The first run (recorded before the restart) was not sent again by the new operator.
    expect(got.filter((g) => g.ce.subject === 'first')).toHaveLength(1);
    const reg = got.find((g) => g.ce.id === ids[1])!.ce;
    expect(reg.type).toBe('dev.swarmbench.run.regressed');
    expect(reg.data.baseline).toBe('configmap/planted');
    const r51 = reg.data.regressions.find((x) => x.id === '5.1')!;
    expect(r51).toMatchObject({ id: '5.1', unit: t51.unit });
    expect(r51.shift!).toBeGreaterThan(0);
    expect(r51.interval![0]).toBeLessThanOrEqual(r51.shift!);
    expect(r51.interval![1]).toBeGreaterThanOrEqual(r51.shift!);
    expect(reg.data.headline).toMatch(/second attempt 1: .*regressed \(.*5\.1/);
  }, 360_000);
});
