/**
 * `swarmbench report` and the exports of `swarmbench run`, as a user runs them: child processes,
 * exit codes, files. The report of a results.json is the report the run printed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type TestSuites } from 'junit2json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument, type ResultDocument as Doc } from '../../src/api/schema.ts';
import { describe as distribution } from '../../src/stats.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { environmentOf } from '../../src/report/assemble.ts';
import { VERSION } from '../../src/version.ts';

const work = mkdtempSync(join(tmpdir(), 'swarmbench-report-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function swarmbench(args: string[], timeoutMs = 120_000) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function manifest(name: string, specYaml: string): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}}\nspec:\n${specYaml}`);
  return file;
}

const readDoc = (file: string): Doc => ResultDocument.parse(JSON.parse(readFileSync(file, 'utf8')));

/** A baseline made from a real document: 5.1's samples 20× faster, so the real run regressed. */
function fasterBaseline(doc: Doc, file: string): string {
  const base: Doc = {
    ...doc,
    run: { ...doc.run, name: 'fast-baseline' },
    tests: doc.tests.map((t) => {
      // Only 5.1 carries samples: the other tests were recorded on another day's machine, and a
      // live run on a busy host may honestly differ from them; without samples they compare as
      // InsufficientSamples, so the one regression is the one planted here.
      if (t.id !== '5.1') {
        const { rawSamples: _raw, ...rest } = t;
        return rest;
      }
      if (!t.rawSamples) return t;
      const raw = t.rawSamples.map((v) => v / 20);
      return { ...t, rawSamples: raw, distribution: distribution(raw) };
    }),
  };
  writeFileSync(file, JSON.stringify(base, null, 2));
  return file;
}

describe('swarmbench run writes the exports and prints the report of its results.json', () => {
  const out = join(work, 'run');
  let run: ReturnType<typeof swarmbench>;
  beforeAll(() => {
    run = swarmbench(['run', '-f', manifest('exports', '  mode: quick\n'), '--categories', 'integration', '--out', out]);
  });

  it('exits 0 with every export written', async () => {
    expect(run.code, run.stderr).toBe(0);
    for (const f of ['results.json', 'summary.csv', 'junit.xml', 'report.md', 'report.txt']) expect(existsSync(join(out, f)), f).toBe(true);
    const doc = readDoc(join(out, 'results.json'));
    expect(doc.recommendations).toBeDefined();
    const junit = (await parse(readFileSync(join(out, 'junit.xml'), 'utf8'))) as TestSuites;
    expect(junit.tests).toBe(doc.summary.total);
    expect(junit.failures).toBe(doc.summary.failed);
    expect(readFileSync(join(out, 'summary.csv'), 'utf8')).toMatch(/^Metric,Value,Target,Status,/);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/^# SwarmBench: exports\n\n\*\*✅ PASSED\*\*/);
  });

  it('`swarmbench report results.json` prints exactly the report the run printed', () => {
    const r = swarmbench(['report', join(out, 'results.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/VERDICT: PASSED/);
    expect(run.stdout.startsWith(r.stdout), `run printed:\n${run.stdout}\nreport printed:\n${r.stdout}`).toBe(true);
    expect(run.stdout.slice(r.stdout.length)).toMatch(/^results: .*results\.json \(\d+ s\); summary\.csv, junit\.xml, report\.md, report\.txt beside it\n$/);
    expect(readFileSync(join(out, 'report.txt'), 'utf8')).toBe(r.stdout);
  });

  it('--format prints one export; --out writes them all', () => {
    const file = join(out, 'results.json');
    expect(swarmbench(['report', file, '--format', 'junit']).stdout).toBe(readFileSync(join(out, 'junit.xml'), 'utf8'));
    expect(swarmbench(['report', file, '--format', 'csv']).stdout).toBe(readFileSync(join(out, 'summary.csv'), 'utf8'));
    expect(swarmbench(['report', file, '--format', 'markdown']).stdout).toBe(readFileSync(join(out, 'report.md'), 'utf8'));
    expect(readDoc(join(out, 'results.json'))).toEqual(ResultDocument.parse(JSON.parse(swarmbench(['report', file, '--format', 'json']).stdout)));
    const again = join(work, 'again');
    expect(swarmbench(['report', file, '--out', again]).code).toBe(0);
    expect(readFileSync(join(again, 'report.txt'), 'utf8')).toBe(readFileSync(join(out, 'report.txt'), 'utf8'));
  });

  it('--baseline reports the regression; --fail-on-regression makes it fail the verdict', () => {
    const file = join(out, 'results.json');
    const base = fasterBaseline(readDoc(file), join(work, 'fast-baseline.json'));
    const open = swarmbench(['report', file, '--baseline', base]);
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toMatch(/\n {2}5\.1 {2}End-to-end workflow .* REGRESSED\n/);
    expect(open.stdout).toMatch(/VERDICT: PASSED · regressed: 5\.1\n/);
    const gated = swarmbench(['report', file, '--baseline', base, '--fail-on-regression', '--out', join(work, 'gated')]);
    expect(gated.code).toBe(1);
    expect(gated.stdout).toMatch(/VERDICT: FAILED · regressed \(gated\): 5\.1\n/);
    const doc = readDoc(join(work, 'gated', 'results.json'));
    expect(doc.summary).toMatchObject({ verdict: 'Failed', regressions: 1, regressionGate: true });
    expect(doc.comparison?.regressed).toEqual(['5.1']);
    // The gated document renders the same from the file alone.
    expect(swarmbench(['report', join(work, 'gated', 'results.json')]).stdout).toBe(gated.stdout);
  });

  it('--baseline given twice pools the two runs’ samples; more than 10 is refused naming the option', () => {
    const file = join(out, 'results.json');
    const base = fasterBaseline(readDoc(file), join(work, 'fast-baseline.json'));
    const second = join(work, 'fast-baseline-2.json');
    const doc2 = readDoc(base);
    writeFileSync(second, JSON.stringify({ ...doc2, run: { ...doc2.run, name: 'fast-baseline-2' } }));
    const pooled = swarmbench(['report', file, '--baseline', base, '--baseline', second, '--format', 'json']);
    expect(pooled.code, pooled.stderr).toBe(0);
    const c = ResultDocument.parse(JSON.parse(pooled.stdout)).comparison!;
    expect(c.baseline).toMatchObject({ name: 'fast-baseline', source: `${base}, ${second}`, pool: [{ name: 'fast-baseline-2' }] });
    const m = c.metrics.find((x) => x.id === '5.1')!;
    expect(m.verdict).toBe('Regressed');
    expect(m.baseline.n).toBe(2 * m.current.n);
    expect(swarmbench(['report', file, '--baseline', base, '--baseline', second]).stdout).toMatch(/\n {2}pooled with fast-baseline-2 \(2 runs' samples\)\n/);
    const many = swarmbench(['report', file, ...Array.from({ length: 11 }, () => ['--baseline', base]).flat()]);
    expect(many.code).toBe(2);
    expect(many.stderr).toMatch(/--baseline: at most 10 files make a pooled baseline, got 11/);
  });
});

describe('swarmbench run --baseline with spec.baseline.failOnRegression', () => {
  it('a regression against the baseline fails the run (exit 1) and is in results.json', () => {
    const base = join(work, 'run-baseline.json');
    const src = join(REPO_ROOT, 'test', 'fixtures', 'results-quick.json');
    fasterBaseline(readDoc(src), base);
    const out = join(work, 'run-gated');
    // The fixture was recorded on another day's machine (report/fingerprint.ts): forced, so that the
    // test holds on any machine; its differences, if any, are then the comparison's first warnings.
    const r = swarmbench(['run', '-f', manifest('gated', '  mode: quick\n  baseline: {failOnRegression: true}\n'), '--categories', 'integration', '--out', out, '--baseline', base, '--force-compare']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/VERDICT: FAILED · regressed \(gated\): 5\.1/);
    const doc = readDoc(join(out, 'results.json'));
    expect(doc.comparison?.baseline).toMatchObject({ name: 'fast-baseline', source: base });
    expect(doc.summary).toMatchObject({ passed: 3, failed: 0, verdict: 'Failed', regressions: 1, regressionGate: true });
    // Every result carries its fingerprint, with the workload's sizes.
    expect(doc.fingerprint).toMatchObject({ platform: 'local', spec: { mode: 'quick', sizes: { 'agents.poolSize': 8 } } });
  });
});

describe('a baseline not measured alike is compared only with --force-compare', () => {
  const fixture = join(REPO_ROOT, 'test', 'fixtures', 'results-quick.json');
  const otherCpu = () => {
    const file = join(work, 'other-cpu.json');
    const doc = readDoc(fixture);
    writeFileSync(file, JSON.stringify({ ...doc, environment: { ...doc.environment, cpuModel: 'Other CPU' } }));
    return file;
  };

  it('report: refused with exit 2 naming the difference; forced, compared with the difference as a warning', () => {
    const base = otherCpu();
    const refused = swarmbench(['report', fixture, '--baseline', base]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^swarmbench report: --baseline .*other-cpu\.json: the baseline was not measured like this run, so they are not compared: cpuModel: baseline "Other CPU", this run "AMD EPYC"\. Compare them anyway with --force-compare/);
    const forced = swarmbench(['report', fixture, '--baseline', base, '--force-compare', '--format', 'json']);
    expect([0, 1], forced.stderr).toContain(forced.code);
    const doc = ResultDocument.parse(JSON.parse(forced.stdout));
    expect(doc.comparison?.warnings[0]).toBe('compared although not measured alike (--force-compare): cpuModel: baseline "Other CPU", this run "AMD EPYC"');
    expect(swarmbench(['report', fixture, '--force-compare']).stderr).toMatch(/--force-compare need --baseline/);
  });

  it('run: refused before anything starts when this machine differs from the baseline', () => {
    const out = join(work, 'out-other-cpu');
    const r = swarmbench(['run', '-f', manifest('othercpu', '  mode: quick\n'), '--out', out, '--baseline', otherCpu()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cpuModel: baseline "Other CPU", this run ".*"\. Compare them anyway with --force-compare .*; nothing was started\n$/);
    expect(existsSync(out)).toBe(false);
  });

  it('run: an inference backend that differs is known only after the run: the results are written without the comparison, exit 2', () => {
    // The baseline: this machine (as the run will see it) with an inference backend SwarmBench never uses.
    const params = resolveParams({ mode: 'quick' }, ['gpu']);
    const environment = { ...environmentOf('local', { params, steps: [], version: VERSION }), inference: { backend: 'webgl', gpuInUse: true } };
    const base = join(work, 'other-backend.json');
    const fixtureDoc = readDoc(fixture);
    writeFileSync(base, JSON.stringify({ ...fixtureDoc, environment: { ...fixtureDoc.environment, ...environment } }));
    const out = join(work, 'out-other-backend');
    const r = swarmbench(['run', '-f', manifest('otherbackend', '  mode: quick\n'), '--categories', 'gpu', '--out', out, '--baseline', base, '--quiet']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/inference: baseline "webgl \(GPU\)", this run "[^"]+"\. Compare them anyway with --force-compare .*results\.json holds the results without the comparison\n$/);
    const doc = readDoc(join(out, 'results.json'));
    expect(doc.comparison).toBeUndefined();
    expect(doc.fingerprint?.inference).toBeDefined();
  }, 240_000);
});

describe('invalid input exits 2 and starts nothing', () => {
  it('report: no file, a missing file, not a result document, a bad format or option', () => {
    expect(swarmbench(['report']).code).toBe(2);
    const missing = swarmbench(['report', join(work, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.json: ENOENT/);
    const notDoc = join(work, 'not-a-doc.json');
    writeFileSync(notDoc, '{"kind": "ConfigMap"}');
    expect(swarmbench(['report', notDoc]).stderr).toMatch(/not a SwarmBench result document/);
    const fixture = join(REPO_ROOT, 'test', 'fixtures', 'results-quick.json');
    expect(swarmbench(['report', fixture, '--format', 'pdf']).stderr).toMatch(/unknown format "pdf"/);
    expect(swarmbench(['report', fixture, '--baseline', fixture, '--alpha', '2']).stderr).toMatch(/--alpha: invalid value "2"/);
    expect(swarmbench(['report', fixture, '--min-effect', '3']).stderr).toMatch(/need --baseline/);
    const broken = join(work, 'broken.json');
    writeFileSync(broken, JSON.stringify({ ...readDoc(fixture), summary: { total: 'many' } }));
    const b = swarmbench(['report', broken]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/invalid result document:\n {2}summary\.total/);
  });

  it('run: an unreadable --baseline is refused before anything runs', () => {
    const out = join(work, 'out-bad-baseline');
    const r = swarmbench(['run', '-f', manifest('badbase', '  mode: quick\n'), '--out', out, '--baseline', join(work, 'nope.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--baseline: cannot read/);
    expect(existsSync(out)).toBe(false);
  });

  it('report --rules lists every rule', () => {
    const r = swarmbench(['report', '--rules']);
    expect(r.code).toBe(0);
    for (const name of ['scaling-knee', 'gpu-batch-crossover', 'latency-tail', 'p95-drift', 'memory-per-agent', 'early-shedding', 'scrape-near-interval', 'gpu-not-used', 'runner-saturated']) {
      expect(r.stdout).toContain(name);
    }
  });
});
