/**
 * The operator's pooled baseline (spec.baseline.pool; a schedule's `pooled` policy sets it):
 * each run of the pool is read live with its export, which must be controlled by that run; the
 * samples of those read are pooled (src/report/baseline.ts); a run gone or an export not its own
 * is named in the run's message and left out, never read as someone else's figures. Against the
 * fake API server of the reconcile tests (the pooled comparison on the real one is the schedule
 * tests' `pooled` policy).
 */
import { describe, expect, it } from 'vitest';
import { ResultDocument, type BenchmarkRunSpec } from '../../src/api/schema.ts';
import { API_VERSION_FULL } from '../../src/kube/names.ts';
import { NAME, NS, TWO, World } from '../support/reconcile-world.ts';

/** The export of a finished attempt of the world's run. */
function exported(w: World): ResultDocument {
  return ResultDocument.parse(JSON.parse(w.fake.get('ConfigMap', NS, `${NAME}-results`)!.data!['results.json']!));
}

/** A finished run `name` of the namespace whose export holds `doc` with test 1.1's samples; its export controlled by `ownerUid` (default: the run). */
function putRun(w: World, name: string, doc: ResultDocument, samples: number[], ownerUid?: string): void {
  w.fake.put('BenchmarkRun', { apiVersion: API_VERSION_FULL, kind: 'BenchmarkRun', metadata: { name, namespace: NS }, spec: TWO, status: { phase: 'Succeeded' } });
  const uid = ownerUid ?? w.fake.get('BenchmarkRun', NS, name)!.metadata.uid!;
  const mine: ResultDocument = { ...doc, run: { ...doc.run, name }, tests: doc.tests.map((t) => (t.id === '1.1' ? { ...t, rawSamples: samples } : t)) };
  w.fake.put('ConfigMap', {
    metadata: { name: `${name}-results`, namespace: NS, ownerReferences: [{ apiVersion: API_VERSION_FULL, kind: 'BenchmarkRun', name, uid, controller: true }] },
    data: { 'results.json': JSON.stringify(mine) },
  });
}

describe('a pooled baseline in the operator', () => {
  it('pools the exports of the runs it names and names those it left out', async () => {
    const spec: BenchmarkRunSpec = { ...TWO, cleanup: { policy: 'Never' } };
    const w = new World(spec);
    await w.settle();
    await w.finish();
    const first = exported(w);
    expect(first.comparison).toBeUndefined();
    putRun(w, 'n1', first, [10, 11, 12, 13, 14]);
    putRun(w, 'n2', first, [10, 11, 12, 13, 14, 15, 16]);
    putRun(w, 'n3', first, [99, 99, 99, 99, 99], 'uid-of-someone-else');
    w.spec = { ...spec, baseline: { pool: ['n1', 'gone', 'n2', 'n3'] } };
    w.fake.updateRun(NS, NAME, { spec: w.spec, annotations: { 'swarmbench.io/rerun': 'pooled' } });
    await w.settle();
    await w.finish();
    expect(w.status).toMatchObject({ attempt: 2, phase: 'Succeeded' });
    const doc = exported(w);
    expect(doc.comparison?.baseline).toMatchObject({ name: 'n1', pool: [{ name: 'n2', attempt: first.run.attempt }] });
    expect(doc.comparison?.baseline.source).toBe('pool of 2: n1, n2');
    // 1.1's samples: 5 of n1 and 7 of n2, not n3's (its export is not its own).
    const m = doc.comparison!.metrics.find((x) => x.id === '1.1')!;
    expect(m.baseline).toEqual({ n: 12, median: 12.5 });
    expect(w.status.comparison?.baseline).toBe('pool of 2: n1, n2');
    const message = JSON.stringify(w.status.conditions);
    expect(message).toMatch(/baseline run gone not found: no comparison with it/);
    expect(message).toMatch(/baseline ConfigMap n3-results is not controlled by run n3: no comparison/);
  });

  it('no run of the pool readable: no comparison, and the message says why', async () => {
    const w = new World({ ...TWO, baseline: { pool: ['gone-1', 'gone-2'] } });
    await w.settle();
    await w.finish();
    expect(exported(w).comparison).toBeUndefined();
    expect(JSON.stringify(w.status.conditions)).toMatch(/baseline run gone-1 not found: no comparison with it; baseline run gone-2 not found/);
  });
});
