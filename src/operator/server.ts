/**
 * The operator's HTTP endpoints and metrics.
 *
 * - `/healthz` (liveness): 200 while every health check passes. Out of the box there is none (the
 *   process answering is the check); `leaderHealthCheck(elector)` fails when this replica leads but
 *   has not renewed its Lease for longer than the renew deadline plus a grace (controller-runtime's
 *   leader-election health adaptor), so a wedged leader gets restarted.
 * - `/readyz` (readiness): 200 when every readiness check passes, else 503. The operator wires
 *   "informers synced". Leadership is deliberately NOT a readiness condition: a standby replica is
 *   healthy and ready to take over, nothing routes traffic to an operator, and a readiness tied to
 *   the Lease would deadlock a rolling update (the new pod never becomes ready while the old one
 *   holds the Lease). Which replica leads is the `leader_election_master_status` gauge.
 *   Both answer like the API server's: `[+]name ok` / `[-]name failed: reason`, one per line;
 *   `?verbose` is accepted and the list is always printed.
 * - `/metrics`: prom-client text format with controller-runtime's names:
 *   `controller_runtime_reconcile_total{controller,result}` (result: success, error, requeue_after),
 *   `controller_runtime_reconcile_errors_total{controller}`,
 *   `controller_runtime_reconcile_time_seconds{controller}` (histogram),
 *   `workqueue_depth{name}` (read from the tracked queues at each scrape),
 *   `leader_election_master_status{name}`, and `swarmbench_runs{phase}`; plus the process's default
 *   metrics when asked.
 *
 * The server listens on `$SWARMBENCH_BIND_ADDRESS` when set (the chart's `metrics.bindPodIP`, for
 * clusters whose pods share one network namespace), else 0.0.0.0.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LeaderElector } from '../kube/leader.ts';
import type { Outcome, RunOptions, WorkQueue } from '../kube/queue.ts';
import { errorMessage } from '../errors.ts';

export const RUN_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled'] as const;

export class OperatorMetrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly reconcileTime: Histogram<'controller'>;
  readonly workqueueDepth: Gauge<'name'>;
  readonly leaderStatus: Gauge<'name'>;
  readonly runs: Gauge<'phase'>;
  private readonly queues = new Map<string, WorkQueue>();
  private readonly electors = new Map<string, LeaderElector>();

  constructor(opts: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = opts.registry ?? new Registry();
    const registers = [this.registry];
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total', help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'], registers,
    });
    this.reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total', help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'], registers,
    });
    this.reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds', help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'], registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60],
    });
    const queues = this.queues;
    this.workqueueDepth = new Gauge({
      name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers,
      collect() {
        for (const [name, q] of queues) this.set({ name }, q.depth());
      },
    });
    const electors = this.electors;
    this.leaderStatus = new Gauge({
      collect() {
        for (const [name, e] of electors) this.set({ name }, e.isLeader() ? 1 : 0);
      },
      name: 'leader_election_master_status', help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. \'name\' is the string used to identify the lease.',
      labelNames: ['name'], registers,
    });
    this.runs = new Gauge({ name: 'swarmbench_runs', help: 'BenchmarkRuns known to the operator, by phase', labelNames: ['phase'], registers });
  }

  /** Counts one reconcile: the result label and, for errors, the error counter; its duration. */
  observeReconcile(controller: string, outcome: Outcome, seconds: number): void {
    this.reconcileTotal.inc({ controller, result: outcome });
    if (outcome === 'error') this.reconcileErrors.inc({ controller });
    this.reconcileTime.observe({ controller }, seconds);
  }

  /** An `onDone` for `WorkQueue.run` that records every reconcile of `controller`. */
  onDone(controller: string): NonNullable<RunOptions['onDone']> {
    return (_key, outcome, seconds) => this.observeReconcile(controller, outcome, seconds);
  }

  /** Reports the queue's depth as `workqueue_depth{name=queue.name}` at every scrape. */
  trackQueue(queue: WorkQueue): void {
    this.queues.set(queue.name, queue);
  }

  /** Tracks an elector as `leader_election_master_status{name}` (1 while leading), read at every scrape. */
  trackLeader(elector: LeaderElector, name = elector.name): void {
    this.electors.set(name, elector);
  }

  /** Sets `swarmbench_runs{phase}` from the runs' phases (every phase present, 0 when none; no status = Pending). */
  setRunPhases(phases: Iterable<string | undefined>): void {
    const counts = new Map<string, number>(RUN_PHASES.map((p) => [p, 0]));
    for (const p of phases) counts.set(p ?? 'Pending', (counts.get(p ?? 'Pending') ?? 0) + 1);
    this.runs.reset();
    for (const [phase, n] of counts) this.runs.set({ phase }, n);
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** A check: true or undefined = passing; false or a string (the reason) = failing. */
export type Check = () => boolean | string | undefined;

export interface ServerOptions {
  metrics: OperatorMetrics;
  /** 0 picks a free port (tests). Default 8080. */
  port?: number;
  host?: string;
  healthChecks?: Record<string, Check>;
  readyChecks?: Record<string, Check>;
}

export interface OperatorServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Evaluates checks: [ok, body] in the API server's `[+]name ok` format. */
export function evaluateChecks(checks: Record<string, Check>): { ok: boolean; body: string } {
  const lines: string[] = [];
  let ok = true;
  for (const [name, check] of Object.entries(checks)) {
    let r: boolean | string | undefined;
    try {
      r = check();
    } catch (e) {
      r = errorMessage(e);
    }
    if (r === true || r === undefined) lines.push(`[+]${name} ok`);
    else {
      ok = false;
      lines.push(`[-]${name} failed${typeof r === 'string' ? `: ${r}` : ''}`);
    }
  }
  lines.push(ok ? 'ok' : 'check failed');
  return { ok, body: `${lines.join('\n')}\n` };
}

/** A readiness check that passes once every informer has synced. */
export function syncedCheck(informers: Array<{ name: string; hasSynced(): boolean }>): Check {
  return () => {
    const waiting = informers.filter((i) => !i.hasSynced()).map((i) => i.name);
    return waiting.length ? `not synced: ${waiting.join(', ')}` : true;
  };
}

/**
 * A liveness check for the elector: fails when it leads but its last successful renewal is older
 * than the renew deadline + `graceMs` (the renew loop is stuck).
 */
export function leaderHealthCheck(elector: LeaderElector, graceMs = 5000): Check {
  return () => {
    const age = elector.msSinceRenew();
    if (!elector.isLeader() || age === undefined) return true;
    return age <= elector.renewDeadlineMs + graceMs ? true : `lease not renewed for ${age} ms`;
  };
}

export async function startServer(opts: ServerOptions): Promise<OperatorServer> {
  const health = opts.healthChecks ?? {};
  const ready = opts.readyChecks ?? {};
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      const r = evaluateChecks(path === '/readyz' ? ready : health);
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : r.body);
      return;
    }
    if (path === '/metrics') {
      opts.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e)),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  const host = opts.host ?? (process.env.SWARMBENCH_BIND_ADDRESS || '0.0.0.0');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    server,
    port,
    url: `http://${shown}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
