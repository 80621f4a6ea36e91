/**
 * The corpus of bad BenchmarkRuns (test/support/bad-runs.ts), proven without a cluster: every entry
 * the cluster test expects the API server to refuse is refused by the generated CRD (checked by
 * test/support/crd-validate.ts) naming the field, and by zod; every entry it expects to be
 * accepted passes the CRD and ends, in the reconcile over the fake cluster, SpecInvalid or Degraded
 * with the reason, after which three more reconciles write nothing (no retry storm).
 */
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { validateSpec } from '../../src/api/validate.ts';
import { API_VERSION_FULL, type BenchmarkRunSpec } from '../../src/api/schema.ts';
import { jobName, labelValue, qualifiedNameProblem, stepResultName } from '../../src/kube/names.ts';
import { parseAdmission } from '../../src/operator/policy.ts';
import { Reconciler } from '../../src/operator/reconcile.ts';
import type { CreateKind, KindMap, RunObject } from '../../src/operator/cluster.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import { BAD_RUNS, SMALL, type BadRun } from '../support/bad-runs.ts';
import { crdErrors, nameErrors } from '../support/crd-validate.ts';
import { FakeCluster, type Obj } from '../support/fake-cluster.ts';
import { silent, stepResult } from '../support/reconcile-world.ts';

const NS = 'bench';
/** The cluster test's admission settings (test/cluster/lib/itest.ts TEST_ADMISSION). */
const ADMISSION = parseAdmission(JSON.stringify({ prometheus: { allowLoopback: true } }));

/** A run of the corpus in a fake cluster, with a clock that moves a second per reconcile. */
function world(run: BadRun, fake = new FakeCluster()) {
  let clock = Date.parse('2026-03-01T10:00:00Z');
  fake.put('BenchmarkRun', { apiVersion: API_VERSION_FULL, kind: 'BenchmarkRun', metadata: { name: run.name, namespace: NS }, spec: run.spec });
  const r = new Reconciler({ cluster: fake, images: { image: 'reg/sb:1', gpuImage: 'reg/sb-gpu:1' }, log: silent, version: '9.9.9', now: () => new Date(clock), pollMs: 1000, admission: ADMISSION });
  return {
    fake,
    reconcile: () => {
      clock += 1000;
      return r.reconcile(`${NS}/${run.name}`);
    },
    get run(): RunObject {
      return fake.get('BenchmarkRun', NS, run.name)!;
    },
    condition(type: string) {
      return this.run.status?.conditions?.find((c) => c.type === type);
    },
  };
}

/** Reconciles `n` times and returns the writes those calls made. */
async function resyncs(w: ReturnType<typeof world>, n: number) {
  w.fake.clearCalls();
  for (let i = 0; i < n; i++) await w.reconcile();
  return w.fake.writes();
}

/** The API server with an admission policy that refuses every Job (`deny`: the policy's reason, so its status code). */
function refusingJobs(deny: 'Invalid' | 'Forbidden'): FakeCluster {
  const fake = new FakeCluster();
  const create = fake.create.bind(fake);
  fake.create = (async (kind: string, body: Obj) => {
    if (kind !== 'Job') return create(kind as never, body as never);
    const code = deny === 'Invalid' ? 422 : 403;
    const message = `jobs.batch "${body.metadata?.name}" is ${deny === 'Invalid' ? 'invalid' : 'forbidden'}: ValidatingAdmissionPolicy 'corpus' with binding 'corpus' denied request: the corpus refuses this run's Jobs`;
    fake.calls.push({ op: 'create', kind, namespace: body.metadata?.namespace ?? '', name: body.metadata?.name ?? '', body, failed: code });
    throw new ApiException(code, message, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason: deny, message }, {});
  }) as FakeCluster['create'];
  return fake;
}

describe('the corpus of bad resources', () => {
  it('holds at least 50 entries of every kind, each name once', () => {
    expect(BAD_RUNS.length).toBeGreaterThanOrEqual(50);
    expect(new Set(BAD_RUNS.map((r) => r.name)).size).toBe(BAD_RUNS.length);
    for (const kind of ['rejected', 'specInvalid', 'degraded'] as const) expect(BAD_RUNS.filter((r) => r[kind]).length, kind).toBeGreaterThan(0);
    for (const r of BAD_RUNS) expect([r.rejected, r.specInvalid, r.degraded].filter(Boolean), r.name).toHaveLength(1);
  });

  for (const run of BAD_RUNS.filter((r) => r.rejected)) {
    it(`${run.what}: the API server refuses it naming ${run.rejected}`, () => {
      const field = run.rejected!;
      const under = (p: string) => p === field || p.startsWith(`${field}.`) || p.startsWith(`${field}[`);
      if (field === 'metadata.name') {
        expect(nameErrors(run.name).map((e) => e.path)).toEqual(['metadata.name']);
        expect(crdErrors(run.spec)).toEqual([]);
        return;
      }
      expect(nameErrors(run.name)).toEqual([]);
      const errors = crdErrors(run.spec);
      expect(errors.length, JSON.stringify(errors)).toBeGreaterThan(0);
      for (const e of errors) expect(under(e.path), `${e.path}: ${e.message}`).toBe(true);
      // The operator's own check (a run stored before the CRD had the rule) names it too.
      const v = validateSpec(run.spec);
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.errors.some((e) => under(e.path)), JSON.stringify(v.errors)).toBe(true);
    });
  }

  for (const run of BAD_RUNS.filter((r) => r.specInvalid)) {
    it(`${run.what}: accepted by the API server, SpecInvalid naming the field, then nothing more`, async () => {
      expect(nameErrors(run.name)).toEqual([]);
      expect(crdErrors(run.spec)).toEqual([]);
      const w = world(run);
      expect(await w.reconcile()).toBeUndefined();
      expect(w.run.status).toMatchObject({ phase: 'Failed', observedGeneration: 1 });
      expect(w.condition('Ready')).toMatchObject({ status: 'False', reason: 'SpecInvalid' });
      expect(w.condition('Ready')!.message).toMatch(run.specInvalid!);
      expect(w.fake.events.map((e) => e.reason)).toEqual(['SpecInvalid']);
      expect(w.fake.all('Job')).toEqual([]);
      expect(await resyncs(w, 3)).toEqual([]);
    });
  }

  for (const run of BAD_RUNS.filter((r) => r.degraded)) {
    it(`${run.what}: Degraded (${run.degraded!.reason}) once, no requeue, three resyncs write nothing`, async () => {
      expect(nameErrors(run.name)).toEqual([]);
      expect(crdErrors(run.spec)).toEqual([]);
      expect(validateSpec(run.spec).ok).toBe(true);
      const w = world(run, refusingJobs(run.degraded!.deny));
      let result: unknown = { requeueAfterMs: 0 };
      for (let i = 0; i < 5 && result !== undefined; i++) result = await w.reconcile();
      expect(result).toBeUndefined();
      expect(w.run.status).toMatchObject({ phase: 'Failed', attempt: 1 });
      expect(w.condition('Degraded')).toMatchObject({ status: 'True', reason: run.degraded!.reason });
      expect(w.condition('Degraded')!.message).toMatch(run.degraded!.message);
      expect(w.condition('Ready')).toMatchObject({ status: 'False', reason: run.degraded!.reason });
      expect(w.fake.events.filter((e) => e.type === 'Warning').map((e) => e.reason)).toEqual([run.degraded!.reason]);
      // The Job was asked for once: the refusal was not retried.
      expect(w.fake.calls.filter((c) => c.op === 'create' && c.kind === 'Job')).toHaveLength(1);
      expect(await resyncs(w, 3)).toEqual([]);
      // Reads of the run, and of its Jobs for stopped runners (operator/cleanup.ts sweepPools), which
      // the operator answers from its Job cache (operator/cluster.ts list): no API call.
      expect(w.fake.calls.filter((c) => !(c.op === 'list' && c.kind === 'Job')).map((c) => c.op)).toEqual(['getRun', 'getRun', 'getRun']);
    });
  }
});

/**
 * The names of runs over 63 characters and dotted names (issue 12's hashing): a whole attempt of
 * such a run in a fake API server that refuses what the real one refuses (an object name that is
 * not a DNS subdomain, a Job name over 63, a label key or value that is not one) ends Succeeded.
 */
class NamingApiServer extends FakeCluster {
  refused: string[] = [];
  override async create<K extends CreateKind>(kind: K, body: KindMap[K]): Promise<KindMap[K]> {
    const m = (body as Obj).metadata ?? {};
    const name = m.name ?? `${String(m.generateName ?? '')}abcde`;
    const problems: string[] = [];
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name) || name.length > 253) problems.push(`metadata.name ${name}`);
    if (kind === 'Job' && (name.length > 63 || name.includes('.'))) problems.push(`Job name ${name} (a label value of its pods)`);
    for (const [k, v] of Object.entries(m.labels ?? {})) {
      if (qualifiedNameProblem(k)) problems.push(`label key ${k}`);
      if (labelValue(v) !== v) problems.push(`label value ${k}=${v}`);
    }
    if (problems.length) {
      this.refused.push(...problems);
      throw new ApiException(422, problems.join('; '), { kind: 'Status', code: 422, reason: 'Invalid', message: problems.join('; ') }, {});
    }
    return super.create(kind, body);
  }
}

describe('run names over 63 characters and dotted names', () => {
  for (const name of [`${'team.'.repeat(30)}nightly-benchmark-of-the-swarm`, 'team.a.nightly', `nightly-${'x'.repeat(60)}`, 'n'.repeat(253)]) {
    it(`${name.length} characters: a whole attempt, every object and label valid, Succeeded`, async () => {
      const spec: BenchmarkRunSpec = { ...SMALL, categories: ['distributed', 'integration'] };
      const fake = new NamingApiServer();
      const w = world({ name, what: '', spec }, fake);
      const plan = buildPlan(resolveParams(spec));
      for (let i = 0; i < 40 && !['Succeeded', 'Failed'].includes(w.run.status?.phase ?? ''); i++) {
        await w.reconcile();
        const step = w.run.status?.progress?.currentStep;
        const s = plan.find((x) => x.name === step);
        if (s && fake.get('Job', NS, jobName(name, 1, s.name))) {
          fake.update('ConfigMap', NS, stepResultName(name, 1, s.name), (o) => (o.data = { 'result.json': JSON.stringify(stepResult(spec, s, 1)) }));
          fake.update('Job', NS, jobName(name, 1, s.name), (o) => (o.status = { conditions: [{ type: 'Complete', status: 'True' }] }));
        }
      }
      expect(fake.refused).toEqual([]);
      expect(w.run.status?.phase).toBe('Succeeded');
    });
  }
});
