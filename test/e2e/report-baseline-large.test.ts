/**
 * `swarmbench report --baseline` against a baseline of 500 000 samples (issue 13, "Bounded"): the
 * real CLI in a child process exits 0 or 1 with a comparison, in seconds, never a crash. The
 * baseline is the quick run's fixture with 1.3's samples replaced by 500 000 seeded log-normal
 * ones (about 5 MB of JSON; before the bound, its 320 × 500 000 differences were 1.3 GB).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ResultDocument, type ResultDocument as Doc } from '../../src/api/schema.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';
import { mulberry32 } from '../../src/prng.ts';
import { MAX_COMPARED_SAMPLES } from '../../src/report/baseline.ts';

const work = mkdtempSync(join(tmpdir(), 'swarmbench-report-large-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CURRENT = join(REPO_ROOT, 'test', 'fixtures', 'results-quick.json');
const N = 500_000;

describe('swarmbench report --baseline with a 500 000-sample baseline', () => {
  it('exits 0 or 1 with the comparison, the real count and the compared count, within seconds', () => {
    const doc = ResultDocument.parse(JSON.parse(readFileSync(CURRENT, 'utf8')));
    const r = mulberry32(13);
    const big = Array.from({ length: N }, () => {
      const z = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
      return Math.round(0.1 * Math.exp(0.3 * z) * 1e6) / 1e6;
    });
    const baseline: Doc = { ...doc, run: { ...doc.run, name: 'big-baseline' }, tests: doc.tests.map((t) => (t.id === '1.3' ? { ...t, rawSamples: big } : t)) };
    const file = join(work, 'baseline.json');
    writeFileSync(file, JSON.stringify(baseline));
    expect(statSync(file).size).toBeLessThan(30 * 2 ** 20);
    const out = join(work, 'out');
    const t0 = Date.now();
    const run = spawnSync(process.execPath, [CLI_ENTRY, 'report', CURRENT, '--baseline', file, '--out', out], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    const seconds = (Date.now() - t0) / 1000;
    expect(run.signal, run.stderr).toBeNull();
    expect([0, 1], run.stderr).toContain(run.status);
    expect(seconds).toBeLessThan(20);
    const result = ResultDocument.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    const m = result.comparison!.metrics.find((x) => x.id === '1.3')!;
    expect(m.baseline.n).toBe(N);
    expect(m.note).toMatch(`baseline: ${MAX_COMPARED_SAMPLES} of ${N} samples compared`);
    expect(m.p).not.toBeNull();
    // The current run's 1.3 (about 0.1 ms) against a baseline around 0.1 ms: compared, not refused.
    expect(['NoChange', 'Improved', 'Regressed']).toContain(m.verdict);
  });
});
