/**
 * The reference agent: one listener implementing the agent contract v1 (docs/agent-contract.md).
 * Several agents may live in one process (`swarmbench agent --count K`); each has its own
 * listener, membership, state, ledger, faults, event hub and metrics registry, and nothing is
 * shared between them but the event loop.
 *
 * This file holds the `Agent` itself: what one agent is made of, how it starts (listen, then join
 * in the background), how it stops (leave, close, crash), and its `/v1/info`. The parts:
 * - `http.ts`: the listener and the HTTP helpers; `routes.ts`: the route table, which refuses
 *   every route but the health probes without the run's bearer token (`auth.ts`).
 * - `tasks.ts`: tasks run here (`/v1/tasks`); `coordinator.ts`: tasks dispatched across the
 *   cluster (`/v1/dispatch`), on the ledger and executor choice of `dispatch.ts`.
 * - `gossip.ts`: joining, gossip rounds and the internal cluster routes, on the membership table
 *   of `membership.ts` and the replicated state of `state.ts`.
 * - `ping.ts`, `workflows.ts`: requests this agent makes of its peers for a client.
 * - `events.ts` (WebSocket stream), `faults.ts`, `metrics.ts`, `work.ts` (task and step bodies).
 * - `defects.ts`: the defect profiles switched on for this agent (off by default); each part
 *   reads its switch from `agent.defects`.
 */
import os from 'node:os';
import { agentToken, checkBearer, METRICS_TOKEN_WHAT, metricsToken, validateToken } from './auth.ts';
import { AgentClient } from './client.ts';
import { Coordinator } from './coordinator.ts';
import { AgentDefects, formatDefect, type Defect } from './defects.ts';
import { Ledger } from './dispatch.ts';
import { EventHub } from './events.ts';
import { FaultState } from './faults.ts';
import { Gossip } from './gossip.ts';
import { Listener, type Outcome } from './http.ts';
import { Membership } from './membership.ts';
import { AgentMetrics } from './metrics.ts';
import { route, upgrade } from './routes.ts';
import { StateStore } from './state.ts';
import { TaskRunner } from './tasks.ts';
import type { AgentInfo, TaskRequest } from './types.ts';
import { sleep } from './util.ts';
import { VERSION } from '../version.ts';

/** The version an agent reports (`/v1/info`, the event stream's hello): the package's. */
export const AGENT_VERSION: string = VERSION;

export interface AgentOptions {
  id: string;
  /** Address to listen on (127.1.0.2, 0.0.0.0, ...). */
  host: string;
  port: number;
  /** Host put in the agent's URL; default: `host`, or the first external IPv4 when host is 0.0.0.0. */
  advertiseHost?: string;
  seeds: string[];
  capacity: number;
  gossipIntervalMs: number;
  failureTimeoutMs: number;
  /** How many agents share this process (for /v1/info and metrics). */
  agentsInProcess?: () => number;
  /** Defect profiles switched on (agent site; src/agent/defects.ts). Default: none. */
  defects?: readonly Defect[];
  /**
   * The run's bearer token (src/agent/auth.ts): every route but `/healthz` and `/readyz` requires
   * it, and the agent's own requests to its peers carry it. Default: `agentToken()`, this
   * process's token. Kept private: never in `/v1/info`, logs or errors.
   */
  token?: string;
  /**
   * The optional read-only scrape token (src/agent/auth.ts `metricsToken`): accepted on
   * `GET /metrics` only, besides the run token. Default: `SWARMBENCH_METRICS_TOKEN` when set, else
   * none (`null`: only the run token opens `/metrics`). Kept private like the token.
   */
  metricsToken?: string | null;
}

function externalIPv4(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export class Agent {
  readonly id: string;
  url = '';
  readonly capacity: number;
  readonly startedAt = Date.now();
  ready = false;
  healthScore = 1;
  stopped = false;

  readonly state: StateStore;
  readonly ledger = new Ledger();
  readonly faults = new FaultState();
  readonly defects: AgentDefects;
  readonly metrics: AgentMetrics;
  readonly events: EventHub;
  /** The coordination channel: gossip, echo (ping). Few keep-alive sockets per peer. */
  readonly coord: AgentClient;
  /** Data traffic: task forwarding, state pushes, workflow steps, joins. */
  readonly data: AgentClient;
  readonly tasks: TaskRunner;
  readonly coordinator: Coordinator;
  readonly gossip: Gossip;

  private readonly opts: AgentOptions;
  private readonly listener: Listener;
  readonly #token: string;
  readonly #metricsToken: string | null;
  private membershipRef: Membership | null = null;

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.#token = opts.token !== undefined ? validateToken(opts.token, 'AgentOptions.token') : agentToken();
    this.#metricsToken =
      opts.metricsToken === undefined ? metricsToken() : opts.metricsToken === null ? null : validateToken(opts.metricsToken, 'AgentOptions.metricsToken', METRICS_TOKEN_WHAT);
    this.capacity = opts.capacity;
    this.defects = new AgentDefects(opts.defects ?? [], opts.id);
    this.state = new StateStore(opts.id, { keepPrevious: this.defects.staleReads });
    // A probe that times out suspects the peer; an overloaded machine answers slowly, so the probe
    // waits as long as the failure timeout (a killed peer is refused at once anyway).
    const gossipTimeoutMs = Math.max(200, opts.failureTimeoutMs);
    // The `slow-peers` defect: every request to another agent, on either channel, is sent late.
    const sendDelayMs = this.defects.peerDelayMs;
    const token = this.#token;
    this.coord = new AgentClient({ maxSockets: 2, maxFreeSockets: 2, timeoutMs: gossipTimeoutMs, sendDelayMs, token });
    this.data = new AgentClient({ maxSockets: Math.max(16, opts.capacity), maxFreeSockets: 8, timeoutMs: 30_000, sendDelayMs, token });
    this.metrics = new AgentMetrics(opts.id, {
      inFlight: () => this.inFlight,
      capacity: () => this.capacity,
      membersAlive: () => this.membership.aliveCount(),
      stateVersion: () => this.state.maxVersion,
      healthScore: () => this.healthScore,
      agentsInProcess: () => this.agentsInProcess(),
      stateDropped: () => this.state.dropped,
      membersDropped: () => this.membershipRef?.dropped ?? 0,
      eventSubscribersClosed: () => this.events.slowClosed,
    });
    this.events = new EventHub({
      agentId: opts.id,
      delayMs: () => this.faults.latencyMs,
      lagMs: this.defects.eventLagMs,
      ...(this.defects.eventDrops ? { drop: () => this.defects.dropEvent() } : {}),
      hello: () => ({ id: this.id, url: this.url, contract: 'v1', version: AGENT_VERSION }),
      heartbeat: () => ({
        inFlight: this.inFlight,
        capacity: this.capacity,
        membersAlive: this.membership.aliveCount(),
        tasksDone: this.tasksDone,
        stateVersion: this.state.maxVersion,
        healthScore: this.healthScore,
        rss: process.memoryUsage.rss(),
      }),
    });
    this.tasks = new TaskRunner(this);
    this.coordinator = new Coordinator(this);
    this.gossip = new Gossip(this, { seeds: opts.seeds, gossipIntervalMs: opts.gossipIntervalMs });
    this.listener = new Listener(
      (req, res, receivedAt) => route(this, req, res, receivedAt),
      (req, socket, head) => upgrade(this, req, socket, head),
    );
  }

  get membership(): Membership {
    if (!this.membershipRef) throw new Error('agent not started');
    return this.membershipRef;
  }

  /** Tasks running here now. */
  get inFlight(): number {
    return this.tasks.inFlight;
  }

  /** Tasks run here to completion. */
  get tasksDone(): number {
    return this.tasks.tasksDone;
  }

  /** Does this `authorization` header carry the agent's token (constant time, src/agent/auth.ts)? */
  authorized(header: string | readonly string[] | undefined): boolean {
    return checkBearer(header, this.#token);
  }

  /** May this `authorization` header read `GET /metrics`: the run token, or the scrape token when one is set? */
  mayScrape(header: string | readonly string[] | undefined): boolean {
    return this.authorized(header) || (this.#metricsToken !== null && checkBearer(header, this.#metricsToken));
  }

  agentsInProcess(): number {
    return this.opts.agentsInProcess?.() ?? 1;
  }

  /** Listen, then join through the seeds (in the background) and start gossiping. Returns the URL. */
  async start(): Promise<string> {
    const port = await this.listener.listen(this.opts.host, this.opts.port);
    let host = this.opts.advertiseHost ?? this.opts.host;
    if (host === '0.0.0.0' || host === '::' || host === '') host = externalIPv4();
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.membershipRef = new Membership({
      selfId: this.id,
      selfUrl: this.url,
      failureTimeoutMs: this.opts.failureTimeoutMs * this.defects.failureTimeoutFactor,
      detectFailures: this.defects.failureDetection,
    });
    void this.join();
    return this.url;
  }

  /** Join in the background; the `slow-startup` defect waits first (listening, not ready). */
  private async join(): Promise<void> {
    if (this.defects.startupDelayMs > 0) {
      await sleep(this.defects.startupDelayMs);
      if (this.stopped) return;
    }
    await this.gossip.join();
  }

  /** Run a task here (contract `/v1/tasks`), with idempotent ids and load shedding. */
  runTask(t: TaskRequest, receivedAt: number): Promise<Outcome> {
    return this.tasks.run(t, receivedAt);
  }

  /** Housekeeping, every few seconds from the gossip round: drop old task answers, ledger entries, peer loads. */
  sweep(now: number): void {
    this.tasks.sweep(now);
    this.ledger.sweep();
    this.gossip.sweepLoads(now);
  }

  /** The health score (`/metrics`, heartbeats), set by the threshold-breach fault. */
  setHealth(v: number): void {
    if (v === this.healthScore) return;
    this.healthScore = v;
    this.events.emit('metric', { name: 'swarmbench_agent_health_score', value: v });
  }

  info(): AgentInfo {
    const mem = process.memoryUsage();
    return {
      id: this.id,
      url: this.url,
      contract: 'v1',
      version: AGENT_VERSION,
      pid: process.pid,
      startedAt: this.startedAt,
      capacity: this.capacity,
      inFlight: this.inFlight,
      members: this.membership.aliveCount(),
      stateVersion: this.state.maxVersion,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed },
      agentsInProcess: this.agentsInProcess(),
      ...(this.defects.any ? { defects: this.defects.active.map(formatDefect) } : {}),
    };
  }

  // ---------------------------------------------------------------- lifecycle

  /** Leave the cluster: announce `left` to every reachable member, then stop serving. */
  async leave(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ready = false;
    this.gossip.stop();
    if (this.membershipRef) await this.gossip.announceLeave();
    await this.close();
  }

  /** Stop serving gracefully (no announcement). */
  async close(): Promise<void> {
    this.stopped = true;
    this.gossip.stop();
    this.events.close();
    this.coord.close();
    this.data.close();
    await this.listener.close();
  }

  /**
   * Die abruptly (the local platform's kill of one agent among several in a process): the
   * listener and every socket are destroyed at once, timers stop, nothing is announced.
   */
  crash(): void {
    this.stopped = true;
    this.ready = false;
    this.gossip.stop();
    this.listener.destroy();
    this.events.close();
    this.coord.close();
    this.data.close();
  }
}
