/**
 * Figure 3 of the operator section (bench/operator.ts): the resident memory and the idle CPU of a
 * fresh operator process in a namespace holding N finished BenchmarkRuns with their exports,
 * against the same operator on a namespace with none (the floor).
 *
 * The history is made as the operator leaves it: each run is created with a quick run's spec, its
 * status written through the status subresource as src/operator/finish.ts writes it for the result
 * of a real quick run (test/fixtures/results-quick.json: 23 of 27 passed, so phase Failed), and its
 * export ConfigMap made by the operator's own builder (src/operator/desired.ts `exportConfigMap`,
 * the files of src/report/exports.ts `renderExports`, about 110 KB), owned by the run. The
 * runs finished two days ago and more, past every cleanup delay, so they are idle. The namespace
 * grows (10 → 100 → 1000 runs) and each size serves all its trials.
 *
 * A trial: start the operator, wait for /readyz (informers synced), create a suspended probe run
 * and wait until it is Pending and the queue is empty (its /metrics: the probe was queued behind
 * every run the operator listed); then the CPU it uses over an idle window, its VmRSS at the end
 * of that window, and how many runs it knows (its `swarmbench_runs` gauge: a figure whose
 * operator knew fewer than the namespace holds says so in its notes). The probe is deleted after
 * each trial (so both sides hold it, and only it, beyond their N).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultDocument } from '../src/api/schema.ts';
import { exportName, type RunRef } from '../src/kube/names.ts';
import { conditionsFor, exportConfigMap } from '../src/operator/desired.ts';
import { resultStatus } from '../src/operator/finish.ts';
import { REPO_ROOT } from '../src/paths.ts';
import { resolveParams } from '../src/plan/params.ts';
import { buildPlan } from '../src/plan/plan.ts';
import { parseResultDocument } from '../src/report/document.ts';
import { renderExports } from '../src/report/exports.ts';
import { patchRunStatus } from '../src/kube/client.ts';
import { sleep } from '../test/cluster/lib/itest.ts';
import { figure, paired, type Figure, type RunOptions } from './lib.ts';
import { BR, cpuSeconds, memoryOf, poll, queueState, type BenchCluster } from './operator-kube.ts';

const MB = 1e6;
const DAY_MS = 86_400_000;

interface Measured {
  rssMB: number;
  hwmMB: number;
  cpuPct: number;
  /** Seconds from spawn to /readyz, and to caught up (probe Pending, queue empty). */
  readyS: number;
  caughtUpS: number;
  /** CPU seconds used from spawn until caught up. */
  startCpuS: number;
  /** The runs the operator knows (its runs gauge) and the reconciles it did, after the window. */
  known: number;
  reconciles: number;
}

/** The history of finished runs: what one run's create, status and export look like. */
class History {
  private readonly doc: ResultDocument;
  readonly spec: Record<string, unknown>;
  private readonly steps: string[];
  exportBytes = 0;
  private readonly bc: BenchCluster;
  private readonly ns: string;

  constructor(bc: BenchCluster, ns: string) {
    this.bc = bc;
    this.ns = ns;
    this.doc = parseResultDocument(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'results-quick.json'), 'utf8'), 'results-quick.json');
    this.spec = { mode: this.doc.run.mode, categories: this.doc.run.categories };
    this.steps = buildPlan(resolveParams(this.spec)).map((x) => x.name);
  }

  /** Runs `done-<from>` … `done-<to - 1>`, 8 at a time. */
  async grow(from: number, to: number): Promise<void> {
    let next = from;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < to; i = next++) await this.one(i);
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }

  private async one(i: number): Promise<void> {
    const { custom, core } = this.bc.c;
    const name = `done-${i}`;
    const made = (await custom.createNamespacedCustomObject({
      ...BR, namespace: this.ns,
      body: { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name }, spec: this.spec },
    })) as { metadata: { uid: string; generation?: number } };
    const ref: RunRef = { namespace: this.ns, name, uid: made.metadata.uid };
    // Finished two days ago and i minutes more: past the cleanup delay of a Failed attempt (a day).
    const finished = Date.now() - 2 * DAY_MS - i * 60_000;
    const started = finished - (Date.parse(this.doc.run.finishedAt) - Date.parse(this.doc.run.startedAt));
    const doc: ResultDocument = { ...this.doc, run: { ...this.doc.run, name, attempt: 1, startedAt: new Date(started).toISOString(), finishedAt: new Date(finished).toISOString() } };
    const cm = exportName(name);
    const files = renderExports(doc);
    this.exportBytes = Object.values(files).reduce((a, f) => a + Buffer.byteLength(f), 0);
    await patchRunStatus(custom, this.ns, name, finishedStatus(doc, made.metadata.generation ?? 1, cm, this.steps));
    await core.createNamespacedConfigMap({ namespace: this.ns, body: exportConfigMap(ref, cm, 1, files) });
  }
}

/**
 * The status of a finished attempt 1 of a run whose plan has these steps, as src/operator/attempt.ts
 * starts it and src/operator/finish.ts ends it with the result `doc` exported to ConfigMap `cm`.
 */
export function finishedStatus(doc: ResultDocument, generation: number, cm: string, plan: string[]): Record<string, unknown> {
  const s = doc.summary;
  const phase = s.verdict === 'Passed' ? 'Succeeded' : 'Failed';
  const failed = doc.tests.filter((t) => t.result === 'Failed').map((t) => t.id);
  const message = `${s.passed}/${s.total} passed, ${s.skipped} skipped, success rate ${s.successRate ?? 'n/a'}%` + (failed.length ? `; failed: ${failed.join(', ')}` : '');
  const steps = plan.length;
  const startMsg = `attempt 1: ${steps} steps (${plan.join(', ')})`;
  const running = conditionsFor([], generation, 'Running', 'Running', startMsg, doc.run.startedAt);
  return {
    phase,
    attempt: 1,
    observedGeneration: generation,
    startedAt: doc.run.startedAt,
    finishedAt: doc.run.finishedAt,
    progress: { completedSteps: steps, totalSteps: steps, currentStep: '' },
    ...resultStatus(doc),
    export: { configMapName: cm },
    history: [],
    conditions: conditionsFor(running, generation, phase, phase === 'Succeeded' ? 'TargetsMet' : 'TargetsMissed', message, doc.run.finishedAt),
  };
}

/** One operator start on `ns` holding `n` finished runs: see the file's comment. */
async function measure(bc: BenchCluster, ns: string, n: number, id: string, idleMs: number): Promise<Measured> {
  const { custom } = bc.c;
  const op = await bc.operator(ns, id);
  const probe = `probe-${id}`;
  try {
    await custom.createNamespacedCustomObject({
      ...BR, namespace: ns,
      body: { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: probe }, spec: { mode: 'quick', suspend: true } },
    });
    // Caught up: the probe, queued behind every run the operator listed, is Pending and nothing waits.
    await poll(`${id}: the probe run Pending and the queue empty`, async () => {
      const r = (await custom.getNamespacedCustomObject({ ...BR, namespace: ns, name: probe })) as { status?: { phase?: string } };
      if (r.status?.phase !== 'Pending') return undefined;
      return (await queueState(op.port)).depth === 0 ? true : undefined;
    }, 120_000 + n * 500, 100, op.exited);
    const caughtUp = performance.now();
    const cpu0 = cpuSeconds(op.pid);
    await sleep(idleMs); // the idle window being measured
    const cpu1 = cpuSeconds(op.pid);
    const wall = (performance.now() - caughtUp) / 1000;
    const mem = memoryOf(op.pid);
    const dead = op.exited();
    if (dead) throw dead;
    // The window is longer than the operator's 5 s phase gauge period: its runs gauge is fresh.
    const q = await queueState(op.port);
    return {
      rssMB: mem.rss / MB,
      hwmMB: mem.hwm / MB,
      cpuPct: ((cpu1 - cpu0) / wall) * 100,
      readyS: (op.readyAt - op.spawnedAt) / 1000,
      caughtUpS: (caughtUp - op.spawnedAt) / 1000,
      startCpuS: cpu0,
      known: q.known,
      reconciles: q.reconciles,
    };
  } finally {
    await bc.stop(op);
    await custom.deleteNamespacedCustomObject({ ...BR, namespace: ns, name: probe }).catch(() => undefined);
    await poll(`${id}: the probe run gone`, async () => {
      const l = (await custom.listNamespacedCustomObject({ ...BR, namespace: ns, fieldSelector: `metadata.name=${probe}` })) as { items: unknown[] };
      return l.items.length === 0 ? true : undefined;
    }, 60_000, 100);
  }
}

const med = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const f1 = (x: number): string => x.toFixed(1);

export async function memoryFigures(opts: RunOptions, bc: BenchCluster): Promise<Figure[]> {
  const sizes = opts.tiny ? [2, 5] : [10, 100, 1000];
  const trials = opts.trials ?? (opts.tiny ? 1 : 3);
  // Longer than 5 s, the period of the operator's runs gauge (read at its end).
  const idleMs = opts.tiny ? 6_000 : 10_000;
  const goalN = 1000;
  const ns = await bc.namespace('mem');
  const floorNs = await bc.namespace('floor');
  const history = new History(bc, ns);
  const figures: Figure[] = [];
  let have = 0;
  for (const n of sizes) {
    const t = performance.now();
    await history.grow(have, n);
    have = n;
    opts.log(`memory: ${n} finished runs with exports of ${(history.exportBytes / 1024).toFixed(0)} KiB in the namespace (${f1((performance.now() - t) / 1000)} s to add)`);
    const subj: Measured[] = [];
    const floor: Measured[] = [];
    const p = await paired(
      trials,
      async (i) => (subj[i] = await measure(bc, ns, n, `n${n}-t${i}`, idleMs)).rssMB,
      async (i) => (floor[i] = await measure(bc, floorNs, 0, `floor${n}-t${i}`, idleMs)).rssMB,
    );
    const known = Math.min(...subj.map((m) => m.known));
    const short = known < n + 1 ? [`INCOMPLETE: the operator knew only ${known} of the ${n + 1} runs in its namespace (its runs gauge; reconciles ${subj.map((m) => m.reconciles).join(', ')}): it never listed the others, so this memory is that of a smaller history.`] : [];
    if (short.length) opts.log(`memory: N=${n}: ${short[0]}`);
    opts.log(`memory: N=${n}: RSS ${p.subject.map(f1).join(' ')} MB, floor ${p.reference.map(f1).join(' ')} MB; idle CPU ${subj.map((m) => m.cpuPct.toFixed(2)).join(' ')} %`);
    figures.push(
      figure({
        id: `operator.rss-${n}`,
        title: `operator RSS, ${n} finished runs`,
        unit: 'MB',
        subject: { label: `${n} finished runs + exports`, samples: p.subject },
        reference: { label: 'no run (floor)', samples: p.reference },
        ratios: p.ratios,
        ...(n === goalN ? { goal: { text: `RSS <= 150 MB with ${goalN} finished runs`, of: 'subject' as const, op: '<=' as const, value: 150 } } : {}),
        notes: [
          ...short,
          `MB = 10^6 bytes; VmRSS once ready and caught up, after the ${idleMs / 1000} s idle window. Peak (VmHWM) median ${f1(med(subj.map((m) => m.hwmMB)))} MB (floor ${f1(med(floor.map((m) => m.hwmMB)))} MB).`,
          `Start: /readyz after ${f1(med(subj.map((m) => m.readyS)))} s, caught up after ${f1(med(subj.map((m) => m.caughtUpS)))} s using ${f1(med(subj.map((m) => m.startCpuS)))} CPU s (floor: ${f1(med(floor.map((m) => m.readyS)))} s, ${f1(med(floor.map((m) => m.caughtUpS)))} s, ${f1(med(floor.map((m) => m.startCpuS)))} CPU s); medians.`,
          `Each run: a quick run's spec and finished status, and an export ConfigMap of ${(history.exportBytes / 1024).toFixed(0)} KiB (a real quick run's results.json, summary.csv, junit.xml, report.md, report.txt).`,
        ],
      }),
    );
    const refCpu = floor.map((m) => m.cpuPct);
    figures.push(
      figure({
        id: `operator.idle-cpu-${n}`,
        title: `operator idle CPU, ${n} finished runs`,
        unit: '% of a core',
        subject: { label: `${n} finished runs + exports`, samples: subj.map((m) => m.cpuPct) },
        reference: { label: 'no run (floor)', samples: refCpu },
        // A floor of 0 (no tick in the window) has no ratio.
        ratios: refCpu.every((v) => v > 0) ? subj.map((m, i) => m.cpuPct / refCpu[i]!) : [],
        notes: [`utime+stime over ${idleMs / 1000} s after catching up, in clock ticks (10 ms each at USER_HZ 100).`],
      }),
    );
  }
  return figures;
}
