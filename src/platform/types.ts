/**
 * Where agents run. The local platform starts agent host processes on loopback addresses; the
 * Kubernetes platform (the operator) runs an agent pool as pods. Benchmarks only see this seam.
 */

export interface AgentHandle {
  /** Stable agent id (unique within the pool, also after a restart it gets a new id). */
  id: string;
  /** Base URL of the agent contract, e.g. http://127.1.0.3:41234 */
  url: string;
  /** OS process that hosts the agent (several agents may share one); 0 where unknown (pods). */
  pid: number;
  /** Node (Kubernetes) or host process index (local) the agent runs on. */
  node: string;
}

export interface PoolOptions {
  /** Initial number of agents. */
  size: number;
  /** Tasks an agent runs at once before it answers 429. */
  capacity: number;
  /** Agents per host process (local platform). 1 = one process per agent. */
  agentsPerProcess: number;
  /** Restart agents that die, as a Deployment would. */
  autoHeal?: boolean;
  /** Label for logs and process titles. */
  name: string;
  /** Gossip period and failure-detection timeout of the agents (ms). */
  gossipIntervalMs?: number;
  failureTimeoutMs?: number;
  /**
   * Defect profiles of the reference agent (`NAME` or `NAME:VALUE`, docs/defects.md), every agent
   * of the pool: `--defect` flags locally, `SWARMBENCH_DEFECTS` in pods of the project's image.
   */
  defects?: readonly string[];
}

export interface ProcessStats {
  pid: number;
  /**
   * Who the process is across snapshots where `pid` is 0 (a pod: its uid; an agent the harness did
   * not start: its URL); matching by it keeps a figure per process right when pods come, go or
   * list in another order.
   */
  key?: string;
  agents: number;
  rssBytes: number;
  heapUsedBytes: number;
  cpuSeconds: number;
}

export interface Pool {
  readonly name: string;
  /** The agents currently believed alive (started and not killed). */
  agents(): AgentHandle[];
  /** Grow or shrink to n agents; resolves when the new agents listen and are ready (readyz). */
  scaleTo(n: number): Promise<AgentHandle[]>;
  /** Kill one agent abruptly (SIGKILL of its process when it has its own; closing its sockets otherwise). */
  kill(id: string): Promise<void>;
  /** Resource use of the processes hosting the pool. */
  stats(): Promise<ProcessStats[]>;
  /** Stop everything the pool started. Idempotent. */
  close(): Promise<void>;
}

export interface Platform {
  readonly kind: 'local' | 'kubernetes';
  /**
   * Set when the agents are fixed: started by the user and reached by URL (`swarmbench run
   * --agent-url`). It says which agents; their pools cannot grow, shrink or lose an agent, and the
   * tests that need that are Skipped (runner/fixed.ts), never Passed.
   */
  readonly fixedAgents?: string;
  createPool(opts: PoolOptions): Promise<Pool>;
  /** Stop every pool still open. */
  close(): Promise<void>;
}

/** The start of every FixedAgentsError's message: a test failure reason that carries it was a refusal. */
export const FIXED_AGENTS_MARK = 'fixed agents: ';

/**
 * Thrown by a pool of fixed agents asked to do what only a platform that starts its agents can:
 * another pool size, a kill, a second pool at once. The test that asked is Skipped with this
 * message (runner/fixed.ts), because its figure would not be the system's.
 */
export class FixedAgentsError extends Error {
  constructor(message: string) {
    super(`${FIXED_AGENTS_MARK}${message}`);
    this.name = 'FixedAgentsError';
  }
}
