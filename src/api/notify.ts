/**
 * Notifications of a run (docs/notifications.md): the spec field `notify` and what the status
 * records of their delivery. Part of the API, kept apart from schema.ts (which may import it; it
 * imports nothing from schema.ts, so no import cycle) to keep files small; depends on zod and the
 * Kubernetes name rules of kube/names.ts only.
 *
 * The spec field (one shape for `BenchmarkRun.spec.notify` and, through its run template,
 * `BenchmarkSchedule.spec.runTemplate.spec.notify`):
 *
 *     notify:
 *       - secretRef: { name: team-webhook, key: url }   # the URL is held in a Secret
 *         format: cloudevents                           # or slack; default cloudevents
 *         events: [finished, regressed, failed]         # default [finished]
 *
 * At most `MAX_NOTIFY_TARGETS` targets, each (Secret, key, format) once. The Secret follows the
 * project's consent rule for Secrets the operator reads on a tenant's behalf (src/operator/policy.ts
 * "Secrets by consent"; checked by src/operator/notify.ts `notifySecretViolations`).
 *
 * The status field `notifications` records each notification that settled (delivered, or given up
 * for good) for the current attempt, so that an operator that restarts sends what was not yet
 * settled and never again what was (src/operator/notify.ts `pendingNotifications`, `markNotified`).
 */
import { z } from 'zod';
import { CONFIG_KEY, DNS_SUBDOMAIN } from '../kube/names.ts';

/** The events a target may ask for. */
export const NOTIFY_EVENTS = ['finished', 'regressed', 'failed'] as const;
export const NotifyEvent = z.enum(NOTIFY_EVENTS);
export type NotifyEvent = z.infer<typeof NotifyEvent>;

export const NOTIFY_FORMATS = ['cloudevents', 'slack'] as const;
export const NotifyFormat = z.enum(NOTIFY_FORMATS);
export type NotifyFormat = z.infer<typeof NotifyFormat>;

/** At most this many targets per run. */
export const MAX_NOTIFY_TARGETS = 5;
/** What `events` means when absent. */
export const DEFAULT_NOTIFY_EVENTS: readonly NotifyEvent[] = ['finished'];

// The same rules as schema.ts's SecretKeyRef (a Secret's name, a data key), restated here so that
// this file does not import schema.ts (which may import this one).
const secretName = z
  .string()
  .min(1)
  .max(253)
  .regex(DNS_SUBDOMAIN, "must be a Secret name: a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)");
const dataKey = z
  .string()
  .min(1)
  .max(253)
  .regex(CONFIG_KEY, "must be a data key: letters, digits, '-', '_' and '.'")
  .refine((k) => k !== '.' && k !== '..', "must not be '.' or '..'");

export const NotifyTarget = z
  .object({
    /** The Secret (in the run's namespace) and key whose value is the webhook URL (http or https). */
    secretRef: z.object({ name: secretName, key: dataKey }).strict(),
    /** `cloudevents` (default): a CloudEvents 1.0 structured JSON body; `slack`: a Slack incoming-webhook body. */
    format: NotifyFormat.optional(),
    /** Which events go to this target (default: finished). */
    events: z
      .array(NotifyEvent)
      .min(1)
      .max(NOTIFY_EVENTS.length)
      .refine((e) => new Set(e).size === e.length, 'must not repeat an event')
      .optional(),
  })
  .strict();
export type NotifyTarget = z.infer<typeof NotifyTarget>;

export const NotifySpec = z
  .array(NotifyTarget)
  .max(MAX_NOTIFY_TARGETS)
  .refine((ts) => new Set(ts.map(targetKey)).size === ts.length, 'must not repeat a target (the same Secret, key and format)');
export type NotifySpec = z.infer<typeof NotifySpec>;

/**
 * How a target is named in the status, logs and metrics: its Secret, key and format, never the URL.
 * Stable for an attempt (a spec change is a new generation, hence a new attempt).
 */
export function targetKey(t: NotifyTarget): string {
  return `${t.secretRef.name}/${t.secretRef.key}:${t.format ?? 'cloudevents'}`;
}

/** The events a target gets, in the order of NOTIFY_EVENTS. */
export function targetEvents(t: NotifyTarget): NotifyEvent[] {
  const on = t.events ?? DEFAULT_NOTIFY_EVENTS;
  return NOTIFY_EVENTS.filter((e) => on.includes(e));
}

/** One settled notification of the current attempt (status.notifications). */
export const NotificationRecord = z.object({
  /** The CloudEvents id (src/operator/notify.ts `eventId`): the same on every send of this event. */
  id: z.string().min(1).max(200),
  event: NotifyEvent,
  /** `targetKey` of the target. */
  target: z.string().min(1).max(600),
  attempt: z.number().int().min(1),
  /** Delivered: a 2xx answer. Failed: given up for good (a refusal, the retries spent, the Secret unusable). */
  result: z.enum(['Delivered', 'Failed']),
  /** HTTP requests made (0: none could be made). */
  tries: z.number().int().min(0).max(100),
  at: z.string(),
  /** Why it failed (never the URL). */
  reason: z.string().max(300).optional(),
});
export type NotificationRecord = z.infer<typeof NotificationRecord>;

/** At most one record per (target, event) of the current attempt. */
export const MAX_NOTIFICATION_RECORDS = MAX_NOTIFY_TARGETS * NOTIFY_EVENTS.length;
export const NotificationsStatus = z.array(NotificationRecord).max(MAX_NOTIFICATION_RECORDS);
export type NotificationsStatus = z.infer<typeof NotificationsStatus>;
