/**
 * The CLI's input is bounded and strict (src/api/input.ts, src/api/validate.ts): files are read
 * with their limit checked while reading (/dev/zero, a FIFO that never ends), every parse problem
 * of a manifest or a result document is exit 2 naming the file and the field, and a manifest's
 * unknown fields are refused at every level, as the API server's strict field validation does.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatLimit, InputError, MANIFEST_MAX_BYTES, readBounded, RESULT_MAX_BYTES } from '../../src/api/input.ts';
import { formatErrors, MAX_ALIASES, parseManifestText, shapeProblem, validateManifest } from '../../src/api/validate.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';

const work = mkdtempSync(join(tmpdir(), 'swarmbench-input-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const HEAD = 'apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\n';
const linux = process.platform === 'linux';

function write(name: string, text: string): string {
  const f = join(work, name);
  writeFileSync(f, text);
  return f;
}

/** The CLI as a user runs it; `memoryKb` caps its virtual memory (ulimit -v) where sh has it. */
function swarmbench(args: string[], o: { input?: string; memoryKb?: number } = {}) {
  const cmd = o.memoryKb
    ? spawnSync('/bin/sh', ['-c', `ulimit -v ${o.memoryKb} 2>/dev/null; exec "$0" "$@"`, process.execPath, CLI_ENTRY, ...args], { input: o.input, encoding: 'utf8', timeout: 60_000, cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' } })
    : spawnSync(process.execPath, [CLI_ENTRY, ...args], { input: o.input, encoding: 'utf8', timeout: 60_000, cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' } });
  return { code: cmd.status, signal: cmd.signal, stderr: cmd.stderr, stdout: cmd.stdout };
}

/** Nine anchored keys, each a list of nine aliases of the one before: 9^9 values once expanded. */
function aliasBomb(): string {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  const keys = 'abcdefghi';
  for (let i = 1; i < keys.length; i++) lines.push(`${keys[i]}: &${keys[i]} [${Array(9).fill(`*${keys[i - 1]}`).join(', ')}]`);
  return lines.join('\n') + '\n';
}

describe('readBounded: the limit holds while reading', () => {
  it('reads a file up to its limit, and a file of exactly the limit', () => {
    const f = write('ten.txt', '0123456789');
    expect(readBounded(f, 10, { what: 'a test file' })).toBe('0123456789');
    expect(readBounded(f, 1_000, { what: 'a test file' })).toBe('0123456789');
  });

  it('refuses a regular file over the limit before reading it, naming the file, its size and the limit', () => {
    const f = write('eleven.txt', '0123456789A');
    let err: unknown;
    try {
      readBounded(f, 10, { what: 'a test file' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).reason).toBe('too-large');
    expect((err as Error).message).toBe(`${f} is 11 bytes, larger than 10 bytes, the most a test file may be`);
  });

  it.runIf(linux)('stops reading /dev/zero one byte past the limit', () => {
    const t0 = Date.now();
    expect(() => readBounded('/dev/zero', 100_000, { what: 'a manifest' })).toThrow('/dev/zero is larger than 100000 bytes, the most a manifest may be');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it.runIf(linux)('stops reading a FIFO whose writer never stops', async () => {
    const fifo = join(work, 'endless.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const writer = spawn('/bin/sh', ['-c', `exec yes swarmbench > "${fifo}"`], { stdio: 'ignore' });
    const ended = new Promise<void>((res) => writer.on('exit', () => res()));
    try {
      expect(() => readBounded(fifo, 200_000, { what: 'a manifest' })).toThrow(/endless\.fifo is larger than 200000 bytes/);
    } finally {
      // The reader closed its end: the writer ends (SIGPIPE) instead of filling memory anywhere.
      const timer = setTimeout(() => writer.kill('SIGKILL'), 5_000);
      await ended;
      clearTimeout(timer);
    }
  });

  it('names the file a read fails on; `-` is a file name unless stdin is asked for', () => {
    expect(() => readBounded(join(work, 'nope.yaml'), 10, { what: 'a manifest' })).toThrow(/^cannot read .*nope\.yaml: ENOENT$/);
    expect(() => readBounded(work, 10, { what: 'a manifest' })).toThrow(/: EISDIR$/);
    expect(() => readBounded('-', 10, { what: 'a manifest' })).toThrow(/^cannot read -: ENOENT$/);
  });

  it('says the limits as people do', () => {
    expect(formatLimit(MANIFEST_MAX_BYTES)).toBe('1 MB');
    expect(formatLimit(RESULT_MAX_BYTES)).toBe('64 MiB');
    expect(formatLimit(999)).toBe('999 bytes');
  });
});

describe('a manifest: unknown fields refused at every level', () => {
  it('the nine alias keys beside spec are refused, each named, and the bomb is not expanded', () => {
    const t0 = Date.now();
    const r = parseManifestText(`${HEAD}metadata: {name: q}\n${aliasBomb()}spec: {mode: quick}\n`, 'bomb.yaml');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    for (const k of 'abcdefghi') expect(r.errors).toContainEqual({ path: k, message: expect.stringMatching(/^unknown field/) });
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('an alias bomb under a known field (status, which the schema does not walk) is refused too', () => {
    const bomb = aliasBomb().split('\n').filter(Boolean).map((l) => `  ${l}`).join('\n');
    const r = parseManifestText(`${HEAD}metadata: {name: q}\nspec: {mode: quick}\nstatus:\n${bomb}\n`, 'f.yaml');
    expect(r).toEqual({ ok: false, errors: [{ path: '(root)', message: expect.stringMatching(/more than 200000 values with its aliases expanded/) }] });
  });

  it('a recursive alias is a field error, not an exception', () => {
    const text = `${HEAD}metadata: &m {name: q, ownerReferences: [*m]}\nspec: {mode: quick}\n`;
    const r = parseManifestText(text, 'f.yaml');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toEqual({ path: expect.stringMatching(/^metadata\.ownerReferences\[0\]\.ownerReferences/), message: expect.stringMatching(/deeper than 100 levels/) });
    const self = shapeProblem((() => { const o: Record<string, unknown> = {}; o.o = o; return o; })());
    expect(self?.message).toMatch(/recursive alias/);
  });

  it(`follows at most ${MAX_ALIASES} aliases`, () => {
    const many = Array.from({ length: MAX_ALIASES + 1 }, () => '*q').join(', ');
    const r = parseManifestText(`${HEAD}metadata: {name: &q q}\nspec: {mode: quick}\nstatus: {x: [${many}]}\n`, 'f.yaml');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]!.message).toMatch(/aliases exceeded maxAliases \(100\)/);
  });

  it("metadata: ObjectMeta's fields only, the ones the schema does not type checked here", () => {
    const ok = parseManifestText(`${HEAD}metadata: {name: q, generateName: q-, finalizers: [a/b], ownerReferences: [{kind: X}]}\nspec: {mode: quick}\n`, 'f.yaml');
    expect(ok.ok).toBe(true);
    const r = parseManifestText(`${HEAD}metadata: {name: q, nmae: q, finalizers: a, __proto__: {x: 1}}\nspec: {mode: quick}\n`, 'f.yaml');
    expect(r).toEqual({
      ok: false,
      errors: [
        { path: 'metadata.nmae', message: 'unknown field' },
        { path: 'metadata.finalizers', message: 'must be a list of strings' },
        { path: 'metadata.__proto__', message: 'unknown field' },
      ],
    });
  });

  it('status is accepted (kubectl get -o yaml writes it) and dropped', () => {
    const r = parseManifestText(`${HEAD}metadata: {name: q}\nspec: {mode: quick}\nstatus: {phase: Succeeded}\n`, 'f.yaml');
    expect(r.ok && r.value).toEqual({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'q' }, spec: { mode: 'quick' } });
    expect(validateManifest({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'q' }, spec: {}, extra: 1 })).toEqual({
      ok: false,
      errors: [{ path: 'extra', message: expect.stringMatching(/^unknown field/) }],
    });
  });

  it('a duplicated key is refused; documents are split by the YAML parser, not by a pattern', () => {
    const dup = parseManifestText(`${HEAD}metadata: {name: q}\nspec: {mode: quick}\nspec: {mode: full}\n`, 'f.yaml');
    expect(!dup.ok && dup.errors[0]!.message).toMatch(/malformed YAML: duplicated mapping key/);
    const two = parseManifestText(`--- {kind: ConfigMap}\n--- {apiVersion: swarmbench.io/v1alpha1, kind: BenchmarkRun, metadata: {name: q}, spec: {}}\n`, 'f.yaml');
    expect(two.ok).toBe(true);
  });

  it('prints at most 50 errors', () => {
    const text = formatErrors(Array.from({ length: 70 }, (_, i) => ({ path: `k${i}`, message: 'unknown field' })));
    expect(text.split('\n')).toHaveLength(51);
    expect(text).toMatch(/… and 20 more$/);
  });
});

describe('the CLI: bounded input and exit 2 for every problem of it', () => {
  it.runIf(linux)('run -f /dev/zero exits 2 at once with the limit, in bounded memory', () => {
    const t0 = Date.now();
    const r = swarmbench(['run', '-f', '/dev/zero', '--out', join(work, 'zero')], { memoryKb: 4_000_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe('swarmbench run: /dev/zero is larger than 1 MB (1000000 bytes), the most a manifest may be\n');
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(existsSync(join(work, 'zero'))).toBe(false);
  });

  it('submit -f - bounds stdin; a manifest on stdin is read and parsed', () => {
    const big = swarmbench(['submit', '-f', '-'], { input: 'x'.repeat(MANIFEST_MAX_BYTES + 10) });
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/-f: stdin is larger than 1 MB/);
    const bad = swarmbench(['submit', '-f', '-'], { input: `${HEAD}metadata: {name: q, nmae: x}\nspec: {mode: quick}\n` });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid BenchmarkRun in stdin:\n {2}metadata\.nmae: unknown field/);
  });

  it('the nine alias keys: run refuses the manifest naming a key and starts nothing', () => {
    const f = write('bomb.yaml', `${HEAD}metadata: {name: bomb}\n${aliasBomb()}spec: {mode: quick}\n`);
    const r = swarmbench(['run', '-f', f, '--out', join(work, 'bomb')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ {2}a: unknown field/m);
    expect(existsSync(join(work, 'bomb'))).toBe(false);
  });

  it('a parse problem other than YAML syntax (a recursive alias) exits 2, no stack trace', () => {
    const f = write('cycle.yaml', `${HEAD}metadata: &m {name: cycle, ownerReferences: [*m]}\nspec: {mode: quick}\n`);
    for (const cmd of [['run', '-f', f, '--out', join(work, 'cycle')], ['submit', '-f', f]]) {
      const r = swarmbench(cmd);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/invalid BenchmarkRun in .*cycle\.yaml:\n {2}metadata\.ownerReferences\[0\].*deeper than 100 levels/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it.runIf(linux)('report and --baseline read result documents with the 64 MiB bound', () => {
    const rep = swarmbench(['report', '/dev/zero'], { memoryKb: 4_000_000 });
    expect(rep.code).toBe(2);
    expect(rep.stderr).toMatch(/\/dev\/zero is larger than 64 MiB \(67108864 bytes\), the most a result document may be/);
    const base = swarmbench(['run', '-f', join(REPO_ROOT, 'examples/benchmarkrun-quick.yaml'), '--baseline', '/dev/zero', '--out', join(work, 'base')]);
    expect(base.code).toBe(2);
    expect(base.stderr).toMatch(/--baseline: \/dev\/zero is larger than 64 MiB/);
    const cm = swarmbench(['submit', '-f', join(REPO_ROOT, 'examples/benchmarkrun-quick.yaml'), '--baseline', '/dev/zero']);
    expect(cm.code).toBe(2);
    expect(cm.stderr).toMatch(/--baseline: \/dev\/zero is larger than 1 MB .*give --baseline RUN/);
  });
});
