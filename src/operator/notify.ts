/**
 * Notifications of a finished run (docs/notifications.md): what is sent, to whom, and what the
 * run's status records of it. The sending (HTTP, retries, the bounded queue) is notify-sender.ts.
 *
 * - **Events.** For the current attempt of a run that ended Succeeded or Failed: `finished` (every
 *   such end), `failed` (phase Failed), `regressed` (a metric regressed against the baseline). A
 *   target (`spec.notify[i]`, src/api/notify.ts) gets those of its `events` list. Cancelled runs, and runs
 *   whose spec does not validate, are not notified.
 * - **CloudEvents 1.0**, structured JSON (`buildCloudEvent`): type `dev.swarmbench.run.<event>`,
 *   source `/apis/swarmbench.io/v1alpha1/namespaces/<ns>/benchmarkruns`, subject the run's name,
 *   time the attempt's `finishedAt`, id `eventId(uid, attempt, event)`: the same for every send of
 *   that event, by any operator, so receivers deduplicate on (source, id). The id includes the
 *   attempt: a rerun is a new event. `data` holds the run (namespace, name, uid, attempt), phase,
 *   verdict, reason, the summary, the regressions (test id, shift, its confidence interval, change,
 *   p) and the failed tests, from the status and, when given, the attempt's result document;
 *   never a Secret, a spec or a URL. Strings and lists are capped and the body is at most 64 KiB.
 * - **Slack** (`format: slack`): `{ text, blocks }` of the same data (`slackPayload`).
 * - **Exactly once, nearly.** `status.notifications` records each settled (delivered, or given up
 *   for good) notification of the current attempt (`markNotified`: a status merge patch);
 *   `pendingNotifications` is what the spec asks for less what is recorded. An operator that
 *   restarts sends what is not recorded and never again what is. A crash between a receiver's 2xx
 *   and the status write sends it again: delivery is at-least-once, and receivers deduplicate by id.
 *   A finished attempt older than `maxAgeMs` (24 h) is not notified any more (no storm after an
 *   outage, no notifications for old runs).
 * - **Secrets by consent**, the rule of policy.ts ("Secrets by consent", docs/security.md): the
 *   Secret of `spec.notify[i].secretRef` is used only when (1) the chart lets the operator read it
 *   (`notifySecrets`, the chart value `rbac.notifySecrets`; the operator's RBAC `get` names
 *   exactly those), (2) it exists, (3) it carries `swarmbench.io/consumer: "true"`. Admission checks
 *   that on metadata (`notifySecretViolations`); the send checks the label again on the Secret it
 *   reads (`resolveWebhook`): consent withdrawn before the send means nothing is sent.
 * - **Never blocking.** `reconcileNotifications` (through `notifyFinished`, the reconcile's one
 *   call for a finished run) does only API reads it needs (the Secret, once per target until the
 *   delivery is queued) and hands the sending to the Notifier's queue; it returns the status patch
 *   to write, if any. Not notified either: an attempt that ended SpecInvalid (admission refused a
 *   spec changed mid-run).
 */
import type { V1ObjectMeta, V1Secret } from '@kubernetes/client-node';
import { MAX_NOTIFICATION_RECORDS, NotificationsStatus, targetEvents, targetKey, type NotificationRecord, type NotifyEvent, type NotifySpec, type NotifyTarget } from '../api/notify.ts';
import type { ResultDocument } from '../api/schema.ts';
import type { FieldError, Validated } from '../api/validate.ts';
import { isForbidden } from '../kube/client.ts';
import { API_VERSION_FULL, exportName } from '../kube/names.ts';
import type { RunObject } from './cluster.ts';
import type { Deps, ReconcileResult, RunCtx } from './context.ts';
import { exportedDocument } from './finish.ts';
import { deliveryKey, webhookUrl, WebhookUrlError, type Notifier, type WebhookPolicy } from './notify-sender.ts';
import { CONSUMER_LABEL, type AdmissionLookups, type AdmissionSettings, type Violation } from './policy.ts';
import { recordEvent, writeStatus } from './status.ts';

export const EVENT_TYPE_PREFIX = 'dev.swarmbench.run.';
/** The largest body sent (CloudEvents or Slack JSON, UTF-8 bytes). */
export const MAX_BODY_BYTES = 64 * 1024;
const MAX_STRING = 1000;
const MAX_LIST = 32;
/** A finished attempt older than this is not notified any more. */
export const DEFAULT_MAX_AGE_MS = 24 * 3600 * 1000;

export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';

// ---------------------------------------------------------------------------------------------
// Which events

/** The id of an event: the same for every send of it, by any operator. */
export function eventId(uid: string, attempt: number, event: NotifyEvent): string {
  return `${uid}.${attempt}.${event}`;
}

/**
 * Whether the current attempt ended Succeeded or Failed, and not because the spec could not run
 * (a spec refused by admission after the attempt started: its `notify` is not trusted either).
 */
const isEnded = (run: RunObject): boolean =>
  (run.status?.attempt ?? 0) >= 1 &&
  (run.status?.phase === 'Succeeded' || run.status?.phase === 'Failed') &&
  !run.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'SpecInvalid');

function regressedIds(run: RunObject, doc?: ResultDocument): string[] {
  return doc?.comparison?.regressed ?? run.status?.comparison?.regressed ?? [];
}

/** The events the current attempt of `run` gives rise to (none unless it ended Succeeded or Failed). */
export function runEvents(run: RunObject): NotifyEvent[] {
  if (!isEnded(run)) return [];
  const out: NotifyEvent[] = ['finished'];
  if (regressedIds(run).length || run.status?.conditions?.some((c) => c.type === 'Regressed' && c.status === 'True')) out.push('regressed');
  if (run.status?.phase === 'Failed') out.push('failed');
  return out;
}

/** What the status records (records of other attempts and a malformed field count as none). */
export function notificationRecords(run: RunObject): NotificationRecord[] {
  const raw = (run.status as { notifications?: unknown } | undefined)?.notifications;
  const parsed = NotificationsStatus.safeParse(raw ?? []);
  const attempt = run.status?.attempt ?? 0;
  return parsed.success ? parsed.data.filter((r) => r.attempt === attempt) : [];
}

export interface PendingNotification {
  target: NotifyTarget;
  /** `targetKey(target)`. */
  targetKey: string;
  event: NotifyEvent;
  id: string;
  attempt: number;
}

/**
 * The notifications the spec asks for that the status does not record as settled, for the
 * current attempt; none when it did not end Succeeded or Failed, or ended more than `maxAgeMs` ago.
 */
export function pendingNotifications(run: RunObject, notify: NotifySpec | undefined, opts: { now?: Date; maxAgeMs?: number } = {}): PendingNotification[] {
  if (!notify?.length) return [];
  const events = runEvents(run);
  if (!events.length) return [];
  const finishedAt = Date.parse(run.status?.finishedAt ?? '');
  const now = (opts.now ?? new Date()).getTime();
  if (Number.isFinite(finishedAt) && now - finishedAt > (opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS)) return [];
  const attempt = run.status!.attempt!;
  const done = new Set(notificationRecords(run).map((r) => deliveryKey(r.id, r.target)));
  const out: PendingNotification[] = [];
  for (const target of notify) {
    const tk = targetKey(target);
    for (const event of targetEvents(target)) {
      if (!events.includes(event)) continue;
      const id = eventId(run.metadata.uid, attempt, event);
      if (!done.has(deliveryKey(id, tk))) out.push({ target, targetKey: tk, event, id, attempt });
    }
  }
  return out;
}

/**
 * The status merge patch that records settled notifications: the current attempt's records with
 * `settled` added (one per id and target; records of other attempts dropped). A merge patch
 * replaces the whole list, so the reconcile that read the run writes it (the status is guarded by
 * the run's resourceVersion: a run changed in between is a 409 and a fresh read).
 */
export function markNotified(run: RunObject, settled: readonly NotificationRecord[]): { notifications: NotificationRecord[] } {
  const attempt = run.status?.attempt ?? 0;
  const byKey = new Map<string, NotificationRecord>();
  for (const r of [...notificationRecords(run), ...settled.filter((s) => s.attempt === attempt)]) {
    const k = deliveryKey(r.id, r.target);
    if (!byKey.has(k)) byKey.set(k, r);
  }
  return { notifications: [...byKey.values()].slice(0, MAX_NOTIFICATION_RECORDS) };
}

// ---------------------------------------------------------------------------------------------
// The CloudEvent

export interface RegressionData {
  id: string;
  name?: string;
  unit?: string;
  better?: 'lower' | 'higher';
  /** Hodges–Lehmann estimate of current − baseline, in `unit`. */
  shift?: number | null;
  /** Its confidence interval (`confidence` of the comparison). */
  interval?: [number, number] | null;
  changePct?: number | null;
  p?: number | null;
}

export interface RunEventData {
  namespace: string;
  name: string;
  uid: string;
  attempt: number;
  phase: string;
  verdict: 'Passed' | 'Failed' | null;
  /** The Ready condition's reason and message (why it failed, the counts). */
  reason: string | null;
  message: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  summary: { total: number; passed: number; failed: number; skipped: number; successRate: number | null; regressions?: number } | null;
  /** The baseline compared with (a run or ConfigMap name), when there was one. */
  baseline: string | null;
  confidence?: number;
  regressions: RegressionData[];
  failedTests: { id: string; name?: string; reason?: string }[];
  /** One line for humans. */
  headline: string;
  /** Lists or strings were cut to fit the bounds. */
  truncated?: true;
}

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: RunEventData;
}

const cap = (s: string | undefined | null, n = MAX_STRING): string | null => (s == null ? null : s.length > n ? `${s.slice(0, n - 1)}…` : s);
const finite = (x: number | null | undefined): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

/** The CloudEvent of `event` for the run's current attempt; `doc` (its result document) adds the regressions' figures. */
export function buildCloudEvent(run: RunObject, event: NotifyEvent, doc?: ResultDocument, opts: { now?: Date } = {}): CloudEvent {
  const { name, namespace, uid } = run.metadata;
  const st = run.status ?? {};
  const attempt = st.attempt ?? 0;
  const ready = st.conditions?.find((c) => c.type === 'Ready');
  const docOk = doc && doc.run.name === name && doc.run.attempt === attempt ? doc : undefined;
  const s = docOk?.summary ?? st.summary;
  const cmp = docOk?.comparison;
  const regressions: RegressionData[] = cmp
    ? cmp.metrics.filter((m) => m.verdict === 'Regressed').slice(0, MAX_LIST + 1).map((m) => ({
        id: m.id,
        name: cap(m.name, 200)!,
        unit: cap(m.unit, 40)!,
        better: m.better,
        shift: finite(m.shift),
        interval: m.ci && Number.isFinite(m.ci[0]) && Number.isFinite(m.ci[1]) ? [m.ci[0], m.ci[1]] : null,
        changePct: finite(m.changePct),
        p: finite(m.p),
      }))
    : regressedIds(run).slice(0, MAX_LIST + 1).map((id) => ({ id: cap(id, 40)! }));
  const failedTests = (docOk?.tests ?? st.tests ?? [])
    .filter((t) => t.result === 'Failed')
    .slice(0, MAX_LIST + 1)
    .map((t) => ({ id: cap(t.id, 40)!, ...(t.name ? { name: cap(t.name, 200)! } : {}), ...(t.reason ? { reason: cap(t.reason, 300)! } : {}) }));
  const verdict = s?.verdict === 'Passed' || s?.verdict === 'Failed' ? s.verdict : null;
  const summary = s
    ? { total: s.total, passed: s.passed, failed: s.failed, skipped: s.skipped, successRate: finite(s.successRate), ...(typeof s.regressions === 'number' ? { regressions: s.regressions } : {}) }
    : null;
  const counts = summary ? `, ${summary.passed}/${summary.total} passed` : '';
  const regCount = cmp ? cmp.metrics.filter((m) => m.verdict === 'Regressed').length : regressedIds(run).length;
  const regs = regCount ? `, ${regCount} regressed (${regressions.slice(0, 5).map((r) => r.id).join(', ')}${regCount > 5 ? ', …' : ''})` : '';
  const data: RunEventData = {
    namespace,
    name,
    uid,
    attempt,
    phase: st.phase ?? 'Unknown',
    verdict,
    reason: cap(ready?.reason, 100),
    message: cap(ready?.message),
    startedAt: st.startedAt ?? null,
    finishedAt: st.finishedAt ?? null,
    summary,
    baseline: cap(st.comparison?.baseline ?? cmp?.baseline.name, 253),
    ...(cmp ? { confidence: cmp.method.confidence } : {}),
    regressions,
    failedTests,
    headline: cap(`${namespace}/${name} attempt ${attempt}: ${st.phase ?? 'Unknown'}${verdict ? ` (verdict ${verdict})` : ''}${counts}${regs}`, 300)!,
  };
  const ce: CloudEvent = {
    specversion: '1.0',
    id: eventId(uid, attempt, event),
    source: `/apis/${API_VERSION_FULL}/namespaces/${namespace}/benchmarkruns`,
    type: `${EVENT_TYPE_PREFIX}${event}`,
    subject: name,
    time: st.finishedAt ?? (opts.now ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    data,
  };
  return fit(ce);
}

const bytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v), 'utf8');

/** Cuts the lists (then the message) until the event is within MAX_BODY_BYTES and MAX_LIST entries. */
function fit(ce: CloudEvent): CloudEvent {
  const d = ce.data;
  const cut = (n: number) => {
    if (d.regressions.length > n || d.failedTests.length > n) d.truncated = true;
    d.regressions = d.regressions.slice(0, n);
    d.failedTests = d.failedTests.slice(0, n);
  };
  cut(MAX_LIST);
  for (let n = MAX_LIST; bytes(ce) > MAX_BODY_BYTES && n > 0; n = Math.floor(n / 2)) cut(Math.floor(n / 2));
  if (bytes(ce) > MAX_BODY_BYTES) {
    d.message = cap(d.message, 100);
    d.truncated = true;
  }
  return ce;
}

// ---------------------------------------------------------------------------------------------
// Slack

/** Slack mrkdwn text: its three special characters escaped. */
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (x: number | null | undefined, unit = ''): string => (x == null ? 'n/a' : `${Number(x.toPrecision(4))}${unit ? ` ${unit}` : ''}`);

export interface SlackPayload {
  text: string;
  blocks: Record<string, unknown>[];
}

/** A Slack incoming-webhook body of an event: `text` (the fallback) and blocks (at most 10 lines per list). */
export function slackPayload(ce: CloudEvent): SlackPayload {
  const d = ce.data;
  const icon = d.phase === 'Succeeded' && !d.regressions.length ? ':white_check_mark:' : d.phase === 'Failed' ? ':x:' : ':warning:';
  const event = ce.type.slice(EVENT_TYPE_PREFIX.length);
  const lines = [
    `*Phase:* ${esc(d.phase)}${d.verdict ? `   *Verdict:* ${d.verdict}` : ''}`,
    ...(d.summary ? [`*Passed:* ${d.summary.passed}/${d.summary.total} (${d.summary.skipped} skipped, success rate ${num(d.summary.successRate, '%')})`] : []),
    ...(d.message && d.phase === 'Failed' ? [`*Reason:* ${esc(cap(d.message, 500)!)}`] : []),
  ];
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: cap(`SwarmBench ${d.namespace}/${d.name}: ${d.phase}`, 150)! } },
    { type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } },
  ];
  const list = (title: string, items: string[]) => {
    if (!items.length) return;
    const text = `*${title}*\n${items.slice(0, 10).map((i) => `• ${i}`).join('\n')}${items.length > 10 ? `\n…and ${items.length - 10} more` : ''}`;
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cap(text, 2900)! } });
  };
  const conf = d.confidence !== undefined ? `${Math.round(d.confidence * 100)}% ` : '';
  list(
    `Regressions${d.baseline ? ` against ${esc(d.baseline)}` : ''}:`,
    d.regressions.map((r) => {
      const shift = r.shift != null ? `shift ${r.shift > 0 ? '+' : ''}${num(r.shift, r.unit)}` : 'regressed';
      const ci = r.interval ? ` (${conf}CI ${num(r.interval[0])} … ${num(r.interval[1])})` : '';
      const pct = r.changePct != null ? `, ${r.changePct > 0 ? '+' : ''}${num(r.changePct)}%` : '';
      return `${esc(r.id)}${r.name ? ` ${esc(r.name)}` : ''}: ${shift}${ci}${pct}`;
    }),
  );
  list('Failed tests:', d.failedTests.map((t) => `${esc(t.id)}${t.name ? ` ${esc(t.name)}` : ''}${t.reason ? `: ${esc(cap(t.reason, 200)!)}` : ''}`));
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: esc(`${event} · attempt ${d.attempt} · id ${ce.id}`) }] });
  return { text: `${icon} SwarmBench ${esc(d.headline)}`, blocks };
}

/** The body and content type a target gets. */
export function encodeBody(ce: CloudEvent, format: NotifyTarget['format']): { body: string; contentType: string } {
  if (format === 'slack') return { body: JSON.stringify(slackPayload(ce)), contentType: 'application/json' };
  return { body: JSON.stringify(ce), contentType: CLOUDEVENTS_CONTENT_TYPE };
}

// ---------------------------------------------------------------------------------------------
// Secrets by consent

/** What the chart decides for notifications. */
export interface NotifySettings {
  /** Secret names the chart lets the operator read for notifications (`rbac.notifySecrets`); undefined: RBAC alone decides. */
  notifySecrets?: readonly string[] | undefined;
  policy: WebhookPolicy;
}

/**
 * Admission (policy.ts `admit` calls it): each `spec.notify[i].secretRef` by the consent rule of
 * policy.ts, on the Secret's metadata only; violations name `spec.notify[i].secretRef.name`.
 */
export async function notifySecretViolations(ns: string, notify: NotifySpec | undefined, settings: Pick<NotifySettings, 'notifySecrets'>, lookups: AdmissionLookups): Promise<Violation[]> {
  const out: Violation[] = [];
  const seen = new Map<string, V1ObjectMeta | undefined | 'forbidden'>();
  for (const [i, t] of (notify ?? []).entries()) {
    const name = t.secretRef.name;
    const field = `spec.notify[${i}].secretRef.name`;
    const consent = `label it: kubectl label secret ${name} -n ${ns} ${CONSUMER_LABEL}=true`;
    if (settings.notifySecrets && !settings.notifySecrets.includes(name)) {
      out.push({ field, message: `Secret ${name} is not one the operator may read: the cluster administrator adds its name to the chart value rbac.notifySecrets, and the Secret must consent (${consent})` });
      continue;
    }
    if (!seen.has(name)) {
      try {
        seen.set(name, await lookups.readSecretMetadata(ns, name));
      } catch (e) {
        if (!isForbidden(e)) throw e;
        seen.set(name, 'forbidden');
      }
    }
    const meta = seen.get(name);
    if (meta === 'forbidden') out.push({ field, message: `the operator may not read Secret ${name} in ${ns}: the cluster administrator adds its name to the chart value rbac.notifySecrets` });
    else if (!meta) out.push({ field, message: `Secret ${name} not found in ${ns}: create it, and ${consent}` });
    else if (meta.labels?.[CONSUMER_LABEL] !== 'true') out.push({ field, message: `Secret ${name} does not consent to SwarmBench runs (no label ${CONSUMER_LABEL}: "true"): if its owner agrees, ${consent}` });
  }
  return out;
}

/**
 * The reconcile's admission step for `spec.notify` (after policy.ts `admitSpec`, so that policy.ts
 * need not import this file): a valid spec whose notify Secrets break the consent rule becomes the
 * field errors of SpecInvalid; anything else is returned as it is.
 */
export async function admitNotify<S extends { notify?: NotifySpec | undefined }>(
  validated: Validated<S>,
  run: { metadata: { namespace: string } },
  settings: Pick<NotifySettings, 'notifySecrets'>,
  lookups: AdmissionLookups,
): Promise<Validated<S>> {
  if (!validated.ok || !validated.value.notify?.length) return validated;
  const v = await notifySecretViolations(run.metadata.namespace, validated.value.notify, settings, lookups);
  return v.length ? { ok: false, errors: v.map((x): FieldError => ({ path: x.field, message: x.message })) } : validated;
}

/**
 * The webhook URL of a target, read at send time from its Secret (RunCluster `readSecret`), with
 * consent checked again on the Secret read; a problem (never the URL) when it cannot be used. An
 * API error other than 403 is thrown (the reconcile retries it).
 */
export async function resolveWebhook(
  readSecret: (namespace: string, name: string) => Promise<V1Secret | undefined>,
  ns: string,
  target: NotifyTarget,
  settings: NotifySettings,
): Promise<{ url: URL } | { problem: string }> {
  const { name, key } = target.secretRef;
  if (settings.notifySecrets && !settings.notifySecrets.includes(name)) return { problem: `Secret ${name} is not in the chart value rbac.notifySecrets` };
  let secret: V1Secret | undefined;
  try {
    secret = await readSecret(ns, name);
  } catch (e) {
    if (isForbidden(e)) return { problem: `the operator may not read Secret ${name}` };
    throw e;
  }
  if (!secret) return { problem: `Secret ${name} not found` };
  if (secret.metadata?.labels?.[CONSUMER_LABEL] !== 'true') return { problem: `Secret ${name} does not consent (no label ${CONSUMER_LABEL}: "true")` };
  const b64 = secret.data?.[key];
  if (!b64) return { problem: `Secret ${name} has no key ${key}` };
  try {
    return { url: webhookUrl(Buffer.from(b64, 'base64').toString('utf8'), settings.policy) };
  } catch (e) {
    if (e instanceof WebhookUrlError) return { problem: `Secret ${name} key ${key}: ${e.message}` };
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// The reconcile's call

export interface NotifyContext {
  notifier: Notifier;
  settings: NotifySettings;
  readSecret: (namespace: string, name: string) => Promise<V1Secret | undefined>;
  /** The attempt's result document (its export), read only when something is to be enqueued. */
  loadResult?: () => Promise<ResultDocument | undefined>;
  now: () => Date;
  maxAgeMs?: number;
}

export interface NotifyOutcome {
  /** The status merge patch to write (settled notifications), when there is something to record. */
  patch?: { notifications: NotificationRecord[] };
  /** Notifier keys to `forget` once the patch is written. */
  recorded: string[];
  /** Notifications still on their way (queued, retrying): reconcile again later. */
  waiting: number;
}

/**
 * For a finished run: forgets what the status records, records what settled, enqueues what is
 * pending and not yet held (its Secret read then, its body built from the status and result
 * document). A Secret that cannot be used settles as Failed at once, with the reason.
 */
export async function reconcileNotifications(run: RunObject, notify: NotifySpec | undefined, ctx: NotifyContext): Promise<NotifyOutcome> {
  const uid = run.metadata.uid;
  const recordedKeys = notificationRecords(run).map((r) => deliveryKey(r.id, r.target));
  ctx.notifier.forget(recordedKeys);
  const pending = pendingNotifications(run, notify, { now: ctx.now(), ...(ctx.maxAgeMs !== undefined ? { maxAgeMs: ctx.maxAgeMs } : {}) });
  if (!pending.length) return { recorded: [], waiting: 0 };
  const pendingKeys = new Set(pending.map((p) => deliveryKey(p.id, p.targetKey)));
  const settled = ctx.notifier.settled(uid).filter((s) => pendingKeys.has(s.key));
  const records: NotificationRecord[] = settled.map((s) => s.record);
  const done = new Set(settled.map((s) => s.key));
  const urls = new Map<string, { url: URL } | { problem: string }>();
  const events = new Map<NotifyEvent, CloudEvent>();
  let doc: ResultDocument | undefined;
  let docRead = false;
  let waiting = 0;
  for (const p of pending) {
    const key = deliveryKey(p.id, p.targetKey);
    if (done.has(key)) continue;
    if (ctx.notifier.has(p.id, p.targetKey)) {
      waiting++;
      continue;
    }
    let where = urls.get(p.targetKey);
    if (!where) urls.set(p.targetKey, (where = await resolveWebhook(ctx.readSecret, run.metadata.namespace, p.target, ctx.settings)));
    if ('problem' in where) {
      records.push({ id: p.id, event: p.event, target: p.targetKey, attempt: p.attempt, result: 'Failed', tries: 0, at: ctx.now().toISOString(), reason: where.problem.slice(0, 300) });
      continue;
    }
    if (!docRead && ctx.loadResult) {
      docRead = true;
      doc = await ctx.loadResult().catch(() => undefined);
    }
    let ce = events.get(p.event);
    if (!ce) events.set(p.event, (ce = buildCloudEvent(run, p.event, doc, { now: ctx.now() })));
    const { body, contentType } = encodeBody(ce, p.target.format);
    const r = ctx.notifier.enqueue({
      runKey: `${run.metadata.namespace}/${run.metadata.name}`, uid, attempt: p.attempt, event: p.event, id: p.id,
      target: p.targetKey, format: p.target.format ?? 'cloudevents', url: where.url, body, contentType,
    });
    if (r !== 'closed') waiting++;
  }
  return { ...(records.length ? { patch: markNotified(run, records) } : {}), recorded: settled.map((s) => s.key), waiting };
}

// ---------------------------------------------------------------------------------------------
// The reconcile's step

/** While notifications are on their way, the run is looked at again after this long at the latest (a dropped one is queued again). */
export const NOTIFY_RECHECK_MS = 60_000;

/** The chart's notification settings as the admission policy carries them (`--admission`: rbac.notifySecrets, security.notifications.*). */
export function notifySettingsOf(a: AdmissionSettings): NotifySettings {
  const n = a.notifications;
  return {
    notifySecrets: a.notifySecrets,
    policy: { apiServerHosts: a.apiServerHosts, allowLoopback: n.allowLoopback, allowPrivate: n.allowPrivate, allowedUrls: n.allowedUrls, allowedHosts: n.allowedHosts },
  };
}

/**
 * The reconcile's one call for a finished run (reconcile.ts): `reconcileNotifications` over the
 * cluster (the Secret read live; the attempt's result document from its export ConfigMap, read
 * only when something is to be queued), then what settled written into `status.notifications` (a
 * merge patch guarded by the run's resourceVersion) with an event per notification, and forgotten
 * by the Notifier only once the API server returned it in the status: an API server that drops the
 * field (an old CRD) makes the Notifier keep it, so it is not sent again. Nothing waits on a
 * receiver. A requeue while notifications are on their way (the Notifier's `onSettled` wakes the
 * run sooner).
 */
export async function notifyFinished(deps: Deps, rc: RunCtx): Promise<ReconcileResult> {
  const n = deps.notify;
  const targets = rc.spec.notify;
  if (!n || !targets?.length) return;
  const { run, ref } = rc;
  const out = await reconcileNotifications(run, targets, {
    notifier: n.notifier,
    settings: n.settings,
    readSecret: (ns, name) => deps.cluster.readSecret(ns, name),
    loadResult: async () => {
      const attempt = run.status?.attempt ?? 0;
      const name = run.status?.export?.configMapName ?? exportName(ref.name, rc.spec.export?.configMapName);
      const cm = await deps.cluster.read('ConfigMap', ref.namespace, name, { live: true });
      return cm ? exportedDocument(cm, ref, attempt) : undefined;
    },
    now: () => deps.now(),
  });
  if (out.patch) {
    const before = new Set(notificationRecords(run).map((r) => deliveryKey(r.id, r.target)));
    await writeStatus(deps, run, out.patch);
    const stored = notificationRecords(run);
    const kept = new Set(stored.map((r) => deliveryKey(r.id, r.target)));
    n.notifier.forget(out.recorded.filter((k) => kept.has(k)));
    const lost = out.patch.notifications.filter((r) => !kept.has(deliveryKey(r.id, r.target)));
    if (lost.length) deps.log.warn('status.notifications was not stored (is the BenchmarkRun CRD up to date?): the notifications stay held, not sent again', { run: ref.name, lost: lost.length });
    for (const r of stored.filter((x) => !before.has(deliveryKey(x.id, x.target)))) {
      const what = `attempt ${r.attempt}: ${r.event} notification to ${r.target}`;
      await recordEvent(deps, run, r.result === 'Delivered'
        ? { type: 'Normal', reason: 'Notified', message: `${what} delivered (${r.tries} ${r.tries === 1 ? 'try' : 'tries'}), id ${r.id}` }
        : { type: 'Warning', reason: 'NotificationFailed', message: `${what} failed: ${r.reason ?? 'no reason'}` });
    }
  }
  return out.waiting ? { requeueAfterMs: NOTIFY_RECHECK_MS } : undefined;
}
