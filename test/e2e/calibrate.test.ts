/**
 * `swarmbench calibrate` as a user runs it: a child process, real runs of the suite (the
 * integration category only, about 5 s a run here, and one slowed profile of about 45 s), the
 * matrix on the terminal, the files, the exit codes (0 the calibration holds, 1 with each problem
 * named, 2 bad input with nothing started, 130 interrupted).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ResultDocument } from '../../src/api/schema.ts';
import { parseSensitivityBlock } from '../../src/cli/calibrate/matrix.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';

const work = mkdtempSync(join(tmpdir(), 'swarmbench-calibrate-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const QUICK = join(REPO_ROOT, 'examples/benchmarkrun-quick.yaml');

function swarmbench(args: string[], timeoutMs = 170_000) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function manifest(name: string, specYaml: string): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}}\nspec:\n${specYaml}`);
  return file;
}

interface Sensitivity {
  kind: string;
  ok: boolean;
  problems: string[];
  conditions: { mode: string; cpus: number; node: string; swarmbenchVersion: string; durationSeconds: number; categories: string[]; allCells: boolean };
  profiles: { name: string; defect: string | null; categories: string[]; runSeconds: number; verdict: string | null; results?: string }[];
  tests: { id: string; meantToBreak: string[]; brokenBy: string[]; cells: Record<string, { result: string; value: number | null; samples: number; reason?: string }> }[];
}

const readJson = (dir: string): Sensitivity => JSON.parse(readFileSync(join(dir, 'sensitivity.json'), 'utf8')) as Sensitivity;

describe('swarmbench calibrate: bad input exits 2, names the flag or field, starts nothing', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown profile', ['-f', QUICK, '--profiles', 'memory-leak,lost-task'], /--profiles: unknown defect "lost-task" \(known: no-balancing, .*slow-handoff.*no-fallback\)/],
    ['a value out of bounds', ['-f', QUICK, '--profiles', 'slow-handoff:0'], /--profiles: defect "slow-handoff": ms .* must be 1\.\.600000, got 0/],
    ['an unknown category', ['-f', QUICK, '--categories', 'integration,warp'], /--categories: unknown category "warp"/],
    ['--agent-command', ['-f', QUICK, '--agent-command', 'node my-agent.js'], /--agent-command: calibrate .* reference agent only/],
    ['--agent-url', ['-f', QUICK, '--agent-url', 'http://127.0.0.1:9'], /--agent-url: calibrate .* reference agent only/],
    ['no file', ['--profiles', 'memory-leak'], /-f FILE is required/],
  ];
  it.each(cases)('%s', (name, args, message) => {
    const out = join(work, `bad-${name.replace(/\W+/g, '-')}`);
    const r = swarmbench(['calibrate', ...args, '--out', out]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it('a manifest naming an image, or with defects of its own', () => {
    const img = swarmbench(['calibrate', '-f', manifest('img', '  agents: {image: example.com/agent:1}\n'), '--out', join(work, 'bad-img')]);
    expect(img.code).toBe(2);
    expect(img.stderr).toMatch(/spec\.agents\.image: "example\.com\/agent:1" is not the reference agent/);
    const own = swarmbench(['calibrate', '-f', manifest('own', '  agents: {defects: [lost-tasks]}\n'), '--out', join(work, 'bad-own')]);
    expect(own.code).toBe(2);
    expect(own.stderr).toMatch(/spec\.agents\.defects: calibrate switches the profiles on itself/);
    expect(existsSync(join(work, 'bad-img'))).toBe(false);
    expect(existsSync(join(work, 'bad-own'))).toBe(false);
  });

  it('--help lists the options', () => {
    const r = swarmbench(['calibrate', '--help']);
    expect(r.code).toBe(0);
    for (const f of ['--file', '--out', '--profiles', '--categories', '--all-cells', '--quiet']) expect(r.stdout).toContain(f);
  });
});

describe('swarmbench calibrate: real calibrations', () => {
  it('holds (exit 0): the clean agent passes 5.1-5.3 and memory-leak fails 5.3; a profile with no test in the categories is not run', () => {
    const out = join(work, 'holds');
    const r = swarmbench(['calibrate', '-f', QUICK, '--categories', 'integration', '--profiles', 'memory-leak,slow-peers', '--out', out]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toMatch(/not run \(none of the tests they are meant to break is in integration\): slow-peers/);
    // The matrix on the terminal.
    expect(r.stdout).toMatch(/^test\s+target\s+clean\s+memory-leak$/m);
    expect(r.stdout).toMatch(/^5\.1 End-to-end workflow\s+<5000 ms\s+pass \S+\s+pass \S+$/m);
    expect(r.stdout).toMatch(/^5\.3 Resource cleanup\s+<50 MB\s+pass \S+\s+FAIL \S+$/m);
    expect(r.stdout).toContain('calibration holds');
    // The files.
    const j = readJson(out);
    expect(j.kind).toBe('SwarmBenchSensitivity');
    expect(j.ok).toBe(true);
    expect(j.profiles.map((p) => [p.name, p.defect, p.categories])).toEqual([
      ['clean', null, ['integration']],
      ['memory-leak', 'memory-leak:256', ['integration']],
    ]);
    for (const p of j.profiles) {
      expect(p.runSeconds).toBeGreaterThan(0);
      const doc = ResultDocument.parse(JSON.parse(readFileSync(join(out, p.results!), 'utf8')));
      expect(p.results).toBe(`runs/${p.name}/results.json`);
      expect(doc.run.categories).toEqual(['integration']);
    }
    expect(j.conditions).toMatchObject({ mode: 'quick', categories: ['integration'], allCells: false });
    expect(j.conditions.cpus).toBeGreaterThan(0);
    const t53 = j.tests.find((t) => t.id === '5.3')!;
    expect(t53.meantToBreak).toEqual(['memory-leak']);
    expect(t53.brokenBy).toEqual(['memory-leak']);
    // A real leak: 256 KiB for every workflow step of 5.1 and 5.2 is far past 50 MB; the clean agent is far inside.
    expect(t53.cells['memory-leak']!.value!).toBeGreaterThan(75);
    expect(t53.cells.clean!.value!).toBeLessThan(35);
    const md = readFileSync(join(out, 'sensitivity.md'), 'utf8');
    expect(md).toContain('**Result: the calibration holds.**');
    expect(md).toMatch(/- `memory-leak`: broke it \(Failed, [\d.]+ MB, \d+ % past the target\)/);
    expect(parseSensitivityBlock(md).cells['5.3']).toEqual({ clean: 'Passed', 'memory-leak': 'Failed' });
  }, 170_000);

  it('does not hold (exit 1, each problem named) when a profile is too mild to break its tests; --all-cells runs a profile outside its tests', () => {
    const out = join(work, 'mild');
    // slow-handoff at 400 ms: 4 handed-over hops make a workflow about 1.6 s, inside both targets.
    const r = swarmbench(['calibrate', '-f', QUICK, '--categories', 'integration', '--profiles', 'slow-handoff:400,slow-peers', '--all-cells', '--quiet', '--out', out]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('5.1 passed under every profile meant to break it (slow-handoff)');
    expect(r.stderr).toContain('5.2 passed under every profile meant to break it (slow-handoff)');
    const j = readJson(out);
    expect(j.ok).toBe(false);
    expect(j.profiles.map((p) => p.name)).toEqual(['clean', 'slow-handoff', 'slow-peers']);
    const t51 = j.tests.find((t) => t.id === '5.1')!;
    // Measured, not assumed: every workflow's hops really waited (4 of its 5 steps are handed over).
    expect(t51.cells['slow-handoff']!.value!).toBeGreaterThanOrEqual(1600);
    expect(t51.cells['slow-handoff']!.value!).toBeLessThan(5000);
    // slow-peers ran on integration only because of --all-cells; each hop paid its 25 ms.
    expect(t51.cells['slow-peers']!.result).toBe('Passed');
    expect(t51.cells['slow-peers']!.value!).toBeGreaterThanOrEqual(100);
    expect(t51.cells.clean!.value!).toBeLessThan(t51.cells['slow-peers']!.value!);
    expect(readFileSync(join(out, 'sensitivity.md'), 'utf8')).toContain('- 5.2 passed under every profile meant to break it (slow-handoff)');
  }, 170_000);

  // The step that is running when the interrupt comes ends when its runner does: integration's
  // workflows do not watch the runner's abort, so the rest of that step still runs (about 30 s here).
  it('exits 130 when interrupted, with the runs finished so far in its files', async () => {
    const out = join(work, 'interrupted');
    const child = spawn(process.execPath, [CLI_ENTRY, 'calibrate', '-f', QUICK, '--categories', 'integration', '--profiles', 'slow-handoff:300', '--out', out], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        err += String(d);
        if (/\[2\/2 slow-handoff\] \[1\/1\] 5\.1 end-to-end workflow: 2\//.test(err) && !child.killed) child.kill('SIGINT');
      });
      child.stdout.resume();
      child.on('exit', (c) => resolve(c));
    });
    expect(code, err).toBe(130);
    const j = readJson(out);
    expect(j.profiles.map((p) => [p.name, p.verdict])).toEqual([
      ['clean', 'Passed'],
      ['slow-handoff', expect.any(String)],
    ]);
  }, 90_000);
});
