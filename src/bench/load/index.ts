/**
 * The load generators for the agent contract's task endpoints, used by the distributed,
 * scalability and stress categories: `generator.ts` drives an open loop of arrivals and their
 * answers (`startLoad`, `runLoad`), `closed.ts` a closed loop through the system's own dispatch
 * (`startClosedLoop`), `verify.ts` checks every answer's result, and `record.ts` is what a run
 * records and derives from it (`LoadRun`, outcome codes, windows, the task mix); `lag.ts` is the
 * bound past which a generator was behind its schedule (the lag guard).
 */
export { postJson, runLoad, startLoad, type LoadHandle, type LoadOptions, type TaskEvent } from './generator.ts';
export { startClosedLoop, type ClosedLoopHandle, type ClosedLoopOptions } from './closed.ts';
export { behindText, GENERATOR_LAG_BOUND, generatorBehind, lagDetails, type LagFigures } from './lag.ts';
export {
  checksSummary,
  isCpuTask,
  LoadRun,
  OUTCOME,
  type LagSummary,
  type LatencySummary,
  type LoadCounts,
  type LoadMode,
  type LoadWindow,
  type LostDetail,
  type OutcomeCode,
  type OutcomeName,
  type TaskMix,
} from './record.ts';
export { checkAnswer, CPU_CHECK_ROUNDS_PER_S, defaultCpuCheckEvery, KIND, MISMATCH_KINDS, taskPayload, type CheckCounts, type MismatchKind } from './verify.ts';
