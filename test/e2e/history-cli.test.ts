/**
 * `swarmbench history` as a user runs it: the real CLI in a child process over folders of
 * results.json files (the fixture quick run on twenty nights, test/support/history.ts), with a
 * planted shift, a malformed file, a document of another kind, a run copied twice, an empty
 * folder, too many files and bad options; stdout, stderr and exit codes.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { History } from '../../src/api/history.ts';
import { SPEC } from '../../src/cli/completion.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';
import { nightly, noisySeries, QUICK } from '../support/history.ts';

const work = mkdtempSync(join(tmpdir(), 'swarmbench-history-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function swarmbench(args: string[]) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const write = (file: string, text: string) => {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
};

const runs = join(work, 'runs');
const RUNS = 20;
/** The first night of the planted shift: 12 nights before it, 8 since (enough for the 25 tests with a value, docs/trends.md "How long a shift must last"). */
const FROM = 12;

beforeAll(() => {
  // 1.3 (cross-node latency) 40 % slower from the thirteenth night on; 5.1 noisy but level.
  const v13 = noisySeries(3, RUNS, 0.1, 0.03, { from: FROM, factor: 1.4 });
  const v51 = noisySeries(4, RUNS, 3.5, 0.03);
  for (let i = 0; i < RUNS; i++) write(join(runs, `nightly-${String(i).padStart(2, '0')}`, 'results.json'), JSON.stringify(nightly(i, { '1.3': v13[i]!, '5.1': v51[i]! })));
  write(join(runs, 'broken', 'results.json'), '{"kind": "BenchmarkResult", ');
  write(join(runs, 'other', 'results.json'), JSON.stringify({ kind: 'Something' }));
  write(join(runs, 'copy', 'results.json'), JSON.stringify(nightly(3, { '1.3': v13[3]!, '5.1': v51[3]! })));
  write(join(runs, 'notes', 'README.txt'), 'not a run');
  mkdirSync(join(work, 'empty'));
});

describe('swarmbench history DIR', () => {
  it('prints every test with its latest value, sparkline and runs, and the planted shift where it starts', () => {
    const r = swarmbench(['history', runs]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('20 runs, 2026-01-01 03:00 to 2026-01-20 03:00 UTC (latest nightly-19); 2 files skipped');
    const tests = lines.slice(2);
    expect(tests).toHaveLength(QUICK.tests.length);
    const l13 = tests.find((l) => l.startsWith('1.3 '))!;
    expect(l13).toMatch(/^1\.3  Cross-node latency +0\.1\d\d ms  [▁-█]{12}│[▁-█]{8} +20 runs  shift from nightly-12 \(\+\d\d\.\d % worse, p=0\.0\d+\)$/);
    expect(tests.find((l) => l.startsWith('5.1 '))).toMatch(/^5\.1  End-to-end workflow +\d\.\d\d ms  [▁-█]{20} +20 runs$/);
    expect(tests.filter((l) => l.includes('shift from'))).toHaveLength(1);
    // The malformed file and the other kind are named on stderr; the copy is counted once.
    expect(r.stderr).toMatch(new RegExp(`skipped ${join(runs, 'broken', 'results.json')}: not JSON`));
    expect(r.stderr).toMatch(new RegExp(`skipped ${join(runs, 'other', 'results.json')}: not a SwarmBench result document`));
    expect(r.stderr).toMatch(/runs\/nightly-03\/results\.json is the run of .*runs\/copy\/results\.json \(nightly-03, attempt 1\), counted once\n/);
  });

  it('--json gives the runs in time order, the skipped files, the trends and a valid history', () => {
    const r = swarmbench(['history', runs, '--json', '--test', '1.3', '-t', '5.1']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.runs.map((x: { run: string }) => x.run)).toEqual(Array.from({ length: RUNS }, (_, i) => `nightly-${String(i).padStart(2, '0')}`));
    expect(out.skipped.map((s: { file: string }) => s.file).sort()).toEqual([join(runs, 'broken', 'results.json'), join(runs, 'other', 'results.json')]);
    // Corrected for every test of the history with enough runs (the fixture's 25 with a value), not only the two shown.
    expect(out.method).toEqual({ window: 20, looks: 2, tests: QUICK.tests.filter((t) => t.value !== null).length, last: 60, minRuns: 3, alpha: 0.05, minEffectPct: 5 });
    expect(out.trends.map((t: { id: string }) => t.id)).toEqual(['1.3', '5.1']);
    expect(out.trends[0]).toMatchObject({ id: '1.3', unit: 'ms', runs: RUNS, comparable: RUNS, lastRun: 'nightly-19', shift: { index: FROM, run: 'nightly-12', direction: 'worse', splits: 15, looks: 2, tests: out.method.tests } });
    expect(out.trends[0].shift.changePct).toBeGreaterThan(25);
    expect(out.trends[1].shift).toBeNull();
    const h = History.parse(out.history);
    expect(h.tests.map((t) => t.id)).toEqual(['1.3', '5.1']);
    expect(h.tests[0]!.points).toHaveLength(RUNS);
  });

  it('a shift that came with a change of the host\'s load is printed as the machine\'s', () => {
    // The same 1.3 step from the thirteenth night, but other processes took 2 to 4 % of the CPUs
    // before it and 30 to 32 % since (environment.hostLoad, as a local run records it).
    const dir = join(work, 'busier');
    const v13 = noisySeries(3, RUNS, 0.1, 0.03, { from: FROM, factor: 1.4 });
    for (let i = 0; i < RUNS; i++) {
      const d = nightly(i, { '1.3': v13[i]! });
      const otherPct = (i < FROM ? 2 : 30) + (i % 3);
      const doc = { ...d, environment: { ...d.environment, platform: 'local', hostLoad: { wallSeconds: 190, hostCpus: 2, busyCpus: 1, ownCpus: 0.9, otherCpus: otherPct / 50, otherPct, loadavg1: { start: 1, end: 1 } } } };
      write(join(dir, `nightly-${String(i).padStart(2, '0')}`, 'results.json'), JSON.stringify(doc));
    }
    const r = swarmbench(['history', dir, '--test', '1.3']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ shift from nightly-12 \(\+\d\d\.\d % worse, p=0\.0\d+\): the machine changed, other processes 3\.0 % → 31\.0 % of the CPUs \(p[=<]0\.0\d+\)\n$/);
    const json = JSON.parse(swarmbench(['history', dir, '--test', '1.3', '--json']).stdout);
    expect(json.trends[0].shift.machine).toMatchObject({ before: 3, after: 31, runs: { before: 12, after: 8 } });
    expect(json.history.tests[0].points.map((p: { hostOtherPct: number }) => p.hostOtherPct)).toEqual(Array.from({ length: RUNS }, (_, i) => (i < FROM ? 2 : 30) + (i % 3)));
  });

  it('--window and --last change what is compared; files can be given one by one', () => {
    // With 3 runs before a split, 3 against 8 cannot reach the corrected level.
    const narrow = swarmbench(['history', runs, '--test', '1.3', '--window', '3']);
    expect(narrow.code, narrow.stderr).toBe(0);
    expect(narrow.stdout).not.toMatch(/shift from/);
    const last = swarmbench(['history', runs, '--test', '1.3', '--last', '5', '--width', '10']);
    expect(last.code, last.stderr).toBe(0);
    expect(last.stdout).toMatch(/^20 runs, .*; each test shows its last 5; 2 files skipped\n/);
    expect(last.stdout).toMatch(/ {2}[▁-█]{5} +5 runs\n$/);
    const files = swarmbench(['history', join(runs, 'nightly-00', 'results.json'), join(runs, 'nightly-01', 'results.json'), join(runs, 'nightly-01')]);
    expect(files.code, files.stderr).toBe(0);
    expect(files.stdout).toMatch(/^2 runs, 2026-01-01 03:00 to 2026-01-02 03:00 UTC/);
    expect(files.stderr).toBe('');
  });
});

describe('swarmbench history: what it refuses (exit 2)', () => {
  it('an empty folder, a path that does not exist, or nothing readable', () => {
    const empty = swarmbench(['history', join(work, 'empty')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe(`swarmbench history: no results.json in ${join(work, 'empty')} (nor in their subfolders)\n`);
    expect(empty.stdout).toBe('');
    const none = swarmbench(['history', join(work, 'nope')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`swarmbench history: cannot read ${join(work, 'nope')}: ENOENT\n`);
    const bad = swarmbench(['history', join(runs, 'broken'), join(runs, 'other')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/skipped .*broken\/results\.json: not JSON/);
    expect(bad.stderr).toMatch(/swarmbench history: none of the 2 files is a readable result document\n$/);
  });

  it('bad options, each named', () => {
    const cases: [string[], RegExp][] = [
      [[], /give at least one folder or results\.json/],
      [[runs, '--window', '2'], /--window: "2" is not an integer in \[3, 500\]/],
      [[runs, '--last', '0'], /--last: "0" is not an integer in \[1, 500\]/],
      [[runs, '--looks', '0'], /--looks: "0" is not an integer in \[1, 10\]/],
      [[runs, '--width', 'wide'], /--width: "wide" is not an integer in \[4, 200\]/],
      [[runs, '--test', '9.9'], /--test: "9\.9" is not a test id/],
      [[runs, '--test', '2.6'], /no run has test 2\.6 \(tests: 1\.1, 1\.2/],
      [[runs, '--since', 'x'], /Unknown option '--since'/],
    ];
    for (const [args, message] of cases) {
      const r = swarmbench(['history', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('more than 1000 result files', () => {
    const many = join(work, 'many');
    for (let i = 0; i <= 1000; i++) write(join(many, `r${i}`, 'results.json'), '{}');
    const r = swarmbench(['history', many]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/more than 1000 result documents in .*many; give fewer folders/);
  });
});

describe('swarmbench history: help and completion', () => {
  it('--help exits 0, and every option it prints is in the completion table', () => {
    const r = swarmbench(['history', '--help']);
    expect(r.code).toBe(0);
    const flags = [...new Set([...r.stdout.matchAll(/(?:^|[\s,[(])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!))];
    expect(flags).toEqual(expect.arrayContaining(['--test', '--json', '--window', '--looks', '--last', '--width']));
    const spec = SPEC.find((c) => c.name === 'history')!.flags.flatMap((f) => f.names);
    for (const f of flags) expect(spec, f).toContain(f);
    expect(swarmbench(['--help']).stdout).toMatch(/\n {2}history +the trend of each test/);
  });
});
