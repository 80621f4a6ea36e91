/**
 * Why pods do not run: the pure reading of pod statuses that both the operator (a step's
 * forensics, src/operator/forensics.ts) and the CLI (`--wait`'s stuck pods, src/cli/cluster/follow.ts)
 * use. A problem is either one that keeps a pod from starting and lasts until someone acts
 * (`stuck`: an image that cannot be pulled or that the node cannot run, a container configuration
 * that is missing, a pod no node can take), with the time it has lasted since, or one that ended a
 * container or a pod (`ended`: OOMKilled, Evicted, the node lost), which the Job may retry and
 * which explains its failure.
 */
import type { CoreV1Event, V1Deployment, V1Job, V1Pod } from '@kubernetes/client-node';
import { STEP_LABEL } from './names.ts';

export interface PodProblem {
  /** Groups the same problem across pods (an image, a step's scheduling). */
  key: string;
  /**
   * The Kubernetes reason, as the condition's and the Event's reason: ImagePullBackOff (also for
   * ErrImagePull), InvalidImageName, ErrImageNeverPull, CreateContainerConfigError,
   * CreateContainerError, Unschedulable, OOMKilled, Evicted, NodeLost, FailedCreate
   * (`createRefusals`: a controller refused to create pods, e.g. a ResourceQuota).
   */
  reason: string;
  /** One line for a person: the pod, the step, the container, and the cluster's own message. */
  text: string;
  kind: 'stuck' | 'ended';
  /** For `stuck`: since when it has lasted (epoch ms: the pod's creation, or the condition's transition); else null. */
  sinceMs: number | null;
}

const IMAGE_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const CONFIG_REASONS = new Set(['CreateContainerConfigError', 'CreateContainerError']);
/** DisruptionTarget reasons that mean the pod's node went away (the pod garbage collector, the taint manager). */
const NODE_GONE_REASONS = new Set(['DeletionByPodGC', 'DeletionByTaintManager']);

/** At most this many characters of a message the cluster wrote (one line). */
const MESSAGE_CHARS = 400;

export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, MESSAGE_CHARS);
}

function epochMs(t: string | Date | undefined | null): number | null {
  if (t === undefined || t === null) return null;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

/** The memory limit of a pod's container, for an OOMKilled text. */
function memoryLimit(p: V1Pod, container: string): string | undefined {
  const c = [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((x) => x.name === container);
  return c?.resources?.limits?.memory;
}

/** The problems of a set of pods (deleted pods are left out). Pure. */
export function podProblems(pods: readonly V1Pod[]): PodProblem[] {
  const out: PodProblem[] = [];
  for (const p of pods) {
    if (p.metadata?.deletionTimestamp) continue;
    const name = p.metadata?.name ?? '?';
    const what = p.metadata?.labels?.[STEP_LABEL] ? ` (step ${p.metadata.labels[STEP_LABEL]})` : '';
    const created = epochMs(p.metadata?.creationTimestamp);
    const statuses = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])];
    for (const cs of statuses) {
      const w = cs.state?.waiting;
      if (w?.reason && IMAGE_REASONS.has(w.reason)) {
        out.push({
          key: `image:${cs.image}`,
          reason: w.reason === 'ErrImagePull' ? 'ImagePullBackOff' : w.reason,
          text: `pod ${name}${what}: container ${cs.name}: ${w.reason}: image "${cs.image}" cannot be pulled${w.message ? ` (${oneLine(w.message)})` : ''}`,
          kind: 'stuck',
          sinceMs: created,
        });
      } else if (w?.reason && CONFIG_REASONS.has(w.reason)) {
        out.push({
          key: `config:${w.message ?? w.reason}`,
          reason: w.reason,
          text: `pod ${name}${what}: container ${cs.name}: ${w.reason}${w.message ? `: ${oneLine(w.message)}` : ''}`,
          kind: 'stuck',
          sinceMs: created,
        });
      }
      const term = cs.state?.terminated ?? cs.lastState?.terminated;
      if (term?.reason === 'OOMKilled') {
        const limit = memoryLimit(p, cs.name);
        out.push({
          key: `oom:${name}:${cs.name}`,
          reason: 'OOMKilled',
          text: `pod ${name}${what}: container ${cs.name} was OOMKilled${limit ? ` at its memory limit of ${limit}` : ''} (exit code ${term.exitCode})`,
          kind: 'ended',
          sinceMs: null,
        });
      }
    }
    const reason = p.status?.reason ?? '';
    if (reason === 'Evicted') {
      out.push({ key: `evicted:${name}`, reason: 'Evicted', text: `pod ${name}${what} was evicted from node ${p.spec?.nodeName ?? '?'}: ${oneLine(p.status?.message ?? 'no message')}`, kind: 'ended', sinceMs: null });
    }
    const disruption = p.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
    if (reason === 'NodeLost' || (disruption && NODE_GONE_REASONS.has(disruption.reason ?? ''))) {
      out.push({
        key: `node:${p.spec?.nodeName ?? name}`,
        reason: 'NodeLost',
        text: `pod ${name}${what}: its node ${p.spec?.nodeName ?? '?'} was lost: ${oneLine(disruption?.message ?? p.status?.message ?? reason)}`,
        kind: 'ended',
        sinceMs: null,
      });
    }
    const sched = p.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (p.status?.phase === 'Pending' && sched?.status === 'False' && sched.reason === 'Unschedulable') {
      out.push({
        key: `unschedulable:${p.metadata?.labels?.[STEP_LABEL] ?? name}`,
        reason: 'Unschedulable',
        text: `pod ${name}${what} cannot be scheduled: ${oneLine(sched.message ?? 'Unschedulable')}`,
        kind: 'stuck',
        sinceMs: epochMs(sched.lastTransitionTime) ?? created,
      });
    }
  }
  return out;
}

/**
 * How recent a controller's last `FailedCreate` must be to count as still refusing (ms): the Job
 * controller retries a refused create with a back-off of at most 60 s, and every retry that is
 * refused again updates the aggregated Event's `lastTimestamp`.
 */
export const REFUSAL_RECENT_MS = 120_000;

/**
 * Pods that a controller is refused to create (a ResourceQuota exceeded, a LimitRange, an admission
 * webhook): `stuck` problems with the Kubernetes reason `FailedCreate`, from
 * - a pool's Deployment condition `ReplicaFailure` (True, reason FailedCreate): the ReplicaSet
 *   controller sets it while creates fail and removes it when one succeeds, so it is a state, since
 *   its transition;
 * - the runner Job's `FailedCreate` Events (the Job has no such condition), counted only while the
 *   Job has no active pod and the Event was seen again within REFUSAL_RECENT_MS, since its first time.
 * Pure.
 */
export function createRefusals(
  o: { deployments: readonly V1Deployment[]; job?: V1Job; jobEvents: readonly CoreV1Event[]; step: string; nowMs: number },
): PodProblem[] {
  const out: PodProblem[] = [];
  for (const d of o.deployments) {
    if (d.metadata?.deletionTimestamp) continue;
    const c = d.status?.conditions?.find((x) => x.type === 'ReplicaFailure' && x.status === 'True');
    if (!c) continue;
    const name = d.metadata?.name ?? '?';
    out.push({
      key: `create:Deployment/${name}`,
      reason: c.reason || 'FailedCreate',
      text: `the agent pool ${name} (step ${o.step}) cannot create its pods: ${oneLine(c.message ?? c.reason ?? 'no message')}`,
      kind: 'stuck',
      sinceMs: epochMs(c.lastTransitionTime) ?? epochMs(d.metadata?.creationTimestamp) ?? o.nowMs,
    });
  }
  const job = o.job;
  if (job && (job.status?.active ?? 0) === 0 && !job.metadata?.deletionTimestamp) {
    const mine = o.jobEvents.filter((e) => e.reason === 'FailedCreate' && e.involvedObject?.kind === 'Job' && e.involvedObject.uid === job.metadata?.uid);
    const last = (e: CoreV1Event): number => epochMs(e.lastTimestamp) ?? epochMs(e.eventTime) ?? epochMs(e.metadata?.creationTimestamp) ?? 0;
    const recent = mine.filter((e) => o.nowMs - last(e) <= REFUSAL_RECENT_MS).sort((a, b) => last(b) - last(a));
    if (recent.length > 0) {
      const first = Math.min(...mine.map((e) => epochMs(e.firstTimestamp) ?? epochMs(e.eventTime) ?? last(e)));
      out.push({
        key: `create:Job/${job.metadata?.name ?? '?'}`,
        reason: 'FailedCreate',
        text: `the runner Job ${job.metadata?.name ?? '?'} (step ${o.step}) cannot create its pod: ${oneLine(recent[0]!.message ?? 'no message')}`,
        kind: 'stuck',
        sinceMs: first,
      });
    }
  }
  return out;
}
