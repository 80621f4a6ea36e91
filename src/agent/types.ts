/**
 * Wire types of the agent contract v1 (docs/agent-contract.md). Shared by the reference agent,
 * the typed client, the conformance check and the benchmark runner. Pure types, no runtime.
 */

export type TaskKind = 'io' | 'cpu';

export interface TaskRequest {
  id: string;
  kind: TaskKind;
  /** io: milliseconds to wait (default 20). */
  ioMs?: number;
  /** cpu: rounds of SHA-256 over a 1 KiB buffer seeded by `payload` (default 200). */
  cpuRounds?: number;
  payload?: string;
}

export interface TaskResult {
  id: string;
  agent: string;
  kind: TaskKind;
  result: string;
  queuedMs: number;
  runMs: number;
}

export interface SaturatedBody {
  error: 'saturated';
  inFlight: number;
  capacity: number;
}

export interface ErrorBody {
  error: string;
  [k: string]: unknown;
}

export interface DispatchAccepted {
  id: string;
  accepted: true;
  coordinator: string;
}

export type DispatchState = 'pending' | 'done' | 'failed' | 'unknown';

export interface DispatchTask {
  id: string;
  state: DispatchState;
  executor: string | null;
  attempts: number;
  result: string | null;
  error: string | null;
  /** Coordinator's epoch ms of acceptance and of the outcome (reference agent; absent for unknown ids). */
  acceptedAt?: number;
  finishedAt?: number | null;
}

export interface DispatchQueryResult {
  tasks: DispatchTask[];
}

export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

export interface MemberView {
  id: string;
  url: string;
  status: MemberStatus;
  incarnation: number;
  lastSeenMs: number;
}

export interface MembersResult {
  self: string;
  members: MemberView[];
  alive: number;
}

export interface AgentInfo {
  id: string;
  url: string;
  contract: 'v1';
  version: string;
  pid: number;
  startedAt: number;
  capacity: number;
  inFlight: number;
  members: number;
  stateVersion: number;
  memory: { rss: number; heapUsed: number };
  agentsInProcess: number;
  /** Reference agent: the defect profiles switched on (absent when none). */
  defects?: string[];
}

export interface StateEntry {
  key: string;
  version: number;
  value: unknown;
  writer: string;
}

export interface PingResult {
  peer: string;
  rttMs: number[];
}

export type WorkflowOp = 'upper' | 'reverse' | 'sha256' | 'append';

export interface WorkflowStep {
  op: WorkflowOp;
  arg?: string;
}

export interface WorkflowRequest {
  id: string;
  input: string;
  steps: WorkflowStep[];
}

export interface WorkflowResult {
  id: string;
  output: string;
  hops: { step: number; agent: string; ms: number }[];
}

export interface Faults {
  latencyMs?: number;
  errorRate?: number;
  breach?: { healthScore?: number };
  loseAccepted?: number;
}

export type EventType = 'hello' | 'heartbeat' | 'task' | 'member' | 'metric' | 'mark';

export interface AgentEvent<D = Record<string, unknown>> {
  type: EventType;
  agent: string;
  seq: number;
  ts: number;
  data: D;
}

export interface MarkResult {
  token: string;
  ts: number;
}
