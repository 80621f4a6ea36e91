/**
 * `swarmbench operator`: the Kubernetes executor of BenchmarkRuns.
 *
 *   informers (BenchmarkRuns; Jobs and ConfigMaps labelled managed-by=swarmbench, mapped to their
 *   owning run) -> work queue (merged keys, one in flight per key, backoff) -> Reconciler.
 *   BenchmarkSchedules (and the runs they control) -> a second queue -> ScheduleReconciler (schedule.ts).
 *
 * With leader election (default on) only the Lease holder runs informers and workers; a replica
 * that loses the Lease exits (its Deployment restarts it as a standby). /healthz, /readyz and
 * /metrics are served by every replica.
 *
 * Bounded by design (docs/operator.md "The Kubernetes foundation"): the ConfigMap informer watches
 * only the components an attempt makes (cluster.ts `OPERATOR_CONFIGMAP_SELECTOR`: no exports, no
 * baselines) and keeps data only of step results and params, within a byte budget; every API
 * request has a time limit; and each leadership term has its own signal (the elector's), handed
 * to the work queue and to every API client of the reconcile: when the Lease is lost, requests in
 * flight are aborted, no new request is sent, no key is handed out, and the process exits after at
 * most `STOP_GRACE_MS` for the workers to return.
 *
 * Flags: --namespaces a,b (watch these namespaces; default all; --namespace is the same flag),
 * --image IMG, --gpu-image IMG, --runner-cluster-role NAME (the ClusterRole bound to each run's
 * runner ServiceAccount; default swarmbench-runner), --prometheus-url URL (the Prometheus of runs
 * that name none; its bearer token from $SWARMBENCH_PROMETHEUS_TOKEN), --gpu-defaults JSON
 * ({nodeSelector, tolerations, resources} for runs without spec.gpu), --admission JSON (default
 * $SWARMBENCH_ADMISSION: the admission policy, policy.ts `parseAdmission`, with the notification
 * settings: `notifySecrets`, `notifications` for where webhooks may go), --agent-ingress-from JSON
 * (default $SWARMBENCH_AGENT_INGRESS_FROM: the peers besides a run's own pods that its NetworkPolicy
 * admits to the agents, `{namespaceSelector, podSelector}` or a list: the scraping Prometheus),
 * --metrics-token-file PATH (default $SWARMBENCH_METRICS_TOKEN_FILE: the administrator's scrape token,
 * copied into each new attempt's agent-token Secret so that one Prometheus credential reads every
 * run's agents' /metrics and nothing else), --port 8080,
 * --concurrency 4, --resync-seconds 300, --leader-elect true|false, --lease-namespace NS
 * (default $POD_NAMESPACE or "default"), --lease-name swarmbench-operator, --lease-seconds 15,
 * --stuck-after-seconds 90 (a step's pod that cannot start for this long fails the step: forensics.ts),
 * --ui-port N (the results UI, docs/ui.md "The operator's host": off unless given), --ui-bind-address
 * ADDR (default 127.0.0.1), --ui-allowed-hosts a,b (the Host names it answers to; default
 * localhost,127.0.0.1,[::1], what `kubectl port-forward` sends: ui-server.ts).
 * Environment: KUBECONFIG or the in-cluster service account; SWARMBENCH_LOG_LEVEL.
 * Bad flags exit 2 with the reason, before anything starts.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { METRICS_TOKEN_WHAT, readTokenFile } from '../agent/auth.ts';
import { createLogger } from '../log.ts';
import { VERSION } from '../version.ts';
import { benchmarkRunInformer, configMapInformer, jobInformer, podInformer, waitForSync, type Informer } from '../kube/informer.ts';
import { RunnerTries } from './tries.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { COMPONENT, COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL, ownerRunKey } from '../kube/names.ts';
import { LeaderElector } from '../kube/leader.ts';
import { WorkQueue } from '../kube/queue.ts';
import { NVIDIA_GPU_DEFAULTS, type GpuScheduling } from './desired.ts';
import { parseIngressPeers, type IngressPeer } from './netpol.ts';
import { parseAdmission, type AdmissionSettings } from './policy.ts';
import { CONFIGMAP_CACHED_COMPONENTS, KubeRunCluster, OPERATOR_CONFIGMAP_SELECTOR, keepsConfigMapData, scopedCaches } from './cluster.ts';
import { Reconciler } from './reconcile.ts';
import { scheduleWiring } from './schedule.ts';
import { notifySettingsOf } from './notify.ts';
import { Notifier } from './notify-sender.ts';
import { leaderHealthCheck, OperatorMetrics, startServer, syncedCheck } from './server.ts';
import { errorMessage } from '../errors.ts';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { DEFAULT_UI_ALLOWED_HOSTS, parseUiFlags, startOperatorUi, type UiFlags } from './ui-server.ts';

const USAGE = `usage: swarmbench operator [--namespaces NS,NS...] [--image IMG] [--gpu-image IMG]
       [--runner-cluster-role NAME] [--prometheus-url URL] [--gpu-defaults JSON]
       [--admission JSON] [--agent-ingress-from JSON] [--metrics-token-file PATH] [--port 8080]
       [--concurrency 4] [--resync-seconds 300] [--leader-elect true|false]
       [--lease-namespace NS] [--lease-name NAME] [--lease-seconds 15]
       [--stuck-after-seconds 90] [--ui-port N] [--ui-bind-address 127.0.0.1]
       [--ui-allowed-hosts localhost,127.0.0.1,[::1]]
`;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** After the leadership term ends, how long the workers get to return before the process exits anyway. */
export const STOP_GRACE_MS = 10_000;

/** `--gpu-defaults`: what a run without spec.gpu gets (each field optional; absent: NVIDIA's). */
const GpuDefaults = z
  .object({
    nodeSelector: z.record(z.string(), z.string()).optional(),
    tolerations: z
      .array(
        z.strictObject({
          key: z.string().optional(),
          operator: z.enum(['Exists', 'Equal']).optional(),
          value: z.string().optional(),
          effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
          tolerationSeconds: z.number().int().optional(),
        }),
      )
      .optional(),
    resources: z
      .strictObject({
        limits: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
        requests: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
      })
      .optional(),
  })
  .strict();

/** Parses `--gpu-defaults`; throws with the field at fault. */
export function parseGpuDefaults(text: string | undefined): GpuScheduling {
  if (!text) return NVIDIA_GPU_DEFAULTS;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`--gpu-defaults is not JSON: ${(e as Error).message}`);
  }
  const r = GpuDefaults.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`--gpu-defaults: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  const resources = r.data.resources ?? NVIDIA_GPU_DEFAULTS.resources;
  return {
    nodeSelector: r.data.nodeSelector ?? NVIDIA_GPU_DEFAULTS.nodeSelector,
    tolerations: r.data.tolerations ?? NVIDIA_GPU_DEFAULTS.tolerations,
    ...(resources ? { resources: resources as GpuScheduling['resources'] } : {}),
  };
}

/** The host of the kubeconfig's API server (none when it does not parse). */
function apiServerHost(kc: ReturnType<typeof loadKubeConfig>): string[] {
  try {
    // host:port: on a test machine the API server shares its loopback host with other services.
    const u = new URL(kc.getCurrentCluster()?.server ?? '');
    return [`${u.hostname}:${u.port || (u.protocol === 'http:' ? '80' : '443')}`];
  } catch {
    return [];
  }
}

/** `--namespaces a,b`: the watched namespaces (empty: all); throws on a name that is not a DNS label. */
export function parseNamespaces(text: string | undefined): string[] {
  const list = [...new Set((text ?? '').split(',').map((s) => s.trim()).filter(Boolean))];
  for (const n of list) if (!DNS_LABEL.test(n)) throw new Error(`--namespaces: "${n}" is not a namespace name (a DNS label)`);
  return list;
}

/** `--prometheus-url`: http(s) only. */
export function parsePrometheusUrl(text: string | undefined): string | undefined {
  if (!text) return undefined;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`--prometheus-url: "${text}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`--prometheus-url: "${text}" is not http(s)`);
  return text;
}

export async function main(argv: string[]): Promise<number> {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        namespaces: { type: 'string' },
        namespace: { type: 'string' },
        'runner-cluster-role': { type: 'string', default: 'swarmbench-runner' },
        'prometheus-url': { type: 'string', default: process.env.SWARMBENCH_PROMETHEUS_URL ?? '' },
        'gpu-defaults': { type: 'string' },
        admission: { type: 'string', default: process.env.SWARMBENCH_ADMISSION ?? '' },
        'agent-ingress-from': { type: 'string', default: process.env.SWARMBENCH_AGENT_INGRESS_FROM ?? '' },
        'metrics-token-file': { type: 'string', default: process.env.SWARMBENCH_METRICS_TOKEN_FILE ?? '' },
        image: { type: 'string', default: process.env.SWARMBENCH_IMAGE ?? `ghcr.io/swarmbench/swarmbench:${VERSION}` },
        'gpu-image': { type: 'string', default: process.env.SWARMBENCH_GPU_IMAGE ?? `ghcr.io/swarmbench/swarmbench-gpu:${VERSION}` },
        port: { type: 'string', default: process.env.PORT ?? '8080' },
        host: { type: 'string' },
        concurrency: { type: 'string', default: '4' },
        'resync-seconds': { type: 'string', default: '300' },
        'leader-elect': { type: 'string', default: 'true' },
        'lease-namespace': { type: 'string', default: process.env.POD_NAMESPACE ?? 'default' },
        'lease-name': { type: 'string', default: 'swarmbench-operator' },
        'lease-seconds': { type: 'string', default: '15' },
        'stuck-after-seconds': { type: 'string', default: '90' },
        'ui-port': { type: 'string', default: '' },
        'ui-bind-address': { type: 'string', default: '127.0.0.1' },
        'ui-allowed-hosts': { type: 'string', default: DEFAULT_UI_ALLOWED_HOSTS.join(',') },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`swarmbench operator: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const int = (name: string, s: string, min: number) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  let port: number, concurrency: number, resyncMs: number, leaseMs: number, stuckAfterMs: number;
  let admission: AdmissionSettings;
  let ui: UiFlags | undefined;
  let metricsToken: string | undefined;
  let namespaces: string[], gpuDefaults: GpuScheduling, prometheusUrl: string | undefined, agentIngressFrom: IngressPeer[];
  try {
    namespaces = parseNamespaces([v.namespaces, v.namespace].filter(Boolean).join(','));
    gpuDefaults = parseGpuDefaults(v['gpu-defaults']);
    agentIngressFrom = parseIngressPeers(v['agent-ingress-from']);
    metricsToken = v['metrics-token-file'] ? readTokenFile(v['metrics-token-file'], '--metrics-token-file', METRICS_TOKEN_WHAT) : undefined;
    // The admission policy (policy.ts); the operator's own namespace and the API server's
    // addresses are refused to runs whatever the chart says.
    admission = parseAdmission(v.admission, { operatorNamespace: process.env.POD_NAMESPACE, apiServerHosts: [process.env.KUBERNETES_SERVICE_HOST ?? ''] });
    prometheusUrl = parsePrometheusUrl(v['prometheus-url']);
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v['runner-cluster-role']!)) throw new Error(`--runner-cluster-role: "${v['runner-cluster-role']}" is not a ClusterRole name`);
    port = int('port', v.port!, 0);
    concurrency = int('concurrency', v.concurrency!, 1);
    resyncMs = int('resync-seconds', v['resync-seconds']!, 1) * 1000;
    leaseMs = int('lease-seconds', v['lease-seconds']!, 2) * 1000;
    stuckAfterMs = int('stuck-after-seconds', v['stuck-after-seconds']!, 1) * 1000;
    ui = parseUiFlags(v['ui-port']!, v['ui-bind-address']!, v['ui-allowed-hosts']!);
  } catch (err) {
    process.stderr.write(`swarmbench operator: ${(err as Error).message}\n`);
    return 2;
  }
  const log = createLogger({ role: 'operator', pod: process.env.POD_NAME });
  const kc = loadKubeConfig();
  // One set of informers per watched namespace (or one cluster-wide set): a namespaced install's
  // RBAC allows no cluster-wide list.
  const scopes: { namespace?: string; log: typeof log }[] = namespaces.length ? namespaces.map((namespace) => ({ namespace, log })) : [{ log }];
  const queue = new WorkQueue({ name: 'benchmarkrun', maxDelayMs: 120_000 });
  const runInformers = scopes.map((scope) => benchmarkRunInformer(kc, { ...scope, resyncMs }));
  const tries = new RunnerTries();
  const informers: Informer<never>[] = [];
  const cacheScopes: Parameters<typeof scopedCaches>[0] = [];
  const cmInformers: Informer<V1ConfigMap>[] = [];
  for (const [i, scope] of scopes.entries()) {
    const runs = runInformers[i]!;
    const jobs = jobInformer(kc, { ...scope, labelSelector: 'app.kubernetes.io/managed-by=swarmbench' });
    const cms = configMapInformer(kc, { ...scope, labelSelector: OPERATOR_CONFIGMAP_SELECTOR, keepData: keepsConfigMapData });
    // The runner pods: what ended a try, seen before the pod is gone (tries.ts).
    const pods = podInformer(kc, { ...scope, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY},${COMPONENT_LABEL}=${COMPONENT.runner}` });
    informers.push(...([runs, jobs, cms, pods] as never[]));
    cmInformers.push(cms);
    cacheScopes.push({ namespace: scope.namespace, jobs, configMaps: cms });
    runs.enqueue(queue);
    jobs.enqueue(queue, (o) => ownerRunKey(o));
    cms.enqueue(queue, (o) => ownerRunKey(o));
    pods.on((pod, type) => {
      if (tries.observe(pod, type === 'delete')) {
        const key = ownerRunKey(pod);
        if (key) queue.add(key);
      }
    });
  }
  // BenchmarkSchedules (schedule.ts): an informer per scope and a queue of their own, worked in
  // the same leadership term; a run's events also wake the schedule that controls it.
  const schedules = scheduleWiring(kc, scopes, runInformers, { log, resyncMs });
  informers.push(...(schedules.informers as never[]));
  const token = process.env.SWARMBENCH_PROMETHEUS_TOKEN?.trim();
  // The reconcile reads Jobs and ConfigMaps through these caches first (operator/cluster.ts).
  const caches = scopedCaches(cacheScopes, CONFIGMAP_CACHED_COMPONENTS);
  // One reconciler per leadership term: its cluster's requests carry the term's signal.
  const reconcilerFor = (signal: AbortSignal): Reconciler => new Reconciler({
    cluster: new KubeRunCluster(kc, caches, { signal }),
    images: { image: v.image!, gpuImage: v['gpu-image']! },
    log,
    version: VERSION,
    runnerClusterRole: v['runner-cluster-role']!,
    gpuDefaults,
    stuckAfterMs,
    tries,
    agentIngressFrom,
    ...(metricsToken ? { metricsToken } : {}),
    admission: { ...admission, apiServerHosts: [...admission.apiServerHosts, ...apiServerHost(kc)] },
    ...(prometheusUrl ? { prometheus: { url: prometheusUrl, ...(token ? { token } : {}) } } : {}),
    notify,
  });
  const metrics = new OperatorMetrics();
  metrics.trackQueue(queue);
  metrics.trackQueue(schedules.queue);
  // Notifications (notify.ts, docs/notifications.md): one queue per process, its metrics on
  // /metrics; the webhook policy and notifySecrets come with --admission (security.notifications.*,
  // rbac.notifySecrets). A delivery that settles enqueues its run, whose reconcile records it.
  const notifySettings = notifySettingsOf({ ...admission, apiServerHosts: [...admission.apiServerHosts, ...apiServerHost(kc)] });
  const notify = { settings: notifySettings, notifier: new Notifier({ log, policy: notifySettings.policy, registry: metrics.registry, onSettled: (s) => queue.add(s.runKey) }) };

  const leaderElect = v['leader-elect'] !== 'false';
  const elector = leaderElect
    ? new LeaderElector({
        kc,
        namespace: v['lease-namespace']!,
        name: v['lease-name']!,
        leaseDurationMs: leaseMs,
        renewDeadlineMs: Math.round((leaseMs * 2) / 3),
        retryPeriodMs: Math.max(500, Math.round(leaseMs / 7.5)),
        log,
        onStartedLeading: (signal) => work(signal),
      })
    : undefined;
  if (elector) metrics.trackLeader(elector);

  const server = await startServer({
    metrics,
    port,
    ...(v.host ? { host: v.host } : {}),
    readyChecks: { informers: () => (!elector || elector.isLeader() ? syncedCheck(informers)() : true) },
    healthChecks: elector ? { leader: leaderHealthCheck(elector) } : {},
  });
  // The results UI (ui-server.ts), on its own port: every replica serves it, from its own run,
  // schedule and ConfigMap informers (started here, so a standby shows the runs too).
  const uiServer = ui
    ? await startOperatorUi(kc, ui, scopes.map((s, i) => ({ namespace: s.namespace, runs: runInformers[i]!, schedules: schedules.informers[i]!, configMaps: cmInformers[i]! })), log).catch((err: unknown) => {
        log.warn('the results UI could not start', { error: errorMessage(err) });
        process.stderr.write(`swarmbench operator: the results UI could not start on ${ui!.host}:${ui!.port}: ${errorMessage(err)}\n`);
        return 'failed' as const;
      })
    : undefined;
  if (uiServer === 'failed') {
    await server.close();
    return 2;
  }
  log.info('operator started', { version: VERSION, port: server.port, namespaces: namespaces.length ? namespaces.join(',') : '(all)', leaderElect, prometheus: prometheusUrl ?? '(none)', ui: uiServer ? uiServer.url : '(off)' });

  let stopping = false;
  async function work(signal: AbortSignal): Promise<void> {
    log.info('leading: starting informers and workers');
    const reconciler = reconcilerFor(signal);
    for (const i of informers) i.start();
    await waitForSync(informers, 60_000).catch((e: unknown) => log.warn('informers not synced yet', { error: String(e) }));
    const phaseTimer = setInterval(() => metrics.setRunPhases(runInformers.flatMap((r) => r.list()).map((r) => (r as { status?: { phase?: string } }).status?.phase)), 5000);
    const workers = queue.run(
      async (key) => {
        const r = await reconciler.reconcile(key);
        return r ?? undefined;
      },
      {
        signal,
        concurrency,
        onDone: (key, outcome, seconds, err) => {
          metrics.onDone('benchmarkrun')(key, outcome, seconds, err);
          if (err) log.warn('reconcile failed', { key, error: errorMessage(err) });
        },
      },
    );
    const scheduleWorkers = schedules.run(signal, {
      concurrency,
      onDone: (key, outcome, seconds, err) => {
        metrics.onDone('benchmarkschedule')(key, outcome, seconds, err);
        if (err) log.warn('schedule reconcile failed', { key, error: errorMessage(err) });
      },
    });
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(phaseTimer);
    for (const i of informers) void i.stop();
    // The queue shut down with the signal; a worker still in a call that is not an API request
    // (a Prometheus query) gets STOP_GRACE_MS, then the process goes on without it.
    let grace: ReturnType<typeof setTimeout> | undefined;
    const late = await Promise.race([Promise.all([workers, scheduleWorkers]).then(() => false), new Promise<boolean>((r) => (grace = setTimeout(() => r(true), STOP_GRACE_MS)))]);
    clearTimeout(grace);
    if (late) log.warn('workers still busy after the leadership term ended', { graceMs: STOP_GRACE_MS });
    if (!stopping) {
      log.warn('leadership lost: exiting so a fresh process stands by');
      process.exit(1);
    }
  }

  const done = new Promise<void>((resolve) => {
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      log.info('stopping');
      if (elector) elector.stop();
      else {
        for (const i of informers) i.stop();
        await queue.shutdown({ drain: false });
      }
      await notify.notifier.close();
      await uiServer?.close();
      await server.close();
      resolve();
    };
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
  });

  if (elector) {
    await Promise.race([elector.run(), done]);
  } else {
    const ac = new AbortController();
    void work(ac.signal);
    await done;
    ac.abort();
  }
  await done;
  return 0;
}
