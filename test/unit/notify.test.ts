/**
 * Notifications (src/operator/notify.ts, src/operator/notify-sender.ts, src/api/notify.ts): the
 * CloudEvent's shape and its deterministic id, the Slack body, the spec field's bounds, Secrets by
 * consent, the webhook URL's checks and redaction, and delivery against a real HTTP receiver on
 * 127.0.0.1 (retries, refusals, Retry-After, a receiver that never answers, the queue's bound,
 * close), then the restart semantics through the status helpers.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiException, type V1ObjectMeta, type V1Secret } from '@kubernetes/client-node';
import { MAX_NOTIFY_TARGETS, NotifySpec, type NotificationRecord } from '../../src/api/notify.ts';
import { ResultDocument, type BenchmarkRunStatus } from '../../src/api/schema.ts';
import type { Logger } from '../../src/log.ts';
import type { RunObject } from '../../src/operator/cluster.ts';
import { conditionsFor } from '../../src/operator/desired.ts';
import { resultStatus } from '../../src/operator/finish.ts';
import {
  admitNotify, buildCloudEvent, CLOUDEVENTS_CONTENT_TYPE, encodeBody, eventId, markNotified, MAX_BODY_BYTES, notifySecretViolations, pendingNotifications,
  reconcileNotifications, resolveWebhook, runEvents, slackPayload, type NotifyContext,
} from '../../src/operator/notify.ts';
import {
  Notifier, parseRetryAfter, resolvedProblem, retryDelay, webhookUrl, type Delivery, type NotifierOptions, type Settled, type WebhookPolicy,
} from '../../src/operator/notify-sender.ts';
import { CONSUMER_LABEL } from '../../src/operator/policy.ts';
import { compareRuns } from '../../src/report/baseline.ts';
import { withComparison } from '../../src/report/verdict.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures: a real result document compared with a real baseline, and the run status the operator
// writes for it (finish.ts resultStatus, desired.ts conditionsFor).

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const load = (f: string) => ResultDocument.parse(JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')));
const baseDoc = load('results-baseline.json');
const quick = load('results-quick.json');
const comparison = compareRuns(quick, baseDoc);
const DOC: ResultDocument = { ...quick, run: { ...quick.run, name: 'nightly', attempt: 1 }, comparison, summary: withComparison(quick.summary, comparison) };
const FINISHED_AT = '2026-11-28T09:08:01.894Z';
const NOW = new Date(Date.parse(FINISHED_AT) + 60_000);

function finishedRun(opts: { attempt?: number; phase?: 'Succeeded' | 'Failed' | 'Cancelled' | 'Running'; doc?: ResultDocument; notifications?: NotificationRecord[]; finishedAt?: string } = {}): RunObject {
  const doc = opts.doc ?? DOC;
  const phase = opts.phase ?? (doc.summary.verdict === 'Passed' ? 'Succeeded' : 'Failed');
  const regressed = doc.comparison ? { count: doc.comparison.regressed.length, names: doc.comparison.regressed } : undefined;
  const conditions = conditionsFor([], 1, phase, phase === 'Succeeded' ? 'TargetsMet' : 'TargetsMissed', `${doc.summary.passed}/${doc.summary.total} passed`, FINISHED_AT, regressed);
  const status = {
    phase,
    attempt: opts.attempt ?? 1,
    startedAt: doc.run.startedAt,
    finishedAt: opts.finishedAt ?? FINISHED_AT,
    ...resultStatus(doc),
    ...(doc.comparison ? { comparison: { baseline: 'nightly-prev', regressed: doc.comparison.regressed, improved: doc.comparison.improved } } : {}),
    conditions,
    ...(opts.notifications ? { notifications: opts.notifications } : {}),
  } as unknown as BenchmarkRunStatus;
  return {
    metadata: { name: 'nightly', namespace: 'team-a', uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427' },
    // What a spec may hold that must never reach a receiver.
    spec: { prometheus: { url: 'https://prom.example/', bearerTokenSecretRef: { name: 'prom-token', key: 'token' } } },
    status,
  };
}

const silent: Logger = { info() {}, warn() {}, debug() {} };
function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (msg: string, f?: Record<string, unknown>) => void lines.push(`${level} ${msg} ${JSON.stringify(f ?? {})}`);
  return { lines, info: put('info'), warn: put('warn'), debug: put('debug') };
}

// ---------------------------------------------------------------------------------------------
// A receiver on 127.0.0.1

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}
type Answer = { status: number; headers?: Record<string, string> } | 'hang';

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function receiver(answer: (n: number, path: string) => Answer): Promise<{ base: string; got: Received[] }> {
  const got: Received[] = [];
  const hung: ServerResponse[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body, at: performance.now() });
      const a = answer(got.length, req.url ?? '');
      if (a === 'hang') return void hung.push(res);
      res.writeHead(a.status, a.headers ?? {}).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got };
}

const LOOPBACK: WebhookPolicy = { apiServerHosts: [], allowLoopback: true };
const notifiers: Notifier[] = [];
afterEach(async () => {
  await Promise.all(notifiers.splice(0).map((n) => n.close()));
});

function notifier(opts: Partial<NotifierOptions> = {}): Notifier & { done: Settled[] } {
  const done: Settled[] = [];
  const n = new Notifier({ log: silent, policy: LOOPBACK, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2_000, ...opts, onSettled: (s) => done.push(s) });
  notifiers.push(n);
  return Object.assign(n, { done });
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

let seq = 0;
function delivery(url: string, over: Partial<Delivery> = {}): Delivery {
  const ce = buildCloudEvent(finishedRun(), 'finished', DOC);
  const { body, contentType } = encodeBody(ce, 'cloudevents');
  return { runKey: 'team-a/nightly', uid: 'u', attempt: 1, event: 'finished', id: `id-${++seq}`, target: 'hook/url:cloudevents', format: 'cloudevents', url: new URL(url), body, contentType, ...over };
}

// ---------------------------------------------------------------------------------------------

describe('the CloudEvent', () => {
  it('is CloudEvents 1.0 structured JSON with the run, verdict, regressions (shift and interval) and failed tests', () => {
    const ce = buildCloudEvent(finishedRun(), 'regressed', DOC);
    expect(ce).toMatchObject({
      specversion: '1.0',
      type: 'dev.swarmbench.run.regressed',
      source: '/apis/swarmbench.io/v1alpha1/namespaces/team-a/benchmarkruns',
      subject: 'nightly',
      time: FINISHED_AT,
      datacontenttype: 'application/json',
      id: '1b4e28ba-2fa1-11d2-883f-0016d3cca427.1.regressed',
    });
    const d = ce.data;
    expect(d).toMatchObject({ namespace: 'team-a', name: 'nightly', uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427', attempt: 1, phase: 'Failed', verdict: 'Failed', reason: 'TargetsMissed', baseline: 'nightly-prev' });
    expect(d.summary).toEqual({ total: 27, passed: 23, failed: 3, skipped: 1, successRate: 88.5, regressions: 1 });
    expect(d.regressions).toHaveLength(1);
    const r = d.regressions[0]!;
    expect(r).toMatchObject({ id: '1.3', better: 'lower' });
    expect(r.shift!).toBeGreaterThan(0);
    expect(r.interval![0]).toBeLessThanOrEqual(r.shift!);
    expect(r.interval![1]).toBeGreaterThanOrEqual(r.shift!);
    expect(d.failedTests.map((t) => t.id)).toEqual(['3.2', '4.5', '6.1']);
    expect(d.headline).toBe('team-a/nightly attempt 1: Failed (verdict Failed), 23/27 passed, 1 regressed (1.3)');
    // Nothing of the spec (the Prometheus token's Secret, its URL) is in the event.
    const text = JSON.stringify(ce);
    expect(text).not.toMatch(/prom-token|prom\.example/);
  });

  it('has an id per (run uid, attempt, event) and the same bytes on every build: a restarted operator sends the same event', () => {
    const a = JSON.stringify(buildCloudEvent(finishedRun(), 'finished', DOC, { now: new Date(0) }));
    const b = JSON.stringify(buildCloudEvent(finishedRun(), 'finished', DOC, { now: NOW }));
    expect(a).toBe(b);
    expect(eventId('u', 1, 'finished')).toBe(eventId('u', 1, 'finished'));
    const ids = new Set([eventId('u', 1, 'finished'), eventId('u', 1, 'failed'), eventId('u', 1, 'regressed'), eventId('u', 2, 'finished'), eventId('v', 1, 'finished')]);
    expect(ids.size).toBe(5);
  });

  it('without the result document, the regressions are the status\'s test ids', () => {
    const ce = buildCloudEvent(finishedRun(), 'regressed');
    expect(ce.data.regressions).toEqual([{ id: '1.3' }]);
    expect(ce.data.failedTests.map((t) => t.id)).toEqual(['3.2', '4.5', '6.1']);
  });

  it('is bounded: 2000 failed tests with 100 KB reasons become at most 32 entries, capped strings, under 64 KiB', () => {
    const run = finishedRun();
    const name = 'x'.repeat(5000);
    const reason = 'y'.repeat(100_000);
    const tests = Array.from({ length: 2000 }, (_, i) => ({ id: `${i}`, name, category: 'stress', result: 'Failed', unit: 'ms', target: '<1', reason }));
    run.status = { ...run.status!, tests: tests as never, conditions: [{ type: 'Ready', status: 'False', reason: 'TargetsMissed', message: 'z'.repeat(1_000_000), lastTransitionTime: FINISHED_AT }] };
    const ce = buildCloudEvent(run, 'failed');
    expect(ce.data.failedTests.length).toBeLessThanOrEqual(32);
    expect(ce.data.truncated).toBe(true);
    expect(ce.data.message!.length).toBeLessThanOrEqual(1000);
    expect(Buffer.byteLength(encodeBody(ce, 'cloudevents').body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(Buffer.byteLength(encodeBody(ce, 'slack').body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
  });

  it('which events a run gives rise to: finished always, failed and regressed when they apply, none before the end or when cancelled', () => {
    expect(runEvents(finishedRun())).toEqual(['finished', 'regressed', 'failed']);
    const passed: ResultDocument = { ...DOC, comparison: undefined, summary: { ...DOC.summary, verdict: 'Passed', regressions: undefined } };
    expect(runEvents(finishedRun({ doc: passed, phase: 'Succeeded' }))).toEqual(['finished']);
    expect(runEvents(finishedRun({ phase: 'Cancelled' }))).toEqual([]);
    expect(runEvents(finishedRun({ phase: 'Running' }))).toEqual([]);
    expect(runEvents(finishedRun({ attempt: 0 }))).toEqual([]);
    // An attempt ended because the spec could not run (admission refused it later): its notify is not trusted.
    const invalid = finishedRun({ phase: 'Failed' });
    invalid.status!.conditions = conditionsFor([], 2, 'Failed', 'SpecInvalid', 'the spec cannot run', FINISHED_AT);
    expect(runEvents(invalid)).toEqual([]);
  });
});

describe('the Slack payload', () => {
  it('is {text, blocks} with the verdict, the regressions with their interval, the failed tests and the id; mrkdwn escaped', () => {
    const run = finishedRun();
    const tests = (run.status!.tests ?? []).map((t) => (t.id === '3.2' ? { ...t, reason: 'answer <script>&</script>' } : t));
    run.status = { ...run.status!, tests };
    const p = slackPayload(buildCloudEvent(run, 'finished'));
    expect(p.text).toBe(':x: SwarmBench team-a/nightly attempt 1: Failed (verdict Failed), 23/27 passed, 1 regressed (1.3)');
    expect(p.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'section', 'context']);
    const text = JSON.stringify(p.blocks);
    expect(text).toContain('*Verdict:* Failed');
    expect(text).toContain('*Passed:* 23/27');
    expect(text).toContain('answer &lt;script&gt;&amp;&lt;/script&gt;');
    expect(text).not.toContain('<script>');
    expect(text).toContain('1b4e28ba-2fa1-11d2-883f-0016d3cca427.1.finished');
    const withDoc = JSON.stringify(slackPayload(buildCloudEvent(finishedRun(), 'regressed', DOC)).blocks);
    expect(withDoc).toMatch(/Regressions against nightly-prev:\*\\n• 1\.3 [^:]+: shift \+[\d.]+ \S+ \(95% CI [\d.]+ … [\d.]+\), \+[\d.]+%/);
    expect(encodeBody(buildCloudEvent(finishedRun(), 'finished'), 'slack').contentType).toBe('application/json');
  });
});

describe('the spec field', () => {
  const t = (name: string, format?: 'slack' | 'cloudevents') => ({ secretRef: { name, key: 'url' }, ...(format ? { format } : {}) });
  it('takes up to 5 targets, refuses a 6th, a repeated target or event, and bad names with the field', () => {
    expect(NotifySpec.safeParse([t('a'), t('a', 'slack'), { ...t('b'), events: ['finished', 'regressed', 'failed'] }]).success).toBe(true);
    const six = NotifySpec.safeParse(Array.from({ length: MAX_NOTIFY_TARGETS + 1 }, (_, i) => t(`s${i}`)));
    expect(six.success).toBe(false);
    expect(NotifySpec.safeParse([t('a'), t('a', 'cloudevents')]).error!.issues[0]!.message).toMatch(/must not repeat a target/);
    const rep = NotifySpec.safeParse([{ ...t('a'), events: ['failed', 'failed'] }]);
    expect(rep.error!.issues[0]).toMatchObject({ path: [0, 'events'], message: 'must not repeat an event' });
    const bad = NotifySpec.safeParse([t('Bad_Name')]);
    expect(bad.error!.issues[0]!.path).toEqual([0, 'secretRef', 'name']);
    expect(NotifySpec.safeParse([{ ...t('a'), url: 'https://x' }]).success).toBe(false);
    expect(NotifySpec.safeParse([{ ...t('a'), format: 'teams' }]).success).toBe(false);
  });
});

describe('Secrets by consent (the rule of src/operator/policy.ts)', () => {
  const lookups = (secrets: Record<string, Record<string, string> | 'forbidden'>) => ({
    reads: [] as string[],
    async readSecretMetadata(namespace: string, name: string): Promise<V1ObjectMeta | undefined> {
      this.reads.push(name);
      const s = secrets[name];
      if (s === 'forbidden') throw new ApiException(403, 'forbidden', { code: 403 }, {});
      return s ? { name, namespace, labels: s } : undefined;
    },
  });
  const spec = (...names: string[]) => names.map((name) => ({ secretRef: { name, key: 'url' } }));

  it('admits a listed, existing, labelled Secret and refuses the rest, naming spec.notify[i].secretRef.name and the fix', async () => {
    const l = lookups({ ok: { [CONSUMER_LABEL]: 'true' }, nolabel: {}, wrong: { [CONSUMER_LABEL]: 'yes' }, denied: 'forbidden' });
    expect(await notifySecretViolations('team-a', spec('ok'), {}, l)).toEqual([]);
    const v = await notifySecretViolations('team-a', spec('ok', 'nolabel', 'wrong', 'missing', 'denied'), {}, l);
    expect(v.map((x) => x.field)).toEqual(['spec.notify[1].secretRef.name', 'spec.notify[2].secretRef.name', 'spec.notify[3].secretRef.name', 'spec.notify[4].secretRef.name']);
    expect(v[0]!.message).toMatch(/does not consent .*kubectl label secret nolabel -n team-a swarmbench.io\/consumer=true/);
    expect(v[2]!.message).toMatch(/not found in team-a/);
    expect(v[3]!.message).toMatch(/rbac.notifySecrets/);
    const listed = lookups({ other: { [CONSUMER_LABEL]: 'true' } });
    const nv = await notifySecretViolations('team-a', spec('other'), { notifySecrets: ['hook'] }, listed);
    expect(nv[0]!.message).toMatch(/not one the operator may read.*rbac.notifySecrets/);
    expect(listed.reads).toEqual([]); // a name the chart does not grant is not even read
  });

  it('admitNotify: a valid spec whose notify Secret does not consent becomes SpecInvalid errors naming the field', async () => {
    const l = lookups({ ok: { [CONSUMER_LABEL]: 'true' }, nolabel: {} });
    const run = { metadata: { namespace: 'team-a' } };
    const good = { ok: true as const, value: { notify: spec('ok') } };
    expect(await admitNotify(good, run, {}, l)).toBe(good);
    const bad = await admitNotify({ ok: true as const, value: { notify: spec('ok', 'nolabel') } }, run, {}, l);
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.errors.map((e) => e.path)).toEqual(['spec.notify[1].secretRef.name']);
    const invalid = { ok: false as const, errors: [{ path: 'spec.trials', message: 'too small' }] };
    expect(await admitNotify(invalid, run, {}, l)).toBe(invalid);
    l.reads.length = 0;
    expect(await admitNotify({ ok: true as const, value: {} }, run, {}, l)).toEqual({ ok: true, value: {} });
    expect(l.reads).toEqual([]);
  });

  it('at send time reads the Secret, checks consent again, and never shows the URL in a problem', async () => {
    const secret = (labels: Record<string, string>, url?: string): V1Secret => ({ metadata: { name: 'hook', labels }, data: url ? { url: Buffer.from(url).toString('base64') } : {} });
    const settings = { policy: LOOPBACK };
    const target = { secretRef: { name: 'hook', key: 'url' } };
    const ok = await resolveWebhook(async () => secret({ [CONSUMER_LABEL]: 'true' }, 'https://hooks.example/T1/SECRETPATH'), 'team-a', target, settings);
    expect('url' in ok && ok.url.href).toBe('https://hooks.example/T1/SECRETPATH');
    const withdrawn = await resolveWebhook(async () => secret({}, 'https://hooks.example/T1/SECRETPATH'), 'team-a', target, settings);
    expect(withdrawn).toEqual({ problem: 'Secret hook does not consent (no label swarmbench.io/consumer: "true")' });
    expect(await resolveWebhook(async () => secret({ [CONSUMER_LABEL]: 'true' }), 'team-a', target, settings)).toEqual({ problem: 'Secret hook has no key url' });
    expect(await resolveWebhook(async () => undefined, 'team-a', target, settings)).toEqual({ problem: 'Secret hook not found' });
    const bad = await resolveWebhook(async () => secret({ [CONSUMER_LABEL]: 'true' }, 'ftp://files.example/SECRETPATH'), 'team-a', target, settings);
    expect(JSON.stringify(bad)).toMatch(/must be http or https/);
    expect(JSON.stringify(bad)).not.toContain('SECRETPATH');
    await expect(resolveWebhook(async () => { throw new ApiException(500, 'boom', {}, {}); }, 'team-a', target, settings)).rejects.toThrow();
  });
});

describe('the webhook URL', () => {
  it('http(s) only, no credentials, never loopback, link-local, metadata or the API server; the allowlist when set; errors never echo it', () => {
    const p: WebhookPolicy = { apiServerHosts: ['10.0.0.1'] };
    expect(webhookUrl(' https://hooks.slack.com/services/T/B/SECRET ', p).host).toBe('hooks.slack.com');
    const refused: [string, RegExp][] = [
      ['ftp://h.example/SECRET', /must be http or https/],
      ['https://user:SECRET@h.example/x', /must not carry credentials/],
      ['http://127.0.0.1:8080/SECRET', /loopback/],
      ['http://localhost/SECRET', /loopback/],
      ['http://169.254.169.254/SECRET', /metadata/],
      ['http://[fe80::1]/SECRET', /link-local/],
      ['https://kubernetes.default.svc/SECRET', /API server/],
      ['https://10.0.0.1/SECRET', /API server/],
      ['not a url SECRET', /not a URL/],
      [`https://h.example/${'a'.repeat(3000)}SECRET`, /longer than 2048/],
    ];
    for (const [url, why] of refused) {
      let msg = '';
      try {
        webhookUrl(url, p);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg, url).toMatch(why);
      expect(msg).not.toContain('SECRET');
    }
    const allow: WebhookPolicy = { apiServerHosts: [], allowedHosts: ['*.slack.com'] };
    expect(webhookUrl('https://hooks.slack.com/x', allow).href).toBe('https://hooks.slack.com/x');
    expect(() => webhookUrl('https://evil.example/x', allow)).toThrow(/not one the cluster administrator allows/);
  });
});

describe('private and cluster-internal receivers', () => {
  const p: WebhookPolicy = { apiServerHosts: ['10.96.0.1'] };
  const internal = [
    'http://10.1.2.3/SECRET', 'http://172.20.0.1/SECRET', 'http://192.168.1.1/SECRET', 'http://100.64.0.1/SECRET', 'http://198.18.0.1/SECRET',
    'http://239.1.1.1/SECRET', 'http://[fd00::1]/SECRET', 'http://[::ffff:10.0.0.1]/SECRET', 'http://receiver.team-a.svc:8080/SECRET',
    'http://receiver.team-a.svc.cluster.local/SECRET', 'http://receiver/SECRET', 'http://x.cluster.local/SECRET',
  ];

  it('are refused by default, naming the chart values that would allow them and never the path; public hosts pass', () => {
    for (const url of internal) {
      let msg = '';
      try {
        webhookUrl(url, p);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg, url).toMatch(/(private|shared|benchmarking|multicast|unique local|cluster).*security\.notifications\.allowPrivate/);
      expect(msg).not.toContain('SECRET');
    }
    for (const ok of ['https://hooks.slack.com/x', 'http://172.32.0.1/x', 'http://8.8.8.8/x', 'https://[2001:db8::1]/x']) expect(webhookUrl(ok, p).href).toBe(ok);
  });

  it('pass with allowPrivate, or when listed; the never-allowed ones stay refused', () => {
    for (const url of internal) expect(webhookUrl(url, { ...p, allowPrivate: true }).pathname).toBe('/SECRET');
    const listed: WebhookPolicy = { ...p, allowedHosts: ['receiver.team-a.svc:8080'], allowedUrls: ['http://10.1.2.3/'] };
    expect(webhookUrl('http://receiver.team-a.svc:8080/h', listed).port).toBe('8080');
    expect(webhookUrl('http://10.1.2.3/h', listed).host).toBe('10.1.2.3');
    expect(() => webhookUrl('http://192.168.1.1/h', listed)).toThrow(/not one the cluster administrator allows/);
    expect(() => webhookUrl('http://169.254.169.254/h', { ...p, allowPrivate: true })).toThrow(/metadata/);
    expect(() => webhookUrl('https://10.96.0.1/h', { ...p, allowPrivate: true })).toThrow(/API server/);
  });

  it('the addresses a name resolves to are judged too: metadata, API server and loopback never, private unless allowed', () => {
    const u = new URL('https://hooks.example.com/SECRET');
    expect(resolvedProblem(u, ['93.184.215.14', '2606:2800:21f:cb07::1'], p)).toBeUndefined();
    expect(resolvedProblem(u, ['93.184.215.14', '169.254.169.254'], { ...p, allowPrivate: true })).toMatch(/resolves to 169\.254\.169\.254, which is a cloud metadata address: never allowed/);
    expect(resolvedProblem(u, ['10.96.0.1'], { ...p, allowPrivate: true })).toMatch(/Kubernetes API server/);
    expect(resolvedProblem(u, ['127.0.0.1'], p)).toMatch(/loopback/);
    expect(resolvedProblem(u, ['127.0.0.1'], { ...p, allowLoopback: true })).toBeUndefined();
    expect(resolvedProblem(u, ['10.2.3.4'], p)).toMatch(/resolves to 10\.2\.3\.4, which is a private address \(10\.0\.0\.0\/8\).*allowPrivate/);
    expect(resolvedProblem(u, ['10.2.3.4'], { ...p, allowPrivate: true })).toBeUndefined();
    expect(resolvedProblem(u, ['10.2.3.4'], { ...p, allowedHosts: ['hooks.example.com'] })).toBeUndefined();
    expect(resolvedProblem(u, ['fd12::5'], p)).toMatch(/unique local/);
    expect(resolvedProblem(u, ['10.2.3.4'], p)).not.toContain('SECRET');
  });

  it('the Notifier resolves before each try: a name pointing inside is refused without a request; one that does not resolve is retried, then fails', async () => {
    const inside = notifier({ lookup: async () => ['10.0.0.5'] });
    expect(inside.enqueue(delivery('https://hooks.example.com/T0K3N'))).toBe('queued');
    await until(() => inside.done.length === 1);
    expect(inside.done[0]!.record).toMatchObject({ result: 'Failed', tries: 1, reason: expect.stringMatching(/^refused: the webhook host hooks\.example\.com resolves to 10\.0\.0\.5, which is a private address/) });
    const asked: string[] = [];
    const nowhere = notifier({ maxTries: 3, lookup: async (h) => (asked.push(h), Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${h}`), { code: 'ENOTFOUND' }))) });
    nowhere.enqueue(delivery('https://hooks.invalid/T0K3N'));
    await until(() => nowhere.done.length === 1);
    expect(asked).toEqual(['hooks.invalid', 'hooks.invalid', 'hooks.invalid']);
    expect(nowhere.done[0]!.record).toMatchObject({ result: 'Failed', tries: 3, reason: 'gave up after 3 tries: the webhook host hooks.invalid does not resolve: ENOTFOUND' });
    // The real resolver: an IP literal is itself, and a loopback receiver is reached when allowed.
    const r = await receiver(() => ({ status: 204 }));
    const real = notifier();
    real.enqueue(delivery(`${r.base}/T0K3N`));
    await until(() => real.done.length === 1);
    expect(real.done[0]!.record).toMatchObject({ result: 'Delivered', tries: 1 });
    expect(r.got).toHaveLength(1);
  });
});

describe('retries: the arithmetic', () => {
  it('waits grow exponentially within [d/2, d], are capped, and a Retry-After lengthens them up to its bound', () => {
    const o = { maxTries: 6, baseDelayMs: 2000, maxDelayMs: 30_000, maxRetryAfterMs: 60_000 };
    expect([1, 2, 3, 4, 5].map((k) => retryDelay(k, o, () => 0))).toEqual([1000, 2000, 4000, 8000, 15_000]);
    expect([1, 2, 3, 4, 5].map((k) => retryDelay(k, o, () => 0.999999))).toEqual([2000, 4000, 8000, 16_000, 30_000]);
    expect(retryDelay(1, o, () => 0, 45_000)).toBe(45_000);
    expect(retryDelay(1, o, () => 0, 3_600_000)).toBe(60_000);
    expect(parseRetryAfter('7', 0)).toBe(7000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
  });
});

describe('delivery to a real receiver', () => {
  it('POSTs the CloudEvent with content-type application/cloudevents+json; 2xx is delivered', async () => {
    const r = await receiver(() => ({ status: 202 }));
    const n = notifier();
    const d = delivery(`${r.base}/hook`);
    expect(n.enqueue(d)).toBe('queued');
    expect(n.enqueue(d)).toBe('duplicate');
    await until(() => n.done.length === 1);
    expect(r.got).toHaveLength(1);
    expect(r.got[0]!.headers['content-type']).toBe(CLOUDEVENTS_CONTENT_TYPE);
    expect(JSON.parse(r.got[0]!.body)).toEqual(JSON.parse(d.body));
    expect(n.done[0]!.record).toMatchObject({ id: d.id, result: 'Delivered', tries: 1, event: 'finished', target: 'hook/url:cloudevents' });
    expect(n.enqueue(d)).toBe('duplicate'); // settled and not forgotten
  });

  it('retries a 500 (and 408, 429) and delivers on the third try', async () => {
    for (const code of [500, 408, 429]) {
      const r = await receiver((k) => ({ status: k < 3 ? code : 200 }));
      const n = notifier();
      n.enqueue(delivery(`${r.base}/hook`));
      await until(() => n.done.length === 1);
      expect(r.got, String(code)).toHaveLength(3);
      expect(n.done[0]!.record).toMatchObject({ result: 'Delivered', tries: 3 });
    }
  });

  it('a 400 is refused for good after one try; a redirect is not followed', async () => {
    const r = await receiver((_k, path) => (path === '/hook' ? { status: 400 } : path === '/moved' ? { status: 302, headers: { location: '/elsewhere' } } : { status: 200 }));
    const n = notifier();
    n.enqueue(delivery(`${r.base}/hook`));
    n.enqueue(delivery(`${r.base}/moved`));
    await until(() => n.done.length === 2);
    expect(r.got.map((g) => g.path).sort()).toEqual(['/hook', '/moved']);
    const byPath = (p: string) => n.done.find((s) => s.record.reason?.includes(p === '/hook' ? '400' : '302'))!.record;
    expect(byPath('/hook')).toMatchObject({ result: 'Failed', tries: 1, reason: 'refused: HTTP 400' });
    expect(byPath('/moved')).toMatchObject({ result: 'Failed', tries: 1, reason: 'refused: HTTP 302: redirects are not followed' });
  });

  it('gives up after maxTries with the last reason', async () => {
    const r = await receiver(() => ({ status: 503 }));
    const n = notifier({ maxTries: 4 });
    n.enqueue(delivery(`${r.base}/hook`));
    await until(() => n.done.length === 1);
    expect(r.got).toHaveLength(4);
    expect(n.done[0]!.record).toMatchObject({ result: 'Failed', tries: 4, reason: 'gave up after 4 tries: HTTP 503' });
    expect(await n.registry.getSingleMetricAsString('swarmbench_notifications_total')).toMatch(/result="failed"} 1/);
    expect(await n.registry.getSingleMetricAsString('swarmbench_notification_retries_total')).toMatch(/} 3/);
  });

  it('honours Retry-After (1 s where the backoff is 5 ms) and bounds it (3600 s cut to maxRetryAfterMs)', async () => {
    const r = await receiver((k) => (k === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }));
    const n = notifier();
    n.enqueue(delivery(`${r.base}/hook`));
    await until(() => n.done.length === 1);
    expect(r.got[1]!.at - r.got[0]!.at).toBeGreaterThanOrEqual(950);
    const r2 = await receiver((k) => (k === 1 ? { status: 429, headers: { 'retry-after': '3600' } } : { status: 200 }));
    const n2 = notifier({ maxRetryAfterMs: 50 });
    n2.enqueue(delivery(`${r2.base}/hook`));
    await until(() => n2.done.length === 1);
    const gap = r2.got[1]!.at - r2.got[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(40);
    expect(gap).toBeLessThan(900);
  });

  it('a receiver that never answers: enqueue returns at once, each try times out, the delivery fails with the reason', async () => {
    const r = await receiver(() => 'hang');
    const n = notifier({ timeoutMs: 150, maxTries: 2 });
    const t0 = performance.now();
    expect(n.enqueue(delivery(`${r.base}/hook`))).toBe('queued');
    expect(performance.now() - t0).toBeLessThan(50);
    expect(n.done).toHaveLength(0);
    await until(() => n.done.length === 1);
    expect(r.got).toHaveLength(2);
    expect(n.done[0]!.record).toMatchObject({ result: 'Failed', tries: 2, reason: 'gave up after 2 tries: no answer within 150 ms' });
  });

  it('the queue is bounded: a full queue drops its oldest delivery not in flight, with a warning and a metric', async () => {
    const r = await receiver(() => 'hang');
    const log = capture();
    const n = notifier({ capacity: 2, concurrency: 1, log, timeoutMs: 5_000 });
    const ds = [1, 2, 3, 4].map((i) => delivery(`${r.base}/hook`, { id: `q${i}` }));
    for (const d of ds) expect(n.enqueue(d)).toBe('queued');
    expect(n.stats().held).toBe(2);
    expect(n.has('q1', 'hook/url:cloudevents')).toBe(true); // in flight: kept
    expect(n.has('q2', 'hook/url:cloudevents')).toBe(false);
    expect(n.has('q3', 'hook/url:cloudevents')).toBe(false);
    expect(n.has('q4', 'hook/url:cloudevents')).toBe(true);
    expect(log.lines.filter((l) => l.startsWith('warn notification dropped'))).toHaveLength(2);
    expect(await n.registry.getSingleMetricAsString('swarmbench_notifications_total')).toMatch(/result="dropped"} 2/);
    expect(await n.registry.getSingleMetricAsString('swarmbench_notification_queue_depth')).toMatch(/queue_depth 2/);
  });

  it('close() aborts a hung try at once and takes nothing more', async () => {
    const r = await receiver(() => 'hang');
    const n = notifier({ timeoutMs: 60_000 });
    n.enqueue(delivery(`${r.base}/hook`));
    await until(() => r.got.length === 1);
    const t0 = performance.now();
    await n.close();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(n.done).toHaveLength(0); // not settled: the next operator sends it
    expect(n.enqueue(delivery(`${r.base}/hook`))).toBe('closed');
  });

  it('never shows the URL\'s token: not in logs, reasons, or metrics, whatever goes wrong', async () => {
    const r = await receiver((_k, path) => (path.startsWith('/bad') ? { status: 400 } : path.startsWith('/hang') ? 'hang' : { status: 200 }));
    const closed = await receiver(() => ({ status: 200 }));
    const closedUrl = closed.base;
    await servers.pop()!.close(); // nothing listens there now: a network error
    const log = capture();
    const n = notifier({ log, timeoutMs: 100, maxTries: 2 });
    const q = '?sig=SECRETSIG456';
    for (const path of ['/ok/SECRETTOKEN123', '/bad/SECRETTOKEN123', '/hang/SECRETTOKEN123']) n.enqueue(delivery(`${r.base}${path}${q}`));
    n.enqueue(delivery(`${closedUrl}/x/SECRETTOKEN123${q}`));
    n.enqueue(delivery(`http://user:SECRETTOKEN123@127.0.0.1:1/x`));
    await until(() => n.done.length === 5);
    const everything = [...log.lines, ...n.done.map((s) => JSON.stringify(s.record)), await n.registry.metrics()].join('\n');
    expect(everything).toContain('127.0.0.1'); // the endpoint is shown...
    expect(everything).not.toMatch(/SECRETTOKEN123|SECRETSIG456/); // ...its secret parts never
    expect(n.done.map((s) => s.record.result).sort()).toEqual(['Delivered', 'Failed', 'Failed', 'Failed', 'Failed']);
  });
});

describe('exactly once, nearly: the status helpers across restarts', () => {
  const hookSecret = (url: string): V1Secret => ({ metadata: { name: 'hook', labels: { [CONSUMER_LABEL]: 'true' } }, data: { url: Buffer.from(url).toString('base64') } });
  const spec = NotifySpec.parse([
    { secretRef: { name: 'hook', key: 'url' }, events: ['finished', 'failed'] },
    { secretRef: { name: 'hook', key: 'url' }, format: 'slack', events: ['regressed'] },
  ]);
  /** Writes a status patch into the run, as the API server's merge patch does. */
  const apply = (run: RunObject, patch?: Record<string, unknown>): void => {
    if (patch) run.status = { ...run.status!, ...patch } as BenchmarkRunStatus;
  };
  const ctx = (n: Notifier, url: string, reads: string[] = []): NotifyContext => ({
    notifier: n,
    settings: { policy: LOOPBACK },
    readSecret: async (_ns, name) => (reads.push(name), hookSecret(url)),
    loadResult: async () => DOC,
    now: () => NOW,
  });

  it('pending is what the spec asks for less what the status records; markNotified records it, per attempt', () => {
    const run = finishedRun();
    const p = pendingNotifications(run, spec, { now: NOW });
    expect(p.map((x) => `${x.event}@${x.targetKey}`)).toEqual(['finished@hook/url:cloudevents', 'failed@hook/url:cloudevents', 'regressed@hook/url:slack']);
    const rec: NotificationRecord = { id: p[0]!.id, event: 'finished', target: p[0]!.targetKey, attempt: 1, result: 'Delivered', tries: 1, at: NOW.toISOString() };
    apply(run, markNotified(run, [rec]));
    expect(pendingNotifications(run, spec, { now: NOW }).map((x) => x.event)).toEqual(['failed', 'regressed']);
    // The same record again changes nothing; a Failed one counts as settled too.
    expect(markNotified(run, [rec]).notifications).toHaveLength(1);
    apply(run, markNotified(run, [{ ...rec, id: p[1]!.id, event: 'failed', result: 'Failed', reason: 'refused: HTTP 400' }]));
    expect(pendingNotifications(run, spec, { now: NOW }).map((x) => x.event)).toEqual(['regressed']);
    // A new attempt: the records of attempt 1 do not count, and markNotified drops them.
    const next = finishedRun({ attempt: 2, notifications: (run.status as { notifications: NotificationRecord[] }).notifications });
    expect(pendingNotifications(next, spec, { now: NOW }).map((x) => x.id)).toEqual([eventId(next.metadata.uid, 2, 'finished'), eventId(next.metadata.uid, 2, 'failed'), eventId(next.metadata.uid, 2, 'regressed')]);
    expect(markNotified(next, []).notifications).toEqual([]);
    // Stale (finished more than a day before) or not finished: nothing.
    expect(pendingNotifications(finishedRun({ finishedAt: '2026-11-20T00:00:00Z' }), spec, { now: NOW })).toEqual([]);
    expect(pendingNotifications(finishedRun({ phase: 'Running' }), spec, { now: NOW })).toEqual([]);
    expect(pendingNotifications(finishedRun(), undefined, { now: NOW })).toEqual([]);
  });

  it('a restart sends what was not recorded, with the same id and bytes, and never again what was', async () => {
    const r = await receiver(() => ({ status: 200 }));
    const url = `${r.base}/hook/T0K3N`;
    const run = finishedRun();

    // Operator 1: enqueues all three, they are delivered, and it dies before writing the status.
    const n1 = notifier();
    const o1 = await reconcileNotifications(run, spec, ctx(n1, url));
    expect(o1).toMatchObject({ waiting: 3, recorded: [] });
    expect(o1.patch).toBeUndefined();
    await until(() => n1.done.length === 3);
    const firstBodies = r.got.map((g) => g.body).sort();
    await n1.close();

    // Operator 2: nothing recorded, so all three again; the same ids and bodies (receivers dedupe).
    const reads: string[] = [];
    const n2 = notifier();
    const o2 = await reconcileNotifications(run, spec, ctx(n2, url, reads));
    expect(o2.waiting).toBe(3);
    expect(reads).toEqual(['hook', 'hook']); // once per target
    await until(() => n2.done.length === 3);
    expect(r.got.slice(3).map((g) => g.body).sort()).toEqual(firstBodies);
    const slack = r.got.find((g) => g.headers['content-type'] === 'application/json')!;
    expect(JSON.parse(slack.body)).toMatchObject({ text: expect.stringContaining('SwarmBench'), blocks: expect.any(Array) });
    expect(r.got.slice(3).filter((g) => g.headers['content-type'] === CLOUDEVENTS_CONTENT_TYPE).map((g) => JSON.parse(g.body).type).sort()).toEqual(['dev.swarmbench.run.failed', 'dev.swarmbench.run.finished']);

    // Its next reconcile records them (the status patch) and, once written, forgets them.
    const o3 = await reconcileNotifications(run, spec, ctx(n2, url));
    expect(o3.patch!.notifications.map((x) => x.result)).toEqual(['Delivered', 'Delivered', 'Delivered']);
    expect(o3.recorded).toHaveLength(3);
    apply(run, o3.patch);
    expect(pendingNotifications(run, spec, { now: NOW })).toEqual([]);
    const o4 = await reconcileNotifications(run, spec, ctx(n2, url));
    expect(o4).toEqual({ recorded: [], waiting: 0 });
    expect(n2.stats().settled).toBe(0);

    // Operator 3, after the status was written: sends nothing.
    const before = r.got.length;
    const n3 = notifier();
    expect(await reconcileNotifications(run, spec, ctx(n3, url))).toEqual({ recorded: [], waiting: 0 });
    expect(r.got.length).toBe(before);
    expect(r.got).toHaveLength(6);
  });

  it('a Secret that cannot be used settles as Failed at once, with the reason and no request', async () => {
    const r = await receiver(() => ({ status: 200 }));
    const n = notifier();
    const run = finishedRun();
    const c = { ...ctx(n, `${r.base}/x`), readSecret: async () => ({ metadata: { name: 'hook', labels: {} }, data: {} }) };
    const o = await reconcileNotifications(run, spec, c);
    expect(o.waiting).toBe(0);
    expect(o.patch!.notifications.map((x) => [x.event, x.result, x.tries, x.reason])).toEqual([
      ['finished', 'Failed', 0, 'Secret hook does not consent (no label swarmbench.io/consumer: "true")'],
      ['failed', 'Failed', 0, 'Secret hook does not consent (no label swarmbench.io/consumer: "true")'],
      ['regressed', 'Failed', 0, 'Secret hook does not consent (no label swarmbench.io/consumer: "true")'],
    ]);
    apply(run, o.patch);
    expect(pendingNotifications(run, spec, { now: NOW })).toEqual([]);
    expect(r.got).toHaveLength(0);
  });
});
