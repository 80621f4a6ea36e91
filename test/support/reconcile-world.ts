/**
 * A BenchmarkRun in the in-memory cluster of fake-cluster.ts with a reconciler over it, and what a
 * reconcile did: shared by the reconcile's unit tests (test/unit/operator-reconcile.test.ts,
 * test/unit/operator-forensics.test.ts). Step results are StepResult documents built from the
 * plan, one measurement per test of the category, so the verdict is computed by the real assembly.
 */
import { expect } from 'vitest';
import { API_VERSION_FULL, type BenchmarkRunSpec, type BenchmarkRunStatus, type Measurement, type StepResult } from '../../src/api/schema.ts';
import { agentTokenSecretPrefix, jobName, stepResultName, stepSeedsName } from '../../src/kube/names.ts';
import type { Logger } from '../../src/log.ts';
import type { RunObject } from '../../src/operator/cluster.ts';
import { Reconciler, type ReconcileResult, type ReconcilerOptions } from '../../src/operator/reconcile.ts';
import { CATALOGUE, targetOf } from '../../src/plan/catalogue.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan, type Step } from '../../src/plan/plan.ts';
import { FakeCluster, type Call } from './fake-cluster.ts';

export const NS = 'bench';
export const NAME = 'nightly';
export const KEY = `${NS}/${NAME}`;
export const POLL = 1000;
export const TWO: BenchmarkRunSpec = { mode: 'quick', categories: ['distributed', 'integration'] };
export const silent: Logger = { info() {}, warn() {}, debug() {} };

/** One passing measurement for a test of the catalogue (a failing one with `fail`). */
export function measurement(id: string, spec: BenchmarkRunSpec, pass = true): Measurement {
  const def = CATALOGUE.find((d) => d.id === id)!;
  const target = targetOf(def, resolveParams(spec).targets);
  const good = def.op === '<' ? target / 2 : def.op === '<=' ? target : target * 2;
  const bad = def.op === '<' || def.op === '<=' ? target * 2 + 1 : target / 4;
  return { id, value: pass ? good : bad, samples: 5 };
}

/** The StepResult a runner writes for `step`: one measurement per test of its category. */
export function stepResult(spec: BenchmarkRunSpec, step: Step, attempt: number, opts: { failing?: string[] } = {}): StepResult {
  return {
    apiVersion: API_VERSION_FULL,
    kind: 'StepResult',
    step: step.name,
    category: step.category,
    attempt,
    startedAt: '2026-03-01T10:00:00.000Z',
    finishedAt: '2026-03-01T10:01:00.000Z',
    node: 'node-a',
    measurements: step.tests.map((id) => measurement(id, spec, !opts.failing?.includes(id))),
  };
}

/** The cluster, a run in it, and a reconciler with a clock that moves a second per reconcile. */
export class World {
  readonly fake = new FakeCluster();
  clock = Date.parse('2026-03-01T10:00:00Z');
  readonly r: Reconciler;
  spec: BenchmarkRunSpec;

  constructor(spec: BenchmarkRunSpec, opts: { nodes?: Record<string, string>[]; reconciler?: Partial<ReconcilerOptions> } = {}) {
    this.spec = spec;
    this.fake.put('BenchmarkRun', { apiVersion: API_VERSION_FULL, kind: 'BenchmarkRun', metadata: { name: NAME, namespace: NS }, spec });
    for (const [i, labels] of (opts.nodes ?? []).entries()) this.fake.put('Node', { metadata: { name: `node-${i}`, namespace: '', labels } });
    this.r = new Reconciler({ cluster: this.fake, images: { image: 'reg/sb:1', gpuImage: 'reg/sb-gpu:1' }, log: silent, version: '9.9.9', now: () => new Date(this.clock), pollMs: POLL, ...opts.reconciler });
  }

  get run(): RunObject {
    return this.fake.get('BenchmarkRun', NS, NAME)!;
  }
  get status(): BenchmarkRunStatus {
    return this.run.status ?? {};
  }
  get attempt(): number {
    return this.status.attempt ?? 0;
  }
  plan(spec = this.spec): Step[] {
    return buildPlan(resolveParams(spec));
  }
  step(name: string): Step {
    return this.plan().find((s) => s.name === name)!;
  }
  condition(type: string) {
    return this.status.conditions?.find((c) => c.type === type);
  }

  reconcile(): Promise<ReconcileResult> {
    this.clock += 1000;
    return this.r.reconcile(KEY);
  }

  /** Reconciles until the attempt waits on a running Job or has finished. */
  async settle(): Promise<void> {
    for (let i = 0; i < 20; i++) {
      const res = await this.reconcile();
      if (!res || res.requeueAfterMs !== 0 || ['Succeeded', 'Failed', 'Cancelled'].includes(this.status.phase ?? '')) return;
    }
    throw new Error('did not settle');
  }

  /** The runner writes its result into the ConfigMap the operator made. */
  writeResult(step: string, doc: unknown, attempt = this.attempt): void {
    this.fake.update('ConfigMap', NS, stepResultName(NAME, attempt, step), (o) => {
      o.data = { 'result.json': typeof doc === 'string' ? doc : JSON.stringify(doc) };
    });
  }

  /** The Job controller marks the step's Job Complete or Failed. */
  endJob(step: string, type: 'Complete' | 'Failed', attempt = this.attempt, reason = 'BackoffLimitExceeded', message = 'Job has reached the specified backoff limit'): void {
    this.fake.update('Job', NS, jobName(NAME, attempt, step), (o) => {
      o.status = { conditions: [{ type, status: 'True', ...(type === 'Failed' ? { reason, message } : {}) }] };
    });
  }

  /** The running step writes a result (failing the given tests) and its Job completes. */
  pass(step = this.status.progress!.currentStep!, failing: string[] = []): void {
    this.writeResult(step, stepResult(this.spec, this.step(step), this.attempt, { failing }));
    this.endJob(step, 'Complete');
  }

  /** Passes every step still to run, reconciling after each, until the attempt finishes. */
  async finish(failing: string[] = []): Promise<void> {
    for (let i = 0; i < 10 && this.status.phase === 'Running'; i++) {
      this.pass(undefined, failing);
      await this.settle();
    }
    expect(this.status.phase).not.toBe('Running');
  }
}

export interface Outcome {
  result: ReconcileResult;
  calls: Call[];
  /** `Kind/name` of every successful create (`Secret/<generateName>*` for a generated name). */
  created: string[];
  /** `Kind selector` of every delete-collection, `Kind name` of every single delete, in call order. */
  deleted: string[];
  patches: Record<string, unknown>[];
  events: { type: string; reason: string; message: string }[];
}

/** Reconciles `times` times and says what those calls did. */
export async function act(w: World, times = 1): Promise<Outcome> {
  w.fake.clearCalls();
  const seen = w.fake.events.length;
  let result: ReconcileResult = undefined;
  for (let i = 0; i < times; i++) result = await w.reconcile();
  const calls = [...w.fake.calls];
  return {
    result,
    calls,
    created: calls.filter((c) => c.op === 'create' && !c.failed).map((c) => {
      const m = (c.body as { metadata?: { name?: string; generateName?: string } }).metadata;
      return m?.name ? `${c.kind}/${c.name}` : `${c.kind}/${m?.generateName}*`;
    }),
    deleted: calls.filter((c) => c.op === 'deleteCollection' || c.op === 'delete').map((c) => `${c.kind} ${c.op === 'delete' ? c.name : c.selector}`),
    patches: calls.filter((c) => c.op === 'patchRunStatus').map((c) => c.body as Record<string, unknown>),
    events: w.fake.events.slice(seen).map((e) => ({ type: e.type!, reason: e.reason!, message: e.message! })),
  };
}

export const reasons = (o: Outcome) => o.events.map((e) => e.reason);
/** The attempt's agent-token Secret (then its params ConfigMap, which records its generated name). */
export const TOKEN = (attempt: number) => `Secret/${agentTokenSecretPrefix(NAME, attempt)}*`;
export const RUNNER_IDENTITY = ['NetworkPolicy/nightly-agents', 'ServiceAccount/nightly-runner', 'Role/nightly-runner', 'RoleBinding/nightly-runner', 'RoleBinding/nightly-runner-pools'];
export const stepObjects = (attempt: number, step: string) => [`ConfigMap/${stepResultName(NAME, attempt, step)}`, `ConfigMap/${stepSeedsName(NAME, attempt, step)}`, `Job/${jobName(NAME, attempt, step)}`];
export const foreignOwner = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'someone-else', uid: 'other-uid', controller: true };

