/**
 * The harness checks what it is told: every final answer the load generators receive (`/v1/tasks`
 * 200 bodies, `/v1/dispatch/query` views that say `done`) is checked against what the harness
 * itself expects, and an answer that fails is the outcome `wrong` (never ok).
 *
 * - **Every answer**: the task id is the one sent, the executor is named (a non-empty agent id),
 *   and the result has the right form. An IO task's result is its payload echoed, so it is compared
 *   in full.
 * - **CPU digests, recomputed on a sample**: the harness recomputes `cpuTaskResult` (`src/agent/work.ts`,
 *   the contract's definition of the work) for every k-th CPU task of a run, counted in send order
 *   (k = `cpuCheckEvery`, 1 = every one). The others are checked for form only (64 hex digits) and
 *   counted as `cpuUnchecked`, so what was and was not recomputed is always reported.
 *   `cpuCheckEvery` defaults to the smallest k that keeps the recomputation under
 *   `CPU_CHECK_ROUNDS_PER_S` SHA-256 rounds per second of schedule (about 5 % of one core), so that
 *   checking never makes the harness the bottleneck.
 * - **Payloads are unique per task** (`taskPayload`): a seeded base and the task's index, so an agent
 *   cannot answer from a cache keyed by payload instead of doing the work.
 */
import { cpuTaskResult, ioTaskResult } from '../../agent/work.ts';

/** What was wrong with an answer (the first failed check). */
export const MISMATCH_KINDS = ['id', 'executor', 'result', 'body'] as const;
export type MismatchKind = (typeof MISMATCH_KINDS)[number];

/**
 * SHA-256 rounds per second of schedule the harness may spend recomputing CPU digests (about
 * 10 µs per 1 KiB round on the 2-core reference machine, so about 5 % of one core).
 */
export const CPU_CHECK_ROUNDS_PER_S = 5000;

export interface CheckCounts {
  /** Final answers checked (every ok and every wrong one). */
  checked: number;
  /** CPU answers whose digest the harness recomputed. */
  cpuChecked: number;
  /** CPU answers outside the sample: id, executor and form checked, digest not recomputed. */
  cpuUnchecked: number;
  /** The sampling rule: every k-th CPU task (in send order) has its digest recomputed. */
  cpuCheckEvery: number;
  /** Wrong answers by the first check they failed. */
  mismatch: Record<MismatchKind, number>;
  /** The distinct executors named by the checked answers. */
  executors: Set<string>;
}

export function newCheckCounts(cpuCheckEvery: number): CheckCounts {
  return { checked: 0, cpuChecked: 0, cpuUnchecked: 0, cpuCheckEvery, mismatch: { id: 0, executor: 0, result: 0, body: 0 }, executors: new Set() };
}

/**
 * The default sampling step: the smallest k for which recomputing every k-th CPU task stays under
 * `CPU_CHECK_ROUNDS_PER_S` at the peak offered rate.
 */
export function defaultCpuCheckEvery(peakTasksPerSecond: number, cpuFraction: number, cpuRounds: number): number {
  const roundsPerSecond = Math.max(0, peakTasksPerSecond) * Math.max(0, cpuFraction) * Math.max(1, cpuRounds);
  return Math.max(1, Math.ceil(roundsPerSecond / CPU_CHECK_ROUNDS_PER_S));
}

/** The payload of task `index`: one of the run's seeded bases and the index (unique per task). */
export function taskPayload(bases: readonly string[], index: number): string {
  return `${bases[index & (bases.length - 1)]}.${index.toString(36)}`;
}

/** Kind codes stored per task (`LoadRun.kind`). */
export const KIND = { io: 0, cpuUnchecked: 1, cpuChecked: 2 } as const;

const HEX64 = /^[0-9a-f]{64}$/;

/** The answer fields the checks read (a `/v1/tasks` body or a dispatch view). */
export interface Answer {
  id?: unknown;
  /** `/v1/tasks`: the agent that ran it. */
  agent?: unknown;
  /** Dispatch view: the executor the coordinator names. */
  executor?: unknown;
  result?: unknown;
}

/**
 * Checks one answer of task `id` (kind code from `KIND`); counts it in `c`. Returns null when it
 * passed, else the first check it failed (also counted).
 */
export function checkAnswer(c: CheckCounts, kind: number, id: string, payload: string, cpuRounds: number, answer: Answer | null, executorField: 'agent' | 'executor'): MismatchKind | null {
  c.checked++;
  if (kind === KIND.cpuChecked) c.cpuChecked++;
  else if (kind === KIND.cpuUnchecked) c.cpuUnchecked++;
  const bad = (k: MismatchKind): MismatchKind => {
    c.mismatch[k]++;
    return k;
  };
  if (answer === null || typeof answer !== 'object') return bad('body');
  if (answer.id !== undefined && answer.id !== id) return bad('id');
  const executor = answer[executorField];
  if (typeof executor !== 'string' || executor.length === 0) return bad('executor');
  c.executors.add(executor);
  const r = answer.result;
  if (typeof r !== 'string') return bad('result');
  if (kind === KIND.io) return r === ioTaskResult(payload) ? null : bad('result');
  if (!HEX64.test(r)) return bad('result');
  if (kind === KIND.cpuChecked && r !== cpuTaskResult(payload, cpuRounds)) return bad('result');
  return null;
}

/** Parses a JSON answer body; null when it is not a JSON object. */
export function parseAnswer(text: string): Answer | null {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Answer) : null;
  } catch {
    return null;
  }
}
