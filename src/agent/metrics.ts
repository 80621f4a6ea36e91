/**
 * Prometheus metrics of one agent: a prom-client Registry per agent (several agents may share a
 * process), every series labelled agent="<id>".
 *
 * Process metrics: prom-client's `collectDefaultMetrics` starts an event-loop-delay monitor (a
 * 10 ms timer) and GC observers per registry, which costs real CPU when hundreds of agents share a
 * process. So the agent exports the standard process series itself, computed at scrape time:
 * process_cpu_user_seconds_total, process_cpu_system_seconds_total, process_cpu_seconds_total,
 * process_resident_memory_bytes, process_start_time_seconds, nodejs_heap_size_used_bytes,
 * nodejs_heap_size_total_bytes, nodejs_external_memory_bytes. They describe the host process,
 * which all its agents share (the `agents_in_process` gauge says how many).
 *
 * Drop counters (caps of src/agent/limits.ts), read from the agent's own counts at scrape time:
 * `swarmbench_agent_state_dropped_total` (replicated-state entries from peers refused by a cap:
 * `StateStore.dropped`), `swarmbench_agent_members_dropped_total` (membership entries from peers
 * refused: `Membership.dropped`), `swarmbench_agent_event_subscribers_closed_total` (event
 * subscribers closed for not reading: `EventHub.slowClosed`). A rising one means a peer or a
 * client is sending more than the caps allow.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricsSource {
  inFlight(): number;
  capacity(): number;
  membersAlive(): number;
  stateVersion(): number;
  healthScore(): number;
  agentsInProcess(): number;
  /** Replicated-state entries from peers dropped by a cap (`StateStore.dropped`). */
  stateDropped(): number;
  /** Membership entries from peers dropped (`Membership.dropped`; 0 before the agent starts). */
  membersDropped(): number;
  /** Event subscribers closed for not reading (`EventHub.slowClosed`). */
  eventSubscribersClosed(): number;
}

const PROCESS_START = Math.round(Date.now() / 1000 - process.uptime());

export class AgentMetrics {
  readonly registry: Registry;
  readonly tasks: Counter<'kind' | 'outcome'>;
  readonly taskDuration: Histogram<'kind'>;
  readonly dispatched: Counter<'outcome'>;
  readonly gossip: Counter<'kind' | 'outcome'>;

  constructor(agentId: string, src: MetricsSource) {
    const registry = new Registry();
    registry.setDefaultLabels({ agent: agentId });
    this.registry = registry;
    this.tasks = new Counter({
      name: 'swarmbench_agent_tasks_total',
      help: 'Tasks answered by this agent, by kind and outcome (ok, rejected, error).',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    });
    for (const kind of ['io', 'cpu']) for (const outcome of ['ok', 'rejected', 'error']) this.tasks.inc({ kind, outcome }, 0);
    this.taskDuration = new Histogram({
      name: 'swarmbench_agent_task_duration_seconds',
      help: 'Run time of completed tasks.',
      labelNames: ['kind'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.dispatched = new Counter({
      name: 'swarmbench_agent_dispatch_total',
      help: 'Tasks this agent coordinated through /v1/dispatch, by outcome (accepted; rejected: 429, pool saturated or ledger full; done; failed; redispatched).',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.gossip = new Counter({
      name: 'swarmbench_agent_gossip_exchanges_total',
      help: 'Gossip exchanges this agent started, by kind (probe, sync) and outcome (ok, failed).',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    });
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    };
    gauge('swarmbench_agent_inflight', 'Tasks running on this agent now.', () => src.inFlight());
    gauge('swarmbench_agent_capacity', 'Tasks this agent runs at once before answering 429.', () => src.capacity());
    gauge('swarmbench_agent_members_alive', 'Alive members in this agent\'s view, itself included.', () => src.membersAlive());
    gauge('swarmbench_agent_state_version', 'Highest replicated-state version this agent holds.', () => src.stateVersion());
    gauge('swarmbench_agent_health_score', 'Health score, 1 when healthy (a breach fault lowers it).', () => src.healthScore());
    gauge('swarmbench_agent_agents_in_process', 'Agents hosted by this agent\'s process.', () => src.agentsInProcess());

    /** A counter that follows a monotonic count read at scrape time (it never goes down). */
    const readCounter = (name: string, help: string, read: () => number): void => {
      let last = 0;
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const v = read();
          if (v > last) this.inc(v - last);
          last = Math.max(last, v);
        },
      });
    };
    readCounter(
      'swarmbench_agent_state_dropped_total',
      'Replicated-state entries from peers dropped by a cap (malformed, too deep, too large, store full).',
      () => src.stateDropped(),
    );
    readCounter(
      'swarmbench_agent_members_dropped_total',
      'Membership entries from peers dropped (malformed, past the per-message cap, or the table full).',
      () => src.membersDropped(),
    );
    readCounter(
      'swarmbench_agent_event_subscribers_closed_total',
      'Event stream subscribers closed for not reading (unsent bytes past the cap).',
      () => src.eventSubscribersClosed(),
    );

    // Process series (see the module comment).
    readCounter('process_cpu_user_seconds_total', 'User CPU time spent in seconds.', () => process.cpuUsage().user / 1e6);
    readCounter('process_cpu_system_seconds_total', 'System CPU time spent in seconds.', () => process.cpuUsage().system / 1e6);
    readCounter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    });
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
    gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => PROCESS_START);
    gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', () => process.memoryUsage().heapUsed);
    gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', () => process.memoryUsage().heapTotal);
    gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', () => process.memoryUsage().external);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
