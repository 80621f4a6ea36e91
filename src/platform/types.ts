/**
 * Where agents run. The local platform starts agent host processes on loopback addresses; the
 * Kubernetes platform (the operator) runs an agent pool as pods. Benchmarks only see this seam.
 */

export interface AgentHandle {
  /** Stable agent id (unique within the pool, also after a restart it gets a new id). */
  id: string;
  /** Base URL of the agent contract, e.g. http://127.1.0.3:41234 */
  url: string;
  /** OS process that hosts the agent (several agents may share one). */
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
}

export interface ProcessStats {
  pid: number;
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
  createPool(opts: PoolOptions): Promise<Pool>;
  /** Stop every pool still open. */
  close(): Promise<void>;
}
