/**
 * Why a step's runner try ended, seen as it happens (docs/operator.md "Failure forensics"). The
 * Job retries a runner pod that died (backoffLimit 1), and by the time a reconcile lists the step's
 * pods the dead one is often gone: the pod garbage collector deletes the pods of a removed node
 * within a minute, and the Job controller creates the next try. So the operator watches its runner
 * pods (`swarmbench.io/component=runner`; main.ts) and `RunnerTries` keeps, per pod that ended
 * without success or vanished before it ended, what ended it:
 * - the pod reasons of kube/pods.ts (`NodeLost`: the pod GC's or taint manager's DisruptionTarget;
 *   `OOMKilled` with the limit; `Evicted`), else
 * - `RunnerFailed` with the runner container's exit code and reason (a SIGKILL reads 137), else
 * - `RunnerGone`: deleted while it still ran, with no terminal status (its node went away before it
 *   could report, or someone deleted it).
 * The reconcile of a running step (reconcile.ts) takes the records of its Job's uid that it has not
 * told yet and records one Warning Event each, so a retried step says why its first try ended.
 *
 * Bounded: at most MAX_TRIES records (the oldest dropped) and each kept for TRY_TTL_MS. Held in
 * memory, and told once across operator restarts: each Event is named after the pod
 * (`<run>.try-<pod uid>`), so a new leader whose pod watch lists the same ended pod again gets a
 * 409 and tells nothing twice; an ended pod still listed when a new leader starts is told by it. A
 * try whose pod was deleted while no operator led is not told (its step's result still says
 * `earlierTry.agentPods` when the next try found its agents). A pod the operator itself deleted (a
 * cancelled or stuck step's Job) is recorded too, but its Job is gone, so no running step asks.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { STEP_LABEL } from '../kube/names.ts';
import { oneLine, podProblems } from '../kube/pods.ts';

export const MAX_TRIES = 1000;
export const TRY_TTL_MS = 6 * 3_600_000;

export interface EndedTry {
  /** The runner pod's uid (each is told once). */
  podUid: string;
  /** The uid of the Job that owns the pod. */
  jobUid: string;
  /** The Event's reason: NodeLost, OOMKilled, Evicted, RunnerFailed, RunnerGone. */
  reason: string;
  /** One line for a person. */
  text: string;
}

/** What ended a runner pod, or undefined when it has not ended or ended well. `deleted`: the watch reported it gone. Pure. */
export function endedTry(pod: V1Pod, deleted: boolean): EndedTry | undefined {
  const podUid = pod.metadata?.uid;
  const jobUid = pod.metadata?.ownerReferences?.find((r) => r.kind === 'Job' && r.controller)?.uid;
  if (!podUid || !jobUid) return undefined;
  const phase = pod.status?.phase;
  if (phase === 'Succeeded') return undefined;
  const terminating = !!pod.metadata?.deletionTimestamp;
  if (phase !== 'Failed' && !deleted && !terminating) return undefined;
  // A pod being deleted is read as it was: its last status is what ended it.
  const { deletionTimestamp: _d, ...meta } = pod.metadata ?? {};
  const ended = podProblems([{ ...pod, metadata: meta }]).find((p) => p.kind === 'ended');
  if (ended) return { podUid, jobUid, reason: ended.reason, text: ended.text };
  const name = pod.metadata?.name ?? '?';
  const what = pod.metadata?.labels?.[STEP_LABEL] ? ` (step ${pod.metadata.labels[STEP_LABEL]})` : '';
  const term = (pod.status?.containerStatuses ?? []).map((c) => ({ name: c.name, t: c.state?.terminated })).find((c) => c.t && c.t.exitCode !== 0);
  if (term?.t) {
    const why = [term.t.reason, term.t.message && oneLine(term.t.message)].filter(Boolean).join(': ');
    return { podUid, jobUid, reason: 'RunnerFailed', text: `pod ${name}${what}: container ${term.name} exited with code ${term.t.exitCode}${why ? ` (${why})` : ''}` };
  }
  if (!deleted) return undefined; // terminating: its final status may still come
  return { podUid, jobUid, reason: 'RunnerGone', text: `pod ${name}${what} on node ${pod.spec?.nodeName ?? '?'} was deleted while it ran, without a final status (its node went away, or someone deleted it)` };
}

/** The records, bounded; one per pod, each told once. */
export class RunnerTries {
  private readonly byPod = new Map<string, EndedTry & { atMs: number; told: boolean }>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Looks at a runner pod from the watch; returns whether a new record was made. */
  observe(pod: V1Pod, deleted: boolean): boolean {
    const t = endedTry(pod, deleted);
    if (!t) return false;
    const had = this.byPod.get(t.podUid);
    // A record is kept as first made, except that a later, more specific reason replaces RunnerGone.
    if (had && !(had.reason === 'RunnerGone' && t.reason !== 'RunnerGone')) return false;
    this.byPod.set(t.podUid, { ...t, atMs: had?.atMs ?? this.now(), told: had?.told ?? false });
    this.prune();
    return !had;
  }

  /** The ended tries of a Job not told yet, oldest first; they are marked told. */
  takeUntold(jobUid: string): EndedTry[] {
    this.prune();
    const out: EndedTry[] = [];
    for (const r of this.byPod.values()) {
      if (r.jobUid !== jobUid || r.told) continue;
      r.told = true;
      out.push({ podUid: r.podUid, jobUid: r.jobUid, reason: r.reason, text: r.text });
    }
    return out;
  }

  get size(): number {
    return this.byPod.size;
  }

  private prune(): void {
    const cut = this.now() - TRY_TTL_MS;
    for (const [k, r] of this.byPod) if (r.atMs < cut) this.byPod.delete(k);
    // Insertion order is age order: drop the oldest past the cap.
    for (const k of this.byPod.keys()) {
      if (this.byPod.size <= MAX_TRIES) break;
      this.byPod.delete(k);
    }
  }
}
