/**
 * The sensitivity matrix's logic (src/cli/calibrate/matrix.ts) on small fabricated result
 * documents: cells (Passed / Failed / Skipped / not run), who was meant to break what and did,
 * the exit rule and its messages, margins, the three renderings, and the machine-readable block
 * read back. The real calibration is test/e2e/calibrate.test.ts; the command's choices of runs
 * (categories of a profile, the manifest of one run) are checked here too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFECTS } from '../../src/agent/defects.ts';
import { ResultDocument, type Category, type TestResult } from '../../src/api/schema.ts';
import { parseManifestText } from '../../src/api/validate.ts';
import { categoriesOfBreaks, manifestFor } from '../../src/cli/calibrate.ts';
import {
  buildMatrix,
  conditionsOf,
  exitCodeOf,
  marginOf,
  marginText,
  parseSensitivityBlock,
  renderMarkdown,
  renderTerminal,
  sensitivityJson,
  shortCell,
  type ProfileRun,
} from '../../src/cli/calibrate/matrix.ts';
import { CATALOGUE } from '../../src/plan/catalogue.ts';
import { REPO_ROOT } from '../../src/paths.ts';

const base = ResultDocument.parse(JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results-quick.json'), 'utf8')));

/** A result document of the given categories, each test's result and value as given (Passed at its fixture value otherwise). */
function doc(categories: Category[], over: Record<string, Partial<TestResult>> = {}): ResultDocument {
  const tests = base.tests
    .filter((t) => categories.includes(t.category))
    .map((t) => ({ ...t, result: 'Passed' as const, reason: undefined, ...over[t.id] }))
    .map((t) => (t.reason === undefined ? (({ reason: _r, ...rest }) => rest)(t) : t));
  const failed = tests.filter((t) => t.result === 'Failed').length;
  return {
    ...base,
    run: { ...base.run, categories },
    tests,
    summary: { ...base.summary, total: tests.length, failed, passed: tests.filter((t) => t.result === 'Passed').length, verdict: failed ? 'Failed' : 'Passed' },
  };
}

function run(name: string, categories: Category[], d: ResultDocument | null, extra: Partial<ProfileRun> = {}): ProfileRun {
  const prof = DEFECTS.find((x) => x.name === name);
  return {
    name,
    defect: prof ? `${name}${prof.param ? `:${prof.param.default}` : ''}` : null,
    site: prof ? prof.site : null,
    breaks: prof ? prof.breaks : [],
    categories,
    doc: d,
    seconds: 12.3,
    ...extra,
  };
}

const INTEG: Category[] = ['integration'];
const DIST: Category[] = ['distributed'];

describe('buildMatrix', () => {
  it('one row per test of the selected categories, one column per run; a category a run did not cover is "not run"', () => {
    const m = buildMatrix(
      [run('clean', [...DIST, ...INTEG], doc([...DIST, ...INTEG])), run('memory-leak', INTEG, doc(INTEG, { '5.3': { result: 'Failed', value: 153, reason: 'max 153 MB' } }))],
      ['distributed', 'integration'],
    );
    expect(m.columns).toEqual(['clean', 'memory-leak']);
    expect(m.rows.map((r) => r.id)).toEqual(['1.1', '1.2', '1.3', '1.4', '1.5', '1.6', '5.1', '5.2', '5.3']);
    const r13 = m.rows.find((r) => r.id === '1.3')!;
    expect(r13.cells['memory-leak']).toEqual({ result: 'not run', value: null, unit: 'ms', samples: 0 });
    const r53 = m.rows.find((r) => r.id === '5.3')!;
    expect(r53.cells['memory-leak']).toMatchObject({ result: 'Failed', value: 153, unit: 'MB', reason: 'max 153 MB' });
    expect(r53.meantToBreak).toEqual(['memory-leak']);
    expect(r53.brokenBy).toEqual(['memory-leak']);
    expect(r53.target).toEqual({ op: '<', value: 50 });
    expect(m.ok).toBe(true);
    expect(m.problems).toEqual([]);
    expect(exitCodeOf(m)).toBe(0);
  });

  it('names a test that failed on the clean agent, with its reason', () => {
    const m = buildMatrix([run('clean', INTEG, doc(INTEG, { '6.1': {}, '5.2': { result: 'Failed', reason: 'max 12000 ms does not meet the target' } }))], INTEG);
    expect(m.problems).toEqual(['5.2 failed on the clean agent: max 12000 ms does not meet the target']);
    expect(exitCodeOf(m)).toBe(1);
  });

  it('allows Skipped on the clean agent (2.1 without a GPU), and no profile meant to break a test is no problem', () => {
    const m = buildMatrix([run('clean', ['gpu'], doc(['gpu'], { '2.1': { result: 'Skipped', value: null, reason: 'no GPU' } }))], ['gpu']);
    expect(m.rows.find((r) => r.id === '2.1')!.cells.clean!.result).toBe('Skipped');
    expect(m.ok).toBe(true);
  });

  it('names a test that passed under every profile meant to break it, and one that only did not fail (Skipped)', () => {
    const m = buildMatrix(
      [
        run('clean', DIST, doc(DIST)),
        run('no-balancing', DIST, doc(DIST)),
        run('wrong-digests', DIST, doc(DIST)),
        run('slow-gossip', DIST, doc(DIST, { '1.1': { result: 'Failed', reason: 'slow' }, '1.4': { result: 'Skipped', value: null, reason: 'no reading' } })),
        run('stale-reads', DIST, doc(DIST, { '1.4': { result: 'Passed' } })),
      ],
      DIST,
    );
    expect(m.problems).toContain('1.5 passed under every profile meant to break it (no-balancing, wrong-digests)');
    expect(m.problems).toContain('1.4 did not fail under any profile meant to break it (slow-gossip: Skipped, stale-reads: Passed)');
    expect(m.problems).toContain('1.2 passed under every profile meant to break it (slow-gossip)');
    // 1.1 was broken by slow-gossip: no problem for 1.1.
    expect(m.problems.some((p) => p.startsWith('1.1 '))).toBe(false);
    expect(m.rows.find((r) => r.id === '1.1')!.brokenBy).toEqual(['slow-gossip']);
    expect(exitCodeOf(m)).toBe(1);
  });

  it('counts a failure under a profile not meant to break the test apart (alsoFailedUnder), not as a break', () => {
    const m = buildMatrix([run('clean', DIST, doc(DIST)), run('slow-peers', DIST, doc(DIST, { '1.3': { result: 'Failed' }, '1.6': { result: 'Failed', reason: 'slow' } }))], DIST);
    const r16 = m.rows.find((r) => r.id === '1.6')!;
    expect(r16.meantToBreak).toEqual([]);
    expect(r16.alsoFailedUnder).toEqual(['slow-peers']);
    expect(m.ok).toBe(true);
  });

  it('a run that ended without a result: its cells are "not run" with the reason; on the clean run that is a problem', () => {
    const m = buildMatrix([run('clean', INTEG, null, { error: 'the run ended without a result: boom' }), run('memory-leak', INTEG, doc(INTEG, { '5.3': { result: 'Failed' } }))], INTEG);
    expect(m.rows[0]!.cells.clean).toMatchObject({ result: 'not run', reason: 'the run ended without a result: boom' });
    expect(m.problems[0]).toBe('5.1 was not run on the clean agent: the run ended without a result: boom');
    expect(m.ok).toBe(false);
  });

  it('refuses runs whose first is not the clean one', () => {
    expect(() => buildMatrix([run('memory-leak', INTEG, doc(INTEG))], INTEG)).toThrow(/clean/);
  });
});

describe('margins', () => {
  it('a signed fraction of the target, positive on the passing side', () => {
    expect(marginOf(2.5, '<', 10)).toBeCloseTo(0.75);
    expect(marginOf(25, '<', 10)).toBeCloseTo(-1.5);
    expect(marginOf(0.99, '>=', 0.9)).toBeCloseTo(0.1);
    expect(marginOf(0.45, '>=', 0.9)).toBeCloseTo(-0.5);
    expect(marginOf(null, '<', 10)).toBeNull();
    expect(marginOf(3, '<=', 0)).toBeNull();
    expect(marginText(2.5, { op: '<', value: 10 }, 'ms')).toBe('75 % inside the target');
    expect(marginText(25, { op: '<', value: 10 }, 'ms')).toBe('150 % past the target');
    expect(marginText(9.34, { op: '<', value: 5000 }, 'ms')).toBe('99.8 % inside the target');
    expect(marginText(3, { op: '<=', value: 0 }, 'lost tasks')).toBe('3 lost tasks past the target');
    expect(marginText(0, { op: '<=', value: 0 }, 'lost tasks')).toBe('exactly at the target');
  });
});

describe('renderings', () => {
  const runs = [
    run('clean', [...INTEG, 'gpu'], doc([...INTEG, 'gpu'], { '2.1': { result: 'Skipped', value: null, reason: 'no GPU' } })),
    run('memory-leak', INTEG, doc(INTEG, { '5.3': { result: 'Failed', value: 153.1, reason: 'max 153 MB does not meet the target <50 MB' } })),
    run('no-batching', ['gpu'], doc(['gpu'], { '2.1': { result: 'Skipped', value: null }, '2.2': { result: 'Failed', value: 1.02 } })),
  ];
  const cats: Category[] = ['gpu', 'integration'];
  const m = buildMatrix(runs, cats);
  const cond = conditionsOf(runs[0]!.doc, {
    host: { version: 'x', node: 'v0', os: 'os', arch: 'a', cpus: 1, cpuModel: 'm' },
    mode: 'quick',
    manifest: 'run.yaml',
    options: ['-f', 'run.yaml'],
    categories: cats,
    allCells: false,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:10:00.000Z',
    durationSeconds: 600,
  });

  it('the terminal matrix: tests x runs with short cells, blocks that fit the width, the verdict of the calibration', () => {
    expect(shortCell({ result: 'Failed', value: 153.1, unit: 'MB', samples: 1 })).toBe('FAIL 153.1');
    expect(shortCell({ result: 'not run', value: null, unit: 'MB', samples: 0 })).toBe('-');
    const wide = renderTerminal(m, 200);
    expect(wide).toMatch(/^test\s+target\s+clean\s+memory-leak\s+no-batching$/m);
    expect(wide).toMatch(/^5\.3 Resource cleanup\s+<50 MB\s+pass \S+\s+FAIL 153\.1\s+-$/m);
    expect(wide).toMatch(/^2\.1 Neural speedup\s+>=4\.22 x\s+skip\s+-\s+skip$/m);
    expect(wide).toContain('calibration holds');
    const narrow = renderTerminal(m, 60);
    expect(narrow.match(/^test\s/gm)!.length).toBeGreaterThan(1);
    for (const line of narrow.split('\n').filter((l) => /^\d\.\d /.test(l))) expect(line.length).toBeLessThanOrEqual(60);
  });

  it('sensitivity.json: per cell result, value, reason, samples; the conditions and each run\'s time', () => {
    const j = sensitivityJson(m, runs, cond) as {
      kind: string;
      ok: boolean;
      conditions: { backend: string | null; mode: string; durationSeconds: number; cpus: number };
      profiles: { name: string; runSeconds: number; defect: string | null; verdict: string | null }[];
      tests: { id: string; cells: Record<string, { result: string; value: number | null; reason?: string; samples: number }> }[];
    };
    expect(j.kind).toBe('SwarmBenchSensitivity');
    expect(j.ok).toBe(true);
    expect(j.conditions).toMatchObject({ mode: 'quick', durationSeconds: 600, cpus: base.environment.cpus, backend: base.environment.inference!.backend });
    expect(j.profiles.map((p) => [p.name, p.defect, p.runSeconds])).toEqual([
      ['clean', null, 12.3],
      ['memory-leak', 'memory-leak:256', 12.3],
      ['no-batching', 'no-batching', 12.3],
    ]);
    const t53 = j.tests.find((t) => t.id === '5.3')!;
    expect(t53.cells['memory-leak']).toMatchObject({ result: 'Failed', value: 153.1, reason: 'max 153 MB does not meet the target <50 MB', samples: expect.any(Number) });
    expect(t53.cells['no-batching']!.result).toBe('not run');
  });

  it('sensitivity.md: the matrix, test by test (meant to break, broke, clean value, target, margin), conditions, and a block that reads back', () => {
    const md = renderMarkdown(m, runs, cond, { note: 'Provisional.', command: 'swarmbench calibrate -f run.yaml' });
    expect(md).toContain('> Provisional.');
    expect(md).toMatch(/^\| test \| target \| `clean` \| `memory-leak` \| `no-batching` \|$/m);
    expect(md).toMatch(/^\| 5\.3 Resource cleanup \| &lt;50 MB \| Passed \S+ \| \*\*Failed 153\.1\*\* \| not run \|$/m);
    expect(md).toContain('### 2.2 Batch processing');
    expect(md).toMatch(/- `no-batching`: broke it \(Failed, 1\.02 x, \d+ % past the target\)/);
    expect(md).toMatch(/- Clean agent: Passed, [\d.]+ MB \(n=\d+ samples\), \d+ % inside the target\./);
    expect(md).toContain('10 min 0 s in all, 3 runs');
    const block = parseSensitivityBlock(md);
    expect(block.columns).toEqual(['clean', 'memory-leak', 'no-batching']);
    expect(block.defects).toEqual({ clean: null, 'memory-leak': 'memory-leak:256', 'no-batching': 'no-batching' });
    expect(block.cells['5.3']).toEqual({ clean: 'Passed', 'memory-leak': 'Failed', 'no-batching': 'not run' });
    expect(block.cells['2.1']).toEqual({ clean: 'Skipped', 'memory-leak': 'not run', 'no-batching': 'Skipped' });
    // The block is one HTML comment: no "--" inside it.
    const comment = md.slice(md.indexOf('<!-- swarmbench-sensitivity ') + 4, md.lastIndexOf(' -->'));
    expect(comment).not.toContain('--');
  });

  it("each run's host contention (other processes' CPU, from its results) is in both files", () => {
    const hostLoad = { wallSeconds: 10, hostCpus: 2, busyCpus: 1.9, ownCpus: 0.6, otherCpus: 1.3, otherPct: 65, loadavg1: { start: 1, end: 2 } };
    const busy = [run('clean', INTEG, { ...doc(INTEG), environment: { ...base.environment, hostLoad } })];
    const bm = buildMatrix(busy, INTEG);
    const j = sensitivityJson(bm, busy, cond) as { profiles: { hostOtherCpus?: number; hostOtherPct?: number }[] };
    expect(j.profiles[0]).toMatchObject({ hostOtherCpus: 1.3, hostOtherPct: 65 });
    expect(renderMarkdown(bm, busy, cond)).toMatch(/^\| `clean` \| none \| integration \| 12 s \| Passed \| 1\.30 of 2 CPUs \|$/m);
  });

  it('the problems are listed in the page and on the terminal', () => {
    const bad = buildMatrix([run('clean', INTEG, doc(INTEG)), run('memory-leak', INTEG, doc(INTEG))], INTEG);
    expect(renderTerminal(bad)).toContain('  5.3 passed under every profile meant to break it (memory-leak)');
    expect(renderMarkdown(bad, [], cond)).toContain('- 5.3 passed under every profile meant to break it (memory-leak)');
  });

  it('parseSensitivityBlock names what is wrong', () => {
    expect(() => parseSensitivityBlock('# nothing')).toThrow(/no machine-readable block/);
    expect(() => parseSensitivityBlock('<!-- swarmbench-sensitivity {x')).toThrow(/not closed/);
    expect(() => parseSensitivityBlock('<!-- swarmbench-sensitivity {x} -->')).toThrow(/not JSON/);
    expect(() => parseSensitivityBlock('<!-- swarmbench-sensitivity {"schemaVersion":2} -->')).toThrow(/schemaVersion 1/);
    expect(() =>
      parseSensitivityBlock('<!-- swarmbench-sensitivity {"schemaVersion":1,"columns":["clean"],"defects":{},"cells":{"1.1":{"clean":"Maybe"}}} -->'),
    ).toThrow(/cells\["1.1"\]\["clean"\]: "Maybe" is not a result/);
  });
});

describe('the runs of a calibration', () => {
  it('a profile runs on the categories of the tests it is meant to break', () => {
    expect(categoriesOfBreaks(['1.5', '4.1', '4.5'])).toEqual(['distributed', 'scalability']);
    expect(categoriesOfBreaks(['5.1', '5.2'])).toEqual(['integration']);
    // Every test a profile names exists in the catalogue.
    for (const d of DEFECTS) for (const id of d.breaks) expect(CATALOGUE.map((t) => t.id), `${d.name}: ${id}`).toContain(id);
  });

  it('one run\'s manifest switches its one profile on, at the right site, and keeps everything else', () => {
    const p = parseManifestText('apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: cal}\nspec: {mode: quick, trials: 3, agents: {capacity: 32}, targets: {distributedLatencyMs: 5}}\n');
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(manifestFor(p.value, null)).toBe(p.value);
    const a = manifestFor(p.value, { name: 'slow-peers', value: 40 });
    expect(a.spec.agents).toEqual({ capacity: 32, defects: ['slow-peers:40'] });
    expect(a.spec.targets).toEqual({ distributedLatencyMs: 5 });
    expect(a.spec.trials).toBe(3);
    expect(a.metadata.name).toBe('cal-slow-peers');
    const g = manifestFor(p.value, { name: 'no-batching', value: null });
    expect(g.spec.gpu).toEqual({ defects: ['no-batching'] });
    expect(g.spec.agents).toEqual({ capacity: 32 });
  });
});

describe('durations on the page', () => {
  it('round to whole seconds before splitting minutes off', async () => {
    const { duration } = await import('../../src/cli/calibrate/matrix.ts');
    expect([duration(24.4), duration(59.6), duration(90), duration(1616)]).toEqual(['24 s', '1 min 0 s', '1 min 30 s', '26 min 56 s']);
  });
});
