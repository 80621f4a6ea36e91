/**
 * What every part of the reconcile is handed: the cluster (cluster.ts), the operator's settings,
 * and the run being reconciled. Types only, so that reconcile.ts, attempt.ts, finish.ts,
 * cleanup.ts and status.ts share them without importing each other in a circle.
 */
import type { BenchmarkRunSpec } from '../api/schema.ts';
import type { RunRef } from '../kube/names.ts';
import type { Logger } from '../log.ts';
import type { RunCluster, RunObject } from './cluster.ts';
import type { GpuScheduling, OperatorImages } from './desired.ts';
import type { AdmissionSettings } from './policy.ts';
import type { IngressPeer } from './netpol.ts';
import type { NotifySettings } from './notify.ts';
import type { Notifier } from './notify-sender.ts';
import type { RunnerTries } from './tries.ts';

export interface Deps {
  cluster: RunCluster;
  log: Logger;
  images: OperatorImages;
  version: string;
  /** The ClusterRole bound to each run's runner ServiceAccount. */
  runnerClusterRole: string;
  gpuDefaults?: GpuScheduling | undefined;
  /** The operator's own Prometheus, for runs that name none. */
  prometheus?: { url: string; token?: string | undefined } | undefined;
  /**
   * Who else may reach a run's agents besides the run's own pods (the Prometheus that scrapes
   * them: the chart's `networkPolicy.prometheusSelector`, `--agent-ingress-from`). None: only the run.
   */
  agentIngressFrom?: IngressPeer[] | undefined;
  /**
   * The administrator's metrics scrape token (`--metrics-token-file`), copied into each new attempt's
   * agent-token Secret (desired.ts `agentTokenSecret`); absent: agents' /metrics need the run token.
   */
  metricsToken?: string | undefined;
  /** The admission policy (policy.ts; the chart's `--admission`); absent: its defaults, DEFAULT_ADMISSION. */
  admission?: AdmissionSettings | undefined;
  /** Re-check a running attempt at least this often (ms). */
  pollMs: number;
  /** A step's pod stuck this long fails the step (ms; forensics.ts). */
  stuckAfterMs?: number;
  /** What ended the runner pods' tries, from the operator's pod watch (tries.ts); absent: not told. */
  tries?: RunnerTries | undefined;
  /**
   * Notifications (notify.ts, docs/notifications.md): the process's one Notifier (its queue sends,
   * its `onSettled` enqueues the run) and the chart's settings. Absent: `spec.notify` is not acted on.
   */
  notify?: { notifier: Notifier; settings: NotifySettings } | undefined;
  now(): Date;
}

/** The run of one reconcile: the object as read (its status is updated after each write), its reference and validated spec. */
export interface RunCtx {
  run: RunObject;
  ref: RunRef;
  spec: BenchmarkRunSpec;
}

/** Done (nothing to do until an event), or look again after a delay. */
export type ReconcileResult = void | { requeueAfterMs: number };

export const nowIso = (deps: Pick<Deps, 'now'>): string => deps.now().toISOString();
