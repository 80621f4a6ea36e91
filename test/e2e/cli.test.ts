/**
 * `swarmbench run` as a user runs it: a child process, exit codes, output files.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ResultDocument } from '../../src/api/schema.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';

const work = mkdtempSync(join(tmpdir(), 'swarmbench-cli-'));
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

describe('swarmbench run: invalid input exits 2, names the field, starts nothing', () => {
  const cases: [string, string, RegExp][] = [
    ['malformed', '  mode: [quick\n', /malformed YAML/],
    ['wrongtype', '  trials: five\n', /spec\.trials: must be a number/],
    ['unknowncat', '  categories: [distributed, telepathy]\n', /spec\.categories\[1\]/],
    ['negative', '  agents: {steps: [10, 20, -30, 40, 50]}\n', /spec\.agents\.steps\[2\]/],
    ['absurd', '  agents: {poolSize: 100000000}\n', /spec\.agents\.poolSize/],
    ['absurdduration', '  stress: {sustainedDuration: 1000h}\n', /spec\.stress\.sustainedDuration: must be at most 24h/],
    ['unknownfield', '  agentz: {}\n', /spec\.agentz: unknown field/],
  ];
  it.each(cases)('%s', (name, spec, message) => {
    const out = join(work, `out-${name}`);
    const r = swarmbench(['run', '-f', manifest(name, spec), '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // no stack trace
    expect(existsSync(out)).toBe(false); // nothing started, nothing written
  });

  it('a missing file, a bad flag and an unknown --categories entry', () => {
    expect(swarmbench(['run', '-f', join(work, 'nope.yaml')]).code).toBe(2);
    expect(swarmbench(['run', '--frobnicate']).code).toBe(2);
    const r = swarmbench(['run', '-f', join(REPO_ROOT, 'examples/benchmarkrun-quick.yaml'), '--categories', 'gpu,warp', '--out', join(work, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown category "warp"/);
  });
});

describe('swarmbench run: verdicts and exit codes', () => {
  it('impossible targets make the named tests fail and the exit code 1', () => {
    const out = join(work, 'out-impossible');
    const file = manifest('impossible', '  mode: quick\n  targets: {workflowLatencyMs: 0.0001, concurrentWorkflowsMs: 0.0001}\n');
    const r = swarmbench(['run', '-f', file, '--out', out, '--categories', 'integration']);
    expect(r.code, r.stderr).toBe(1);
    const doc = ResultDocument.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    expect(doc.tests.map((t) => t.id)).toEqual(['5.1', '5.2', '5.3']);
    expect(doc.tests.find((t) => t.id === '5.1')).toMatchObject({ result: 'Failed' });
    expect(doc.tests.find((t) => t.id === '5.2')).toMatchObject({ result: 'Failed' });
    expect(doc.tests.find((t) => t.id === '5.3')).toMatchObject({ result: 'Passed' });
    expect(doc.summary).toMatchObject({ total: 3, passed: 1, failed: 2, verdict: 'Failed' });
    expect(r.stdout).toMatch(/VERDICT: FAILED · failed: 5\.1, 5\.2/);
  });

  it('the same run with the default targets passes with exit code 0', () => {
    const out = join(work, 'out-ok');
    const r = swarmbench(['run', '-f', manifest('fine', '  mode: quick\n'), '--out', out, '--categories', 'integration']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/VERDICT: PASSED/);
  });
});

describe('the README quick start', () => {
  it('runs the quick example: all 27 tests within 5 minutes, a valid result document', () => {
    const out = join(work, 'out-quick');
    const t0 = performance.now();
    const r = swarmbench(['run', '-f', join(REPO_ROOT, 'examples/benchmarkrun-quick.yaml'), '--out', out], 330_000);
    const seconds = (performance.now() - t0) / 1000;
    expect([0, 1], r.stderr).toContain(r.code);
    expect(seconds).toBeLessThan(300);
    const doc = ResultDocument.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    expect(doc.tests).toHaveLength(27);
    expect(doc.tests.map((t) => t.id)).toEqual([
      '1.1', '1.2', '1.3', '1.4', '1.5', '1.6', '2.1', '2.2', '2.3', '2.4', '2.5', '3.1', '3.2', '3.3', '3.4', '3.5',
      '4.1', '4.2', '4.3', '4.4', '4.5', '5.1', '5.2', '5.3', '6.1', '6.2', '6.3',
    ]);
    const s = doc.summary;
    expect(s.passed + s.failed + s.skipped).toBe(27);
    expect(s.successRate).toBeCloseTo((100 * s.passed) / (27 - s.skipped), 1);
    expect(r.code).toBe(s.verdict === 'Passed' ? 0 : 1);
    for (const t of doc.tests) {
      if (t.result === 'Skipped') expect(t.reason).toBeTruthy();
      if (t.result === 'Passed') expect(t.samples).toBeGreaterThan(0);
    }
    // No GPU here: 2.1 is skipped with its reason, never passed.
    expect(doc.tests.find((t) => t.id === '2.1')).toMatchObject({ result: 'Skipped' });
    expect(doc.environment).toMatchObject({ platform: 'local', node: process.version });
    expect(doc.environment.inference?.gpuInUse).toBe(false);
  }, 340_000);
});
