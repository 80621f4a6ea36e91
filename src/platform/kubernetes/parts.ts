/**
 * Several agents per pod (`spec.agents.agentsPerPod` = K > 1; docs/kubernetes-platform.md "Several
 * agents per pod"): what a pool of n agents is made of, the ordered changes that take a pool from
 * the parts it has to the parts of n, and when those changes have settled. Pure: no I/O, so the
 * pool in index.ts only carries the steps out (unit-tested: test/unit/kube-pool-parts.test.ts).
 *
 * Decided:
 * - A pool of n agents is F = floor(n / K) pods of K agents (the "full" part: one Deployment named
 *   as the pool's, its replicas = F) and, when r = n mod K > 0, one pod of r agents (the "rest"
 *   part: its own Deployment `<pool>-r<r>` of one replica). Changing r replaces the rest
 *   Deployment: the new one is created BEFORE the old one is deleted, and when new pods are
 *   starting the old one goes only once they are up, because the seeds the new pods join through
 *   may be its agents (the old rest may be the pool's only agents, e.g. 1 → 12 with K = 5). The
 *   same holds for a full part that shrinks while a new rest starts (100 → 10 with K = 25: the new
 *   pod of 10 joins through full pods that go once it is up).
 * - With K = 1 the plan is the one the pool always followed: one part, replicas = n, no rest.
 * - An empty pool (no ready agent) is founded by one pod with no seeds first: one of the full part
 *   when F > 0, else the rest pod; the other pods start once it is ready and join through it.
 * - Seeds prefer agents that stay (those of the full part, oldest pods first: a ReplicaSet removes
 *   its newest pods first) and spread over pods (agent 0 of each pod before agent 1 of any).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentHandle } from '../types.ts';
import { agentHandlesOf, agentsPerPodOf, byAge, FULL_PART, isPodReady, MAX_SEEDS, podPart } from './manifests.ts';

/** The part key of the rest pod of r agents (`POOL_PART_LABEL` value, Deployment name tail). */
export const restPart = (r: number): string => `r${r}`;

/** The parts of a pool of n agents: `full` pods of K agents and a rest pod of `rest` agents (0: none). */
export interface PartsTarget {
  full: number;
  rest: number;
}

export function partsTarget(n: number, k: number): PartsTarget {
  if (!Number.isInteger(n) || n < 0) throw new Error(`bad pool size ${n}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`bad agents per pod ${k}`);
  return { full: Math.floor(n / k), rest: n % k };
}

/** What a pool has: the full part's replicas, and the r of each rest Deployment it made and did not delete. */
export interface PartsState {
  full: number;
  rests: readonly number[];
}

/** Until exactly `full` pods of the full part and (rest > 0) the one pod of `restPart(rest)` exist, all ready; pods of the `besides` rest parts may also exist. */
export interface PartsWait {
  kind: 'wait';
  full: number;
  rest: number;
  besides: number[];
  /** The agents the wait is for (full * K + rest), for its error. */
  agents: number;
}

export type PartStep =
  /** Write the seeds: none when founding, else up to MAX_SEEDS ready agents (`seedUrls`). */
  | { kind: 'seeds'; found: boolean }
  /** Set the full part's replicas. */
  | { kind: 'full'; replicas: number }
  /** Create the rest Deployment of r agents (one replica). */
  | { kind: 'create-rest'; agents: number }
  /** Delete the rest Deployment of r agents (uid precondition). */
  | { kind: 'delete-rest'; agents: number }
  | PartsWait;

/**
 * The ordered steps that take a pool from `state` to n agents with K per pod. `hasReady`: the pool
 * has a ready agent (otherwise it is founded first). No-op changes are left out; the plan always
 * ends with the wait for exactly the n agents (removed pods gone).
 */
export function planParts(state: PartsState, n: number, k: number, hasReady: boolean): PartStep[] {
  const t = partsTarget(n, k);
  const steps: PartStep[] = [];
  let full = state.full;
  let rests = [...new Set(state.rests)];
  let started = false;
  const setFull = (replicas: number): void => {
    if (replicas === full) return;
    if (replicas > full) started = true;
    steps.push({ kind: 'full', replicas });
    full = replicas;
  };
  const create = (r: number): void => {
    if (r === 0 || rests.includes(r)) return;
    steps.push({ kind: 'create-rest', agents: r });
    rests.push(r);
    started = true;
  };
  const removeAllBut = (keep: number): void => {
    for (const r of rests) if (r !== keep) steps.push({ kind: 'delete-rest', agents: r });
    rests = rests.filter((r) => r === keep);
  };
  const wait = (f: number, r: number, besides: number[] = []): PartsWait => ({ kind: 'wait', full: f, rest: r, besides, agents: f * k + r });

  if (n > 0 && !hasReady) {
    // Founding: one pod with no seeds. Pods of the pool that are there are not ready: nothing joins
    // through them, and a rest pod that is not the founder goes (it could found a second cluster).
    steps.push({ kind: 'seeds', found: true });
    if (t.full > 0) {
      removeAllBut(0);
      setFull(1);
      steps.push(wait(1, 0));
    } else {
      setFull(0);
      create(t.rest);
      removeAllBut(t.rest);
      steps.push(wait(0, t.rest));
    }
  }
  started = false;
  if (n > 0) steps.push({ kind: 'seeds', found: false });
  // The new pods join through the seeds, which may be agents about to go (an old rest, or full
  // pods of a shrinking full part, e.g. 100 -> 10 with K = 25): those go once the new pods are up.
  const shrinkFull = t.full < full;
  if (!shrinkFull) setFull(t.full);
  create(t.rest);
  const old = rests.filter((r) => r !== t.rest);
  if (started && (old.length > 0 || shrinkFull)) steps.push(wait(full, t.rest, old));
  if (shrinkFull) setFull(t.full);
  removeAllBut(t.rest);
  steps.push(wait(t.full, t.rest));
  return steps;
}

/** The state after `steps` ran (what the pool records as it carries them out). */
export function afterSteps(state: PartsState, steps: readonly PartStep[]): PartsState {
  let full = state.full;
  let rests = [...state.rests];
  for (const s of steps) {
    if (s.kind === 'full') full = s.replicas;
    else if (s.kind === 'create-rest' && !rests.includes(s.agents)) rests.push(s.agents);
    else if (s.kind === 'delete-rest') rests = rests.filter((r) => r !== s.agents);
  }
  return { full, rests };
}

export interface Settled {
  /** Exactly the pods the wait is for exist (besides the pods it allows), all ready. */
  done: boolean;
  /** The ready pods it counts (their agents are then confirmed on /readyz). */
  ready: V1Pod[];
  /** Agents of the ready pods it counts, and the pods it counts (ready or not). */
  readyAgents: number;
  pods: number;
  /** Pods it counts that are not ready (for the error). */
  notReady: V1Pod[];
}

/**
 * Whether `pods` (the pool's pods, those it deleted itself left out; pods being deleted count, so
 * a shrink waits until they are gone) are what `want` asks for. Pods without a part label are of
 * the full part: with one agent per pod this is "exactly n pods, all ready", as it always was.
 */
export function partsSettled(pods: readonly V1Pod[], want: Omit<PartsWait, 'kind' | 'agents'>): Settled {
  const besides = new Set(want.besides.map(restPart));
  const counted = pods.filter((p) => !besides.has(podPart(p)));
  const full = counted.filter((p) => podPart(p) === FULL_PART).length;
  const rest = want.rest > 0 ? counted.filter((p) => podPart(p) === restPart(want.rest)).length : 0;
  const ready = counted.filter(isPodReady);
  const notReady = counted.filter((p) => !isPodReady(p));
  return {
    done: full === want.full && rest === (want.rest > 0 ? 1 : 0) && counted.length === full + rest && notReady.length === 0,
    ready,
    readyAgents: ready.reduce((s, p) => s + agentsPerPodOf(p), 0),
    pods: counted.length,
    notReady,
  };
}

/** The agents of ready pods: pods oldest first, each pod's agents in index order. */
export function agentsOfPods(readyPods: readonly V1Pod[]): AgentHandle[] {
  return [...readyPods].sort(byAge).flatMap(agentHandlesOf);
}

/**
 * Up to MAX_SEEDS agent URLs of ready pods: agents that stay first (the full part, oldest pods
 * first), and agent i of every pod before agent i + 1 of any, so the seeds spread over pods. With
 * one agent per pod: the oldest ready agents, as always.
 */
export function seedUrls(readyPods: readonly V1Pod[]): string[] {
  const ranked = [...readyPods]
    .sort(byAge)
    .flatMap((p, order) => agentHandlesOf(p).map((h, i) => ({ url: h.url, stays: podPart(p) === FULL_PART ? 0 : 1, i, order })));
  ranked.sort((a, b) => a.stays - b.stays || a.i - b.i || a.order - b.order);
  return ranked.slice(0, MAX_SEEDS).map((r) => r.url);
}
