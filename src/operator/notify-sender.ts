/**
 * The delivery half of notifications (docs/notifications.md; what is sent is notify.ts): the
 * webhook URL's checks and redaction, one HTTP POST, and `Notifier`, the bounded in-memory queue
 * that sends asynchronously with retries, so that the reconcile never waits on a receiver.
 *
 * - **URL.** http or https only, at most 2048 characters, no `user:password@`; never loopback,
 *   link-local, a cloud metadata address or the API server (policy.ts `forbiddenHost`, the rule the
 *   operator applies to every tenant-chosen URL), and, when the administrator lists any, only under
 *   `allowedUrls` / on `allowedHosts`; a private or cluster-internal receiver (policy.ts
 *   `privateHost`: 10/8, 172.16/12, 192.168/16, fc00::/7, `*.svc`, one-label names, ...) only when
 *   listed there or with `allowPrivate`. Before each try the name is resolved and every address it
 *   gives is judged by the same rules (`resolvedProblem`): a public name pointing at the metadata
 *   service, the API server or a cluster IP is refused. (The connection resolves the name again: a
 *   DNS answer that changes in between, rebinding, is not caught; where that matters the
 *   administrator lists the receivers and limits the operator's egress.) The URL is a secret (webhook URLs carry their token): it is
 *   never logged and never put in an error or a status; logs show `redactUrl` (scheme and host).
 *   Redirects are not followed (a 3xx is a refusal), so a receiver cannot send the operator on.
 * - **One try.** POST with the body's content type, a time limit per try; the answer's body is
 *   never read. 2xx: delivered. 408, 429, 5xx, a network error or the time limit: try again.
 *   Any other answer (3xx, 4xx): refused for good.
 * - **Retries.** At most `maxTries` tries (6); before try k+1 the wait is exponential with equal
 *   jitter: d = min(maxDelayMs, baseDelayMs * 2^(k-1)), wait uniform in [d/2, d] (defaults 2 s and
 *   30 s: at most ~60 s of waits, plus 6 tries of at most 10 s: about 2 minutes). A `Retry-After`
 *   (seconds or an HTTP date) lengthens the wait to what it asks, at most `maxRetryAfterMs` (60 s).
 * - **Queue.** `enqueue` returns at once. At most `capacity` deliveries are held (queued, waiting
 *   to retry or in flight); a full queue drops its oldest one not in flight, with a warning and
 *   `swarmbench_notifications_total{result="dropped"}`: that one stays unsettled, so the reconcile
 *   enqueues it again later (notify.ts). At most `concurrency` requests at once. A delivery is
 *   known by its key (event id and target): one already held, or settled and not yet forgotten, is
 *   not enqueued twice. A settled delivery (Delivered, or Failed for good) is kept, at most
 *   `settledCapacity` of them, until the reconcile has written it into the run's status and calls
 *   `forget`; `onSettled` tells the operator to reconcile the run.
 * - **close()** stops taking deliveries, aborts the tries in flight and the waits; what was not
 *   settled is sent again by the next operator (at-least-once, docs/notifications.md).
 */
import { lookup } from 'node:dns/promises';
import { Counter, Gauge, Registry } from 'prom-client';
import type { NotifyEvent, NotifyFormat, NotificationRecord } from '../api/notify.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { VERSION } from '../version.ts';
import { forbiddenHost, hostAllowed, privateHost, underPrefix } from './policy.ts';

// ---------------------------------------------------------------------------------------------
// The URL

/** Where webhooks may go (the chart's `security.notifications.*`, through `--admission`; policy.ts's never-allowed list always applies). */
export interface WebhookPolicy {
  /** Hosts of the API server (admission's `apiServerHosts`): never a receiver. */
  apiServerHosts: readonly string[];
  /** Loopback receivers (only for a single-machine test cluster, like `security.prometheus.allowLoopback`). */
  allowLoopback?: boolean;
  /** Private and cluster-internal receivers (policy.ts `privateHost`) besides those listed below. */
  allowPrivate?: boolean;
  /** When any is listed, a URL must be under one of these prefixes or on one of `allowedHosts`. */
  allowedUrls?: readonly string[];
  allowedHosts?: readonly string[];
}

export const MAX_URL_LENGTH = 2048;

/** A webhook URL that may not be used; the message never holds the URL. */
export class WebhookUrlError extends Error {
  override name = 'WebhookUrlError';
}

/** The webhook URL of a Secret's value, checked (see the header); throws WebhookUrlError without echoing it. */
export function webhookUrl(text: string, policy: WebhookPolicy): URL {
  const t = text.trim();
  if (!t) throw new WebhookUrlError('the webhook URL is empty');
  if (t.length > MAX_URL_LENGTH) throw new WebhookUrlError(`the webhook URL is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(t);
  } catch {
    throw new WebhookUrlError('the webhook URL is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WebhookUrlError(`the webhook URL must be http or https, not ${url.protocol.slice(0, 20)}`);
  if (url.username || url.password) throw new WebhookUrlError('the webhook URL must not carry credentials (user:password@): put the receiver\'s token in its path or query');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const never = forbiddenHost(url.hostname, policy.apiServerHosts, { port, allowLoopback: policy.allowLoopback ?? false });
  if (never) throw new WebhookUrlError(`the webhook host ${url.hostname} ${never}: never allowed as a receiver`);
  const urls = policy.allowedUrls ?? [];
  const hosts = policy.allowedHosts ?? [];
  const listed = listedReceiver(url, policy);
  if ((urls.length || hosts.length) && !listed) {
    throw new WebhookUrlError(`the webhook host ${url.host} is not one the cluster administrator allows (security.notifications.allowedUrls, allowedHosts)`);
  }
  const internal = listed || policy.allowPrivate ? undefined : privateHost(url.hostname);
  if (internal) throw new WebhookUrlError(`the webhook host ${url.hostname} ${internal}: ${PRIVATE_HINT}`);
  return url;
}

const PRIVATE_HINT = 'a private or cluster-internal receiver is allowed only when the cluster administrator lists it (security.notifications.allowedUrls, allowedHosts) or sets security.notifications.allowPrivate';

/** Whether the administrator names this receiver (`allowedUrls`, `allowedHosts`). */
function listedReceiver(url: URL, policy: WebhookPolicy): boolean {
  return (policy.allowedUrls ?? []).some((p) => underPrefix(url, p)) || (policy.allowedHosts ?? []).some((h) => hostAllowed(url, h));
}

/**
 * Why the addresses a webhook's name resolves to may not be used, or undefined: each one by the
 * never-allowed rule, and, unless the receiver is listed or `allowPrivate`, by `privateHost`.
 */
export function resolvedProblem(url: URL, addresses: readonly string[], policy: WebhookPolicy): string | undefined {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const free = listedReceiver(url, policy) || policy.allowPrivate;
  for (const a of addresses) {
    const never = forbiddenHost(a, policy.apiServerHosts, { port, allowLoopback: policy.allowLoopback ?? false });
    if (never) return `the webhook host ${url.hostname} resolves to ${a}, which ${never}: never allowed as a receiver`;
    const internal = free ? undefined : privateHost(a);
    if (internal) return `the webhook host ${url.hostname} resolves to ${a}, which ${internal}: ${PRIVATE_HINT}`;
  }
  return undefined;
}

/** The addresses of a host name (every one, as the system resolver gives them). */
export async function lookupAll(hostname: string): Promise<string[]> {
  const host = hostname.replace(/^\[|\]$/g, '');
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

/** What logs may show of a webhook URL: scheme and host, never user, path or query. */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}/…`;
}

/** `text` with every secret part of `url` (the whole URL, its path and query, user and password) replaced. */
export function scrub(text: string, url: URL): string {
  const parts = [url.href, url.href.replace(/\/$/, ''), `${url.pathname}${url.search}`, url.pathname, url.search, url.username, url.password]
    .filter((p) => p.length >= 2 && p !== '/')
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const p of parts) {
    out = out.split(p).join('<redacted>');
    const decoded = safeDecode(p);
    if (decoded !== p && decoded.length >= 2) out = out.split(decoded).join('<redacted>');
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// One try

export type TryResult =
  | { ok: true; status: number }
  | { ok: false; retry: boolean; reason: string; retryAfterMs?: number };

/** `Retry-After` (delta-seconds or an HTTP date) in ms from `now`, or undefined when absent or not one. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  if (v.length > 64) return undefined;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** Whether an HTTP status is worth another try. */
export function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** One POST (see the header); never throws, never reads the answer's body, never shows the URL. */
export async function postOnce(url: URL, body: string, contentType: string, timeoutMs: number, signal?: AbortSignal, now: () => number = Date.now): Promise<TryResult> {
  const limit = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, {
      method: 'POST',
      body,
      headers: { 'content-type': contentType, 'user-agent': `swarmbench/${VERSION}` },
      redirect: 'manual',
      signal: signal ? AbortSignal.any([signal, limit]) : limit,
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    if (res.status >= 300 && res.status < 400) return { ok: false, retry: false, reason: `HTTP ${res.status}: redirects are not followed` };
    const after = parseRetryAfter(res.headers.get('retry-after'), now());
    return { ok: false, retry: retryable(res.status), reason: `HTTP ${res.status}`, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  } catch (e) {
    if (signal?.aborted) return { ok: false, retry: false, reason: 'the operator stopped' };
    if (limit.aborted) return { ok: false, retry: true, reason: `no answer within ${timeoutMs} ms` };
    const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
    const why = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : errorMessage(e);
    return { ok: false, retry: true, reason: scrub(`network error: ${why}`.slice(0, 200), url) };
  }
}

export interface RetryOptions {
  maxTries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
}

/** The wait before try `tries + 1` after `tries` tries (see the header); `random` in [0, 1). */
export function retryDelay(tries: number, o: RetryOptions, random: () => number, retryAfterMs?: number): number {
  const d = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** Math.max(0, tries - 1));
  const wait = d / 2 + random() * (d / 2);
  return Math.round(retryAfterMs === undefined ? wait : Math.max(wait, Math.min(retryAfterMs, o.maxRetryAfterMs)));
}

// ---------------------------------------------------------------------------------------------
// The queue

/** One notification to one target, ready to send. */
export interface Delivery {
  /** `namespace/name` of the run (onSettled: the run to reconcile). */
  runKey: string;
  uid: string;
  attempt: number;
  event: NotifyEvent;
  /** The event id (notify.ts `eventId`). */
  id: string;
  /** notify's `targetKey`: how logs and the status name the target. */
  target: string;
  format: NotifyFormat;
  /** Checked with `webhookUrl`; never logged. */
  url: URL;
  body: string;
  contentType: string;
}

/** A settled delivery: its record for the run's status. */
export interface Settled {
  key: string;
  runKey: string;
  uid: string;
  record: NotificationRecord;
}

export interface NotifierOptions extends Partial<RetryOptions> {
  log: Logger;
  /** Checked again before each try (defence in depth: notify.ts checks it when reading the Secret). */
  policy: WebhookPolicy;
  /** Deliveries held at most (queued, waiting, in flight): 256. */
  capacity?: number;
  /** Requests at once: 4. */
  concurrency?: number;
  /** Time limit of one try: 10 s. */
  timeoutMs?: number;
  /** Settled deliveries kept until `forget`: 4096 (the oldest go first: at worst one is sent again). */
  settledCapacity?: number;
  /** Registry of the metrics (the operator's: OperatorMetrics.registry); a private one when absent. */
  registry?: Registry;
  onSettled?: (s: Settled) => void;
  random?: () => number;
  now?: () => Date;
  /** The addresses of a host name, judged before each try (`resolvedProblem`); default `lookupAll`, the system resolver. */
  lookup?: (hostname: string) => Promise<string[]>;
}

export type EnqueueResult = 'queued' | 'duplicate' | 'closed' | 'refused';

interface Entry {
  d: Delivery;
  key: string;
  tries: number;
  state: 'ready' | 'waiting' | 'flight';
  timer?: ReturnType<typeof setTimeout>;
}

/** The key of a delivery: its event id and target. */
export const deliveryKey = (id: string, target: string): string => `${id}|${target}`;

export class Notifier {
  readonly registry: Registry;
  private readonly o: Required<Omit<NotifierOptions, 'registry' | 'onSettled'>> & Pick<NotifierOptions, 'onSettled'>;
  /** Every held delivery, oldest first. */
  private readonly held = new Map<string, Entry>();
  private readonly ready: Entry[] = [];
  private readonly settledMap = new Map<string, Settled>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private closed = false;
  private readonly total: Counter<'event' | 'format' | 'result'>;
  private readonly retries: Counter<'event' | 'format'>;

  constructor(opts: NotifierOptions) {
    this.o = {
      log: opts.log,
      policy: opts.policy,
      capacity: Math.max(1, opts.capacity ?? 256),
      concurrency: Math.max(1, opts.concurrency ?? 4),
      timeoutMs: opts.timeoutMs ?? 10_000,
      settledCapacity: Math.max(1, opts.settledCapacity ?? 4096),
      maxTries: Math.max(1, Math.min(opts.maxTries ?? 6, 100)),
      baseDelayMs: opts.baseDelayMs ?? 2_000,
      maxDelayMs: opts.maxDelayMs ?? 30_000,
      maxRetryAfterMs: opts.maxRetryAfterMs ?? 60_000,
      onSettled: opts.onSettled,
      random: opts.random ?? Math.random,
      now: opts.now ?? (() => new Date()),
      lookup: opts.lookup ?? lookupAll,
    };
    this.registry = opts.registry ?? new Registry();
    const registers = [this.registry];
    this.total = new Counter({
      name: 'swarmbench_notifications_total', help: 'Notifications by event, format and result (delivered, failed: given up for good, dropped: the queue was full)',
      labelNames: ['event', 'format', 'result'], registers,
    });
    this.retries = new Counter({ name: 'swarmbench_notification_retries_total', help: 'Notification tries after the first', labelNames: ['event', 'format'], registers });
    const held = this.held;
    new Gauge({
      name: 'swarmbench_notification_queue_depth', help: 'Notifications held: queued, waiting to retry or in flight', registers,
      collect() {
        this.set(held.size);
      },
    });
  }

  /** Hands a delivery over; returns at once. See the header for `duplicate` and the drop of the oldest. */
  enqueue(d: Delivery): EnqueueResult {
    if (this.closed) return 'closed';
    const key = deliveryKey(d.id, d.target);
    if (this.held.has(key) || this.settledMap.has(key)) return 'duplicate';
    if (this.held.size >= this.o.capacity && !this.dropOldest()) {
      this.dropped(d, 'every held notification is in flight');
      return 'refused';
    }
    const e: Entry = { d, key, tries: 0, state: 'ready' };
    this.held.set(key, e);
    this.ready.push(e);
    this.pump();
    return 'queued';
  }

  /** Whether a delivery is held or settled (and not forgotten). */
  has(id: string, target: string): boolean {
    const key = deliveryKey(id, target);
    return this.held.has(key) || this.settledMap.has(key);
  }

  /** The settled deliveries of a run (by uid) not yet forgotten. */
  settled(uid: string): Settled[] {
    return [...this.settledMap.values()].filter((s) => s.uid === uid);
  }

  /** Forgets settled deliveries (the run's status records them now). */
  forget(keys: Iterable<string>): void {
    for (const k of keys) this.settledMap.delete(k);
  }

  /** Held deliveries, settled ones kept. */
  stats(): { held: number; inFlight: number; settled: number } {
    return { held: this.held.size, inFlight: [...this.held.values()].filter((e) => e.state === 'flight').length, settled: this.settledMap.size };
  }

  /** Stops: no new deliveries, waits and tries in flight aborted; resolves when the tries have returned. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    for (const e of this.held.values()) clearTimeout(e.timer);
    this.ready.length = 0;
    await Promise.allSettled([...this.inFlight]);
    this.held.clear();
  }

  private dropOldest(): boolean {
    for (const e of this.held.values()) {
      if (e.state === 'flight') continue;
      clearTimeout(e.timer);
      this.held.delete(e.key);
      const i = this.ready.indexOf(e);
      if (i >= 0) this.ready.splice(i, 1);
      this.dropped(e.d, 'the queue is full: the oldest notification was dropped (sent again when the run is next reconciled)');
      return true;
    }
    return false;
  }

  private dropped(d: Delivery, why: string): void {
    this.total.inc({ event: d.event, format: d.format, result: 'dropped' });
    this.o.log.warn('notification dropped', { run: d.runKey, event: d.event, id: d.id, target: d.target, reason: why, capacity: this.o.capacity });
  }

  private pump(): void {
    while (!this.closed && this.ready.length && this.flightCount() < this.o.concurrency) {
      const e = this.ready.shift()!;
      e.state = 'flight';
      const p = this.attempt(e).finally(() => {
        this.inFlight.delete(p);
        this.pump();
      });
      this.inFlight.add(p);
    }
  }

  private flightCount(): number {
    return this.inFlight.size;
  }

  private async attempt(e: Entry): Promise<void> {
    const d = e.d;
    e.tries++;
    if (e.tries > 1) this.retries.inc({ event: d.event, format: d.format });
    let r: TryResult;
    try {
      webhookUrl(d.url.href, this.o.policy);
      r = (await this.resolved(d.url)) ?? (await postOnce(d.url, d.body, d.contentType, this.o.timeoutMs, this.abort.signal));
    } catch (err) {
      r = { ok: false, retry: false, reason: err instanceof WebhookUrlError ? err.message : scrub(errorMessage(err), d.url).slice(0, 200) };
    }
    if (this.closed || !this.held.has(e.key)) return;
    const fields = { run: d.runKey, event: d.event, id: d.id, target: d.target, endpoint: redactUrl(d.url), tries: e.tries };
    if (r.ok) {
      this.o.log.info('notification delivered', { ...fields, status: r.status });
      return this.settle(e, 'Delivered');
    }
    if (!r.retry) {
      this.o.log.warn('notification refused', { ...fields, reason: r.reason });
      return this.settle(e, 'Failed', `refused: ${r.reason}`);
    }
    if (e.tries >= this.o.maxTries) {
      this.o.log.warn('notification failed', { ...fields, reason: r.reason });
      return this.settle(e, 'Failed', `gave up after ${e.tries} tries: ${r.reason}`);
    }
    const wait = retryDelay(e.tries, this.o, this.o.random, r.retryAfterMs);
    this.o.log.debug('notification retry', { ...fields, reason: r.reason, waitMs: wait });
    e.state = 'waiting';
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (this.closed || this.held.get(e.key) !== e) return;
      e.state = 'ready';
      this.ready.push(e);
      this.pump();
    }, wait);
    // A wait alone does not keep the process alive (close() clears it anyway).
    e.timer.unref();
  }

  /** The host's addresses judged (`resolvedProblem`): a refusal, a retry when it does not resolve in time, or undefined: go on. */
  private async resolved(url: URL): Promise<TryResult | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let addresses: string[];
    try {
      addresses = await Promise.race([
        this.o.lookup(url.hostname),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${this.o.timeoutMs} ms`)), this.o.timeoutMs))),
      ]);
    } catch (e) {
      if (this.abort.signal.aborted) return { ok: false, retry: false, reason: 'the operator stopped' };
      const code = (e as { code?: unknown }).code;
      return { ok: false, retry: true, reason: scrub(`the webhook host ${url.hostname} does not resolve: ${typeof code === 'string' ? code : errorMessage(e)}`, url).slice(0, 200) };
    } finally {
      clearTimeout(timer);
    }
    if (this.abort.signal.aborted) return { ok: false, retry: false, reason: 'the operator stopped' };
    const problem = resolvedProblem(url, addresses, this.o.policy);
    return problem ? { ok: false, retry: false, reason: problem } : undefined;
  }

  private settle(e: Entry, result: 'Delivered' | 'Failed', reason?: string): void {
    const d = e.d;
    this.held.delete(e.key);
    this.total.inc({ event: d.event, format: d.format, result: result === 'Delivered' ? 'delivered' : 'failed' });
    const record: NotificationRecord = {
      id: d.id,
      event: d.event,
      target: d.target,
      attempt: d.attempt,
      result,
      tries: e.tries,
      at: this.o.now().toISOString(),
      ...(reason ? { reason: reason.slice(0, 300) } : {}),
    };
    const s: Settled = { key: e.key, runKey: d.runKey, uid: d.uid, record };
    this.settledMap.set(e.key, s);
    while (this.settledMap.size > this.o.settledCapacity) this.settledMap.delete(this.settledMap.keys().next().value!);
    try {
      this.o.onSettled?.(s);
    } catch (err) {
      this.o.log.warn('notification onSettled failed', { run: d.runKey, error: errorMessage(err) });
    }
  }
}
