/**
 * The open-loop load generator for the agent contract's task endpoints, used by the distributed,
 * scalability and stress categories: `generator.ts` drives the arrivals and the answers
 * (`startLoad`, `runLoad`), `record.ts` is what a run records and derives from it (`LoadRun`,
 * outcome codes, windows, the task mix).
 */
export { runLoad, startLoad, type LoadHandle, type LoadOptions, type TaskEvent } from './generator.ts';
export {
  isCpuTask,
  LoadRun,
  OUTCOME,
  type LatencySummary,
  type LoadCounts,
  type LoadMode,
  type LoadWindow,
  type LostDetail,
  type OutcomeCode,
  type OutcomeName,
  type TaskMix,
} from './record.ts';
