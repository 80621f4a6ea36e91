/**
 * Why pods do not run: the pure reading of pod statuses that both the operator (a step's
 * forensics, src/operator/forensics.ts) and the CLI (`--wait`'s stuck pods, src/cli/cluster/follow.ts)
 * use. A problem is either one that keeps a pod from starting and lasts until someone acts
 * (`stuck`: an image that cannot be pulled or that the node cannot run, a container configuration
 * that is missing, a pod no node can take), with the time it has lasted since, or one that ended a
 * container or a pod (`ended`: OOMKilled, Evicted, the node lost), which the Job may retry and
 * which explains its failure.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { STEP_LABEL } from './names.ts';

export interface PodProblem {
  /** Groups the same problem across pods (an image, a step's scheduling). */
  key: string;
  /**
   * The Kubernetes reason, as the condition's and the Event's reason: ImagePullBackOff (also for
   * ErrImagePull), InvalidImageName, ErrImageNeverPull, CreateContainerConfigError,
   * CreateContainerError, Unschedulable, OOMKilled, Evicted, NodeLost, UnsupportedImage.
   */
  reason: string;
  /** One line for a person: the pod, the step, the container, and the cluster's own message. */
  text: string;
  kind: 'stuck' | 'ended';
  /** For `stuck`: since when it has lasted (epoch ms: the pod's creation, or the condition's transition); else null. */
  sinceMs: number | null;
}

const IMAGE_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
/** Pod-level failure reasons that mean the node cannot run the image at all (the test cluster's node agent says UnsupportedImage). */
const POD_IMAGE_REASONS = new Set(['UnsupportedImage']);
const CONFIG_REASONS = new Set(['CreateContainerConfigError', 'CreateContainerError']);
/** DisruptionTarget reasons that mean the pod's node went away (the pod garbage collector, the taint manager). */
const NODE_GONE_REASONS = new Set(['DeletionByPodGC', 'DeletionByTaintManager']);

/** At most this many characters of a message the cluster wrote (one line). */
const MESSAGE_CHARS = 400;

export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, MESSAGE_CHARS);
}

function epochMs(t: string | Date | undefined): number | null {
  if (t === undefined) return null;
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
    if (p.status?.phase === 'Failed' && POD_IMAGE_REASONS.has(reason)) {
      // Stuck, not ended: a pool's Deployment replaces the pod with another that fails alike, and
      // the failed ones stay, so the oldest one's age is how long the pool has not started.
      const image = p.spec?.containers?.[0]?.image ?? '?';
      out.push({ key: `image:${image}`, reason, text: `pod ${name}${what}: ${reason}: ${oneLine(p.status.message ?? `image "${image}" cannot run`)}`, kind: 'stuck', sinceMs: created });
    }
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
