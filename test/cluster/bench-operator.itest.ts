/**
 * The `operator` section of `npm run bench` (bench/operator.ts) end to end on its tiny
 * configuration against the test cluster, so it does not rot: apply → first Job beside the Job →
 * Pod floor, the queue's throughput, the operator's memory with finished runs; every figure holds
 * its samples, median, p95 and count, and its goal is judged. Not timed. Skipped (reason in the
 * suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Section } from '../../bench/lib.ts';
import { bench, checkFigure } from '../support/bench.ts';
import { clusterGate } from './lib/itest.ts';

const gate = await clusterGate('bench operator section');
const work = mkdtempSync(join(tmpdir(), 'swarmbench-bench-op-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!!gate.notUp)(gate.title, () => {
  it('runs on the tiny configuration: every figure measured beside its floor, goals judged', () => {
    const out = join(work, 'tiny');
    const r = bench(['--tiny', '--only', 'operator', '--out', out], 420_000);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { sections: Section[] };
    const s = doc.sections[0]!;
    expect(s.id).toBe('operator');
    expect(s.skipped, s.skipped).toBeUndefined();
    expect(s.figures.length).toBeGreaterThanOrEqual(3);
    for (const f of s.figures) checkFigure(f);
    // apply → first Job has its goal at every size (the 1000-run memory goal only at full size).
    expect(s.figures.filter((f) => f.goal).length).toBeGreaterThanOrEqual(1);
  }, 480_000);
});
