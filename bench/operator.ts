/**
 * The operator section of `npm run bench` (bench/run.ts), measured on the project's test cluster
 * (docs/cluster.md: a real kube-apiserver, controller manager and scheduler, kubelets with containerd).
 * Skipped, with no figure, when the cluster is not up.
 *
 * 1. `operator.apply-to-job`: a BenchmarkRun created → its first runner Job exists, against the
 *    cluster's own floor: a Job created → its first Pod exists (the Job controller). Goal: the
 *    median ratio <= 2.
 * 2. `operator.queue`: 100 runs created at once → every one has its first Job ("started": the first
 *    step's Job is the first thing of a run that does work; phase Running is written just before
 *    it), as runs/s, against 100 Jobs created at once → every one has its first Pod.
 * 3. `operator.rss-<N>` and `operator.idle-cpu-<N>` (bench/operator-memory.ts): the resident memory
 *    and idle CPU of a fresh operator with N finished runs and their exports, against the same
 *    operator with no run.
 *
 * The runs' Jobs never get pods here: the section's operator namespace has a ResourceQuota of 0
 * pods, so no runner starts (a hundred runners would swamp the machine and measure the runner,
 * not the operator); the reference Jobs' pods select a node label no node has, so they stay
 * Pending. Everything goes into namespaces of its own (`bench-*-<time>`), deleted at the end.
 */
import type { V1Job } from '@kubernetes/client-node';
import { clusterNotUp } from '../test/cluster/lib/itest.ts';
import { figure, paired, type Figure, type RunOptions, type Section } from './lib.ts';
import { BR, BenchCluster, FirstSeen, poll, TRIAL_LABEL, type Operator } from './operator-kube.ts';
import { memoryFigures } from './operator-memory.ts';

const SKIPPED = 'the test cluster is not up (npm run cluster:up)';
/** The smallest run that makes a Job: one category, one step, no GPU placement. */
const SMALL_SPEC = { mode: 'quick', categories: ['integration'] };
const JOB_PATH = (ns: string): string => `/apis/batch/v1/namespaces/${ns}/jobs`;
const POD_PATH = (ns: string): string => `/api/v1/namespaces/${ns}/pods`;
/** The runner Jobs of the operator (src/kube/names.ts labels). */
const MANAGED = 'app.kubernetes.io/managed-by=swarmbench';
const RUNNER_JOBS = `${MANAGED},swarmbench.io/component=runner`;
/** The reference Jobs' pods carry their Job's name in this label. */
const REF_JOB_LABEL = 'bench.swarmbench.io/job';

const METHOD =
  'On the test cluster (npm run cluster:up; real kube-apiserver, controller manager and scheduler v1.34, kubelets with containerd), ' +
  'with `swarmbench operator` of this checkout as a local process (default flags: concurrency 4) watching a namespace of its own. ' +
  'Objects are created through the API (what `kubectl apply` sends for a new object, without kubectl\'s own start-up); each time is ' +
  'from just before the create request to the ADDED event of the awaited object on a plain watch (client-node `Watch`, no informer, ' +
  'no polling). Subject and reference alternate trial by trial (bench/lib.ts `paired`); one unmeasured warm-up of each side first. ' +
  'The runs\' Jobs get no pods (a ResourceQuota of 0 pods in the operator\'s namespace) and the reference pods stay Pending ' +
  '(a node selector no node has), so nothing runs. Memory: /proc/<pid>/status VmRSS of a fresh operator once ready and caught up, ' +
  'CPU: /proc/<pid>/stat utime+stime over an idle window after that.';

export async function run(opts: RunOptions): Promise<Section> {
  const t0 = performance.now();
  const base = { id: 'operator', title: 'Operator on the test cluster', method: METHOD };
  const notUp = await clusterNotUp();
  if (notUp) {
    opts.log(`skipped: ${notUp}`);
    return { ...base, figures: [], skipped: SKIPPED, wallSeconds: (performance.now() - t0) / 1000 };
  }
  const bc = new BenchCluster(opts.log);
  const figures: Figure[] = [];
  try {
    const opNs = await bc.namespace('op');
    const refNs = await bc.namespace('ref');
    await bc.c.core.createNamespacedResourceQuota({ namespace: opNs, body: { metadata: { name: 'no-pods' }, spec: { hard: { pods: '0' } } } });
    const op = await bc.operator(opNs, 'bench-operator');
    opts.log(`operator ready in ${((op.readyAt - op.spawnedAt) / 1000).toFixed(1)} s (pid ${op.pid}), namespaces ${opNs}, ${refNs}`);
    const s = new Sides(bc, opNs, refNs, op);
    figures.push(await applyToJob(opts, s));
    figures.push(await queue(opts, s));
    await bc.stop(op);
    figures.push(...(await memoryFigures(opts, bc)));
  } finally {
    await bc.close();
  }
  return { ...base, figures, wallSeconds: (performance.now() - t0) / 1000 };
}

/** The two sides of figures 1 and 2: runs for the operator, Jobs for the Job controller. */
class Sides {
  readonly bc: BenchCluster;
  readonly opNs: string;
  readonly refNs: string;
  readonly op: Operator;

  constructor(bc: BenchCluster, opNs: string, refNs: string, op: Operator) {
    this.bc = bc;
    this.opNs = opNs;
    this.refNs = refNs;
    this.op = op;
  }

  /** Creates `names` as BenchmarkRuns all at once; ms from the first create to the last run's first Job. */
  async runs(trial: string, names: string[], timeoutMs: number): Promise<number> {
    const { custom } = this.bc.c;
    const w = await FirstSeen.open(this.bc.kc, JOB_PATH(this.opNs), RUNNER_JOBS, (o) => o.metadata?.labels?.['swarmbench.io/run']);
    try {
      const t0 = performance.now();
      await Promise.all(
        names.map((name) =>
          custom.createNamespacedCustomObject({
            ...BR, namespace: this.opNs,
            body: { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name, labels: { [TRIAL_LABEL]: trial } }, spec: SMALL_SPEC },
          }),
        ),
      );
      const t1 = await w.all(names, timeoutMs).catch((e: unknown) => {
        throw new Error(`runs of trial ${trial} started: ${(e as Error).message}${this.op.exited() ? `; ${this.op.exited()!.message}` : ''}`);
      });
      return t1 - t0;
    } finally {
      w.close();
      await this.cleanRuns(trial);
    }
  }

  /** Creates `names` as Jobs all at once; ms from the first create to the last Job's first Pod. */
  async jobs(trial: string, names: string[], timeoutMs: number): Promise<number> {
    const { batch } = this.bc.c;
    const w = await FirstSeen.open(this.bc.kc, POD_PATH(this.refNs), `${TRIAL_LABEL}=${trial}`, (o) => o.metadata?.labels?.[REF_JOB_LABEL]);
    try {
      const t0 = performance.now();
      await Promise.all(names.map((name) => batch.createNamespacedJob({ namespace: this.refNs, body: refJob(name, trial) })));
      const t1 = await w.all(names, timeoutMs).catch((e: unknown) => {
        throw new Error(`first pods of trial ${trial}: ${(e as Error).message}`);
      });
      return t1 - t0;
    } finally {
      w.close();
      await this.cleanJobs(trial);
    }
  }

  /**
   * Deletes the trial's runs and waits until they and their Jobs, ConfigMaps and Secrets are gone
   * (the garbage collector), so no trial pays for another's.
   */
  private async cleanRuns(trial: string): Promise<void> {
    const { custom, batch, core } = this.bc.c;
    const sel = `${TRIAL_LABEL}=${trial}`;
    await custom.deleteCollectionNamespacedCustomObject({ ...BR, namespace: this.opNs, labelSelector: sel, propagationPolicy: 'Background' });
    await poll(`runs of trial ${trial} and their objects gone`, async () => {
      const runs = (await custom.listNamespacedCustomObject({ ...BR, namespace: this.opNs, labelSelector: sel })) as { items: unknown[] };
      const ns = { namespace: this.opNs, labelSelector: MANAGED };
      const left = runs.items.length + (await batch.listNamespacedJob(ns)).items.length + (await core.listNamespacedConfigMap(ns)).items.length + (await core.listNamespacedSecret(ns)).items.length;
      return left === 0 ? true : undefined;
    }, 600_000, 250);
  }

  private async cleanJobs(trial: string): Promise<void> {
    const { core, batch } = this.bc.c;
    const sel = `${TRIAL_LABEL}=${trial}`;
    await batch.deleteCollectionNamespacedJob({ namespace: this.refNs, labelSelector: sel, propagationPolicy: 'Background' });
    await poll(`Jobs of trial ${trial} and their pods gone`, async () => {
      const jobs = await batch.listNamespacedJob({ namespace: this.refNs, labelSelector: sel });
      const pods = await core.listNamespacedPod({ namespace: this.refNs, labelSelector: sel });
      return jobs.items.length === 0 && pods.items.length === 0 ? true : undefined;
    }, 600_000, 250);
  }
}

/** The reference Job: one pod that stays Pending (no node has the label it selects). */
function refJob(name: string, trial: string): V1Job {
  const labels = { [TRIAL_LABEL]: trial };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { labels: { ...labels, [REF_JOB_LABEL]: name } },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          nodeSelector: { 'bench.swarmbench.io/no-such-node': 'true' },
          containers: [{ name: 'c', image: 'swarmbench:dev', args: ['probe', '--exit', '0'] }],
        },
      },
    },
  };
}

/** Figure 1: one run → its first Job, against one Job → its first Pod. */
async function applyToJob(opts: RunOptions, s: Sides): Promise<Figure> {
  const trials = opts.trials ?? (opts.tiny ? 2 : 10);
  const one = (side: 'r' | 'j', i: number | 'w'): string => `a${side}${i}`;
  opts.log('apply → first Job: warm-up');
  await s.runs(one('r', 'w'), [one('r', 'w')], 120_000);
  await s.jobs(one('j', 'w'), [one('j', 'w')], 120_000);
  const p = await paired(
    trials,
    (i) => s.runs(one('r', i), [one('r', i)], 120_000),
    (i) => s.jobs(one('j', i), [one('j', i)], 120_000),
  );
  opts.log(`apply → first Job: runs ${p.subject.map((v) => v.toFixed(0)).join(' ')} ms; Jobs ${p.reference.map((v) => v.toFixed(0)).join(' ')} ms`);
  return figure({
    id: 'operator.apply-to-job',
    title: 'apply → first Job',
    unit: 'ms',
    subject: { label: 'BenchmarkRun → its first Job (operator)', samples: p.subject },
    reference: { label: 'Job → its first Pod (Job controller)', samples: p.reference },
    ratios: p.ratios,
    goal: { text: 'operator <= 2 × the Job controller', of: 'ratio', op: '<=', value: 2 },
    notes: [
      'The operator\'s path: the run\'s watch event, the work queue, two reconciles (the attempt: token Secret, params ConfigMap, status, event; then the step: NetworkPolicy, ServiceAccount, Role, two RoleBindings, two ConfigMaps, the Job), each API call one after the other.',
    ],
  });
}

/** Figure 2: `count` runs at once → all started, against `count` Jobs at once → all with a Pod. */
async function queue(opts: RunOptions, s: Sides): Promise<Figure> {
  const trials = opts.trials ?? (opts.tiny ? 1 : 3);
  const count = opts.tiny ? 5 : 100;
  const names = (side: string, i: number): string[] => Array.from({ length: count }, (_, k) => `q${side}${i}-${k}`);
  const timeout = 60_000 + count * 5_000;
  const p = await paired(
    trials,
    async (i) => count / ((await s.runs(`qr${i}`, names('r', i), timeout)) / 1000),
    async (i) => count / ((await s.jobs(`qj${i}`, names('j', i), timeout)) / 1000),
  );
  opts.log(`${count} at once: runs ${p.subject.map((v) => v.toFixed(1)).join(' ')} /s; Jobs ${p.reference.map((v) => v.toFixed(1)).join(' ')} /s`);
  return figure({
    id: 'operator.queue',
    title: `${count} runs at once → all started`,
    unit: '/s',
    subject: { label: 'runs started/s (first Job, operator)', samples: p.subject },
    reference: { label: 'Jobs with their first Pod/s (Job controller)', samples: p.reference },
    ratios: p.ratios,
    notes: [
      `${count} objects created concurrently in one namespace; the rate is ${count} over the time from the first create to the last one's first Job (Pod).`,
      'Started = the run\'s first Job exists (phase Running is written just before it). Higher is better: the ratio is the share of the Job controller\'s rate the operator reaches.',
      'The operator works its queue with --concurrency 4 (its default and the chart\'s); no admission rule limits the runs of a namespace.',
      'The reference is bounded by the controller manager\'s client rate limit (its defaults: --kube-api-qps 20, --kube-api-burst 30): a pod create and a Job status write per Job make about 10 Jobs/s once the burst is spent, so a small batch (within the burst) goes several times faster.',
    ],
  });
}
