/**
 * `swarmbench operator`: the Kubernetes executor of BenchmarkRuns.
 *
 *   informers (BenchmarkRuns; Jobs and ConfigMaps labelled managed-by=swarmbench, mapped to their
 *   owning run) -> work queue (merged keys, one in flight per key, backoff) -> Reconciler.
 *
 * With leader election (default on) only the Lease holder runs informers and workers; a replica
 * that loses the Lease exits (its Deployment restarts it as a standby). /healthz, /readyz and
 * /metrics are served by every replica.
 *
 * Flags: --namespace NS (watch one namespace; default all), --image IMG, --gpu-image IMG,
 * --port 8080, --concurrency 4, --resync-seconds 300, --leader-elect true|false,
 * --lease-namespace NS (default $POD_NAMESPACE or "default"), --lease-name swarmbench-operator,
 * --lease-seconds 15. Environment: KUBECONFIG or the in-cluster service account.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { VERSION } from '../cli/version.ts';
import { benchmarkRunInformer, configMapInformer, jobInformer, waitForSync, type Informer } from './informer.ts';
import { loadKubeConfig, ownerRunKey } from './kube.ts';
import { LeaderElector } from './leader.ts';
import { WorkQueue } from './queue.ts';
import { Reconciler } from './reconcile.ts';
import { leaderHealthCheck, OperatorMetrics, startServer, syncedCheck } from './server.ts';

const USAGE = `usage: swarmbench operator [--namespace NS] [--image IMG] [--gpu-image IMG] [--port 8080]
       [--concurrency 4] [--resync-seconds 300] [--leader-elect true|false]
       [--lease-namespace NS] [--lease-name NAME] [--lease-seconds 15]
`;

export async function main(argv: string[]): Promise<number> {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        namespace: { type: 'string' },
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
  let port: number, concurrency: number, resyncMs: number, leaseMs: number;
  try {
    port = int('port', v.port!, 0);
    concurrency = int('concurrency', v.concurrency!, 1);
    resyncMs = int('resync-seconds', v['resync-seconds']!, 1) * 1000;
    leaseMs = int('lease-seconds', v['lease-seconds']!, 2) * 1000;
  } catch (err) {
    process.stderr.write(`swarmbench operator: ${(err as Error).message}\n`);
    return 2;
  }
  const log = createLogger({ role: 'operator', pod: process.env.POD_NAME });
  const kc = loadKubeConfig();
  const scope = { ...(v.namespace ? { namespace: v.namespace } : {}), log };
  const queue = new WorkQueue({ name: 'benchmarkrun', maxDelayMs: 120_000 });
  const runs = benchmarkRunInformer(kc, { ...scope, resyncMs });
  const jobs = jobInformer(kc, { ...scope, labelSelector: 'app.kubernetes.io/managed-by=swarmbench' });
  const cms = configMapInformer(kc, { ...scope, labelSelector: 'app.kubernetes.io/managed-by=swarmbench' });
  const informers: Informer<never>[] = [runs, jobs, cms] as never[];
  runs.enqueue(queue);
  jobs.enqueue(queue, (o) => ownerRunKey(o));
  cms.enqueue(queue, (o) => ownerRunKey(o));
  const reconciler = new Reconciler({ kc, images: { image: v.image!, gpuImage: v['gpu-image']! }, log, version: VERSION });
  const metrics = new OperatorMetrics();
  metrics.trackQueue(queue);

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
  log.info('operator started', { version: VERSION, port: server.port, namespace: v.namespace ?? '(all)', leaderElect });

  let stopping = false;
  async function work(signal: AbortSignal): Promise<void> {
    log.info('leading: starting informers and workers');
    for (const i of informers) i.start();
    await waitForSync(informers, 60_000).catch((e: unknown) => log.warn('informers not synced yet', { error: String(e) }));
    const phaseTimer = setInterval(() => metrics.setRunPhases(runs.list().map((r) => (r as { status?: { phase?: string } }).status?.phase)), 5000);
    const workers = queue.run(
      async (key) => {
        const r = await reconciler.reconcile(key);
        return r ?? undefined;
      },
      {
        concurrency,
        onDone: (key, outcome, seconds, err) => {
          metrics.onDone('benchmarkrun')(key, outcome, seconds, err);
          if (err) log.warn('reconcile failed', { key, error: err instanceof Error ? err.message : String(err) });
        },
      },
    );
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(phaseTimer);
    for (const i of informers) i.stop();
    await queue.shutdown({ drain: false });
    await workers;
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
