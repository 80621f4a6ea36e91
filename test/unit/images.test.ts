/**
 * Static checks of images/, which run everywhere (`npm test` needs no container engine): bases
 * (pinned by digest, an ARG's default included), stages, the dependency install, the user, the
 * entrypoint, that every COPY source exists and gets into the build context, that the Node floor
 * of bin/swarmbench.js admits the Node the GPU image runs, and that images/pin-digests.sh pins
 * every base. The main image is also built and run for real by test/images/image.itest.ts
 * (`npm run test:images`); the GPU image cannot be built here (CUDA base images), so these checks
 * are all it gets.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/paths.ts';

export interface Instruction {
  /** Upper-cased keyword: FROM, RUN, COPY, ... */
  op: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  args: string;
  /** 1-based line of the keyword. */
  line: number;
}

/**
 * Parses a Dockerfile into instructions: `\` continues a line (the escape directive is not
 * supported and refused), comment lines and blank lines (also inside a continuation) are dropped,
 * parser directives (`# syntax=...`) are ignored as comments, and a file ending in a continuation
 * is an error.
 */
export function parseDockerfile(text: string): Instruction[] {
  if (/^#\s*escape\s*=/im.test(text)) throw new Error('the escape directive is not supported');
  const out: Instruction[] = [];
  let cur: { parts: string[]; line: number } | undefined;
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const trimmed = raw.trim();
    // Comment lines, and empty lines (also inside a continuation, as Docker does) are dropped.
    if (trimmed.startsWith('#') || trimmed === '') continue;
    const continued = /\\\s*$/.test(raw);
    const body = continued ? raw.replace(/\\\s*$/, '') : raw;
    if (!cur) cur = { parts: [], line: i + 1 };
    cur.parts.push(body.trim());
    if (!continued) {
      const joined = cur.parts.filter((p) => p !== '').join(' ');
      const m = /^(\S+)\s*(.*)$/s.exec(joined);
      if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: cur.line });
      cur = undefined;
    }
  }
  if (cur) throw new Error(`line ${cur.line}: the instruction ends in a line continuation`);
  return out;
}

/** The exec form (a JSON array) of CMD/ENTRYPOINT/RUN, or null for the shell form. */
export function execForm(args: string): string[] | null {
  if (!args.startsWith('[')) return null;
  const v: unknown = JSON.parse(args);
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`not an exec form: ${args}`);
  return v;
}

/** Splits COPY/ADD arguments into flags, sources and the destination. */
export function copyArgs(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const words = execForm(args) ?? args.split(/\s+/).filter((w) => w !== '');
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith('--')) {
    const [k, v = ''] = words.shift()!.slice(2).split('=', 2);
    flags[k!] = v;
  }
  const dest = words.pop();
  if (dest === undefined || words.length === 0) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { flags, sources: words, dest };
}

export interface Stage {
  /** The base, with the ARGs it names (`${NAME}`, `$NAME`) replaced by their values. */
  image: string;
  /** The base as the FROM line writes it. */
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/**
 * The stages. A FROM may name the ARGs declared before the first FROM (`ARG NAME=default`, then
 * `FROM ${NAME}`); their value is `buildArgs[NAME]` (what `--build-arg` gives) or the default. A
 * FROM that names an ARG with no value, or one not declared before the first FROM, is an error.
 */
export function stages(instrs: Instruction[], buildArgs: Record<string, string> = {}): Stage[] {
  const out: Stage[] = [];
  const args = new Map<string, string | undefined>();
  for (const ins of instrs) {
    if (ins.op === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      const image = m[1]!.replace(/\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))/g, (_, braced: string | undefined, bare: string | undefined) => {
        const name = (braced ?? bare)!;
        const value = args.get(name);
        if (value === undefined || value === '') throw new Error(`line ${ins.line}: FROM ${m[1]} names ARG ${name}, which has no value before the first FROM`);
        return value;
      });
      if (/\$/.test(image)) throw new Error(`line ${ins.line}: FROM ${m[1]}: only \${NAME} and $NAME are supported`);
      out.push({ image, from: m[1]!, name: m[2], instructions: [] });
    } else if (ins.op === 'ARG' && out.length === 0) {
      const m = /^([A-Za-z_]\w*)(?:=(\S*))?$/.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read ARG ${ins.args}`);
      args.set(m[1]!, buildArgs[m[1]!] ?? m[2]?.replace(/^(["'])(.*)\1$/, '$2'));
    } else {
      if (out.length === 0) throw new Error(`line ${ins.line}: ${ins.op} before the first FROM`);
      out.at(-1)!.instructions.push(ins);
    }
  }
  return out;
}

/**
 * A .dockerignore matcher with Docker's rules: patterns are matched against the path and each of
 * its parent folders, `*` and `?` stay within one path segment, `**` spans any number of them, a
 * leading `!` re-includes, and the last matching pattern wins.
 */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pat = (negate ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < pat.length; i++) {
        const c = pat[i]!;
        if (c === '*' && pat[i + 1] === '*') {
          i++;
          if (pat[i + 1] === '/') {
            i++;
            re += '(?:.*/)?';
          } else re += '.*';
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const segs = path.split('/');
    const prefixes = segs.map((_, i) => segs.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

const IMAGES = {
  swarmbench: 'images/swarmbench/Dockerfile',
  'swarmbench-gpu': 'images/swarmbench-gpu/Dockerfile',
} as const;

function load(rel: string): { instrs: Instruction[]; stages: Stage[] } {
  const instrs = parseDockerfile(readFileSync(join(REPO_ROOT, rel), 'utf8'));
  return { instrs, stages: stages(instrs) };
}

/** `node:24.21-bookworm-slim[@sha256:...]` -> [24, 21]; null when the reference is not an official node image pinned by major.minor. */
function nodeTag(image: string): [number, number] | null {
  const m = /^(?:docker\.io\/(?:library\/)?)?node:(\d+)\.(\d+)(?:\.\d+)?-[a-z]+(?:-slim)?(?:@sha256:[0-9a-f]{64})?$/.exec(image);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function binFloor(): [number, number] {
  const text = readFileSync(join(REPO_ROOT, 'bin/swarmbench.js'), 'utf8');
  const m = /const MIN = \[(\d+), (\d+)\]/.exec(text);
  if (!m) throw new Error('bin/swarmbench.js: no `const MIN = [major, minor]`');
  return [Number(m[1]), Number(m[2])];
}

const text = (rel: string): string => readFileSync(join(REPO_ROOT, rel), 'utf8');

const atLeast = (v: [number, number], floor: [number, number]) => v[0] > floor[0] || (v[0] === floor[0] && v[1] >= floor[1]);

describe('the Dockerfile parser', () => {
  it('joins continuations, drops comments inside them, reads stages and exec forms', () => {
    const instrs = parseDockerfile(
      '# syntax=docker/dockerfile:1.7\nARG X=1\nFROM a:1 AS one\nRUN a \\\n  # note\n  && b\n\nfrom --platform=$BUILDPLATFORM b:2\nENTRYPOINT ["x", "y"]\nCOPY --from=one --chown=1:1 /a /b ./c/\n',
    );
    expect(instrs.map((i) => i.op)).toEqual(['ARG', 'FROM', 'RUN', 'FROM', 'ENTRYPOINT', 'COPY']);
    expect(instrs[2]).toEqual({ op: 'RUN', args: 'a && b', line: 4 });
    const st = stages(instrs);
    expect(st.map((s) => [s.image, s.name])).toEqual([['a:1', 'one'], ['b:2', undefined]]);
    expect(execForm(instrs[4]!.args)).toEqual(['x', 'y']);
    expect(execForm('x y')).toBeNull();
    expect(copyArgs(instrs[5]!.args)).toEqual({ flags: { from: 'one', chown: '1:1' }, sources: ['/a', '/b'], dest: './c/' });
    expect(() => parseDockerfile('FROM a\nRUN x \\\n')).toThrow(/continuation/);
  });

  it('resolves a FROM that names an ARG declared before the first FROM (its default, or the build arg)', () => {
    const instrs = parseDockerfile('ARG BASE=a:1@sha256:00\nARG OTHER\nFROM ${BASE} AS one\nARG LATE=x\nFROM $BASE\n');
    expect(stages(instrs).map((s) => [s.image, s.from, s.name])).toEqual([['a:1@sha256:00', '${BASE}', 'one'], ['a:1@sha256:00', '$BASE', undefined]]);
    expect(stages(instrs, { BASE: 'local/a:1' }).map((s) => s.image)).toEqual(['local/a:1', 'local/a:1']);
    expect(() => stages(parseDockerfile('ARG OTHER\nFROM ${OTHER}\n'))).toThrow(/ARG OTHER, which has no value/);
    expect(() => stages(parseDockerfile('FROM a\nARG LATE=x\nFROM ${LATE}\n'))).toThrow(/ARG LATE/);
  });

  it('matches .dockerignore patterns the way Docker does', () => {
    const ignored = dockerignore('**\n!src\n**/node_modules\n*.md\n!README.md\n');
    expect(ignored('test/unit/a.ts')).toBe(true);
    expect(ignored('src/cli/main.ts')).toBe(false);
    expect(ignored('src/x/node_modules/y.js')).toBe(true);
    expect(ignored('NOTES.md')).toBe(true);
    expect(ignored('README.md')).toBe(false);
    expect(dockerignore('out\n')('out/results.json')).toBe(true);
    expect(dockerignore('out\n')('docs/out.md')).toBe(false);
  });
});

describe.each(Object.entries(IMAGES))('image %s', (name, rel) => {
  const { instrs, stages: st } = load(rel);
  const final = st.at(-1)!;
  const all = (op: string, list: Instruction[] = instrs) => list.filter((i) => i.op === op);

  it('is multi-stage: dependencies are installed in a stage of their own, the last stage is the runtime', () => {
    expect(st.length).toBeGreaterThanOrEqual(2);
    const names = st.map((s) => s.name).filter(Boolean);
    expect(new Set(names).size).toBe(names.length);
    expect(all('RUN', final.instructions).some((r) => /\bnpm (ci|install)\b/.test(r.args))).toBe(false);
    expect(all('COPY', final.instructions).some((c) => copyArgs(c.args).flags.from !== undefined && c.args.includes('node_modules'))).toBe(true);
  });

  it('has the right bases', () => {
    const bases = st.map((s) => s.image);
    if (name === 'swarmbench') {
      for (const b of bases) expect(nodeTag(b)?.[0], b).toBe(24);
    } else {
      expect(final.image).toMatch(/^nvidia\/cuda:11\.8\.0-cudnn8-runtime-ubuntu22\.04@sha256:[0-9a-f]{64}$/);
      const nodes = bases.filter((b) => nodeTag(b));
      expect(nodes.length).toBeGreaterThanOrEqual(1);
      for (const b of nodes) expect(nodeTag(b)?.[0], b).toBe(22);
      // The node binary comes from the official Node 22 stage.
      const copiesNode = all('COPY', final.instructions).some((c) => {
        const a = copyArgs(c.args);
        const from = st.find((s) => s.name === a.flags.from);
        return from !== undefined && nodeTag(from.image)?.[0] === 22 && a.sources.includes('/usr/local/bin/node');
      });
      expect(copiesNode).toBe(true);
    }
    // Every image is pinned: a tag (never `latest`) for the reader and a digest for Docker
    // (images/pin-digests.sh refreshes them); the BuildKit frontend too.
    for (const b of bases.filter((b) => !st.some((s) => s.name === b))) expect(b).toMatch(/^[^:@\s]+:(?!latest@)[^@\s]+@sha256:[0-9a-f]{64}$/);
    if (name === 'swarmbench') {
      // The base is `ARG NODE_IMAGE` (pinned by its default): images/build.sh reads that line and
      // passes --build-arg NODE_IMAGE=<a local stand-in> where no registry is reachable.
      expect(st.filter((s) => !st.some((o) => o.name === s.from)).map((s) => s.from)).toEqual(st.map(() => '${NODE_IMAGE}'));
      expect(text(rel)).toMatch(/^ARG NODE_IMAGE=node:\d+\.\d+-[a-z]+-slim@sha256:[0-9a-f]{64}$/m);
      expect(stages(instrs, { NODE_IMAGE: 'docker.io/library/node:local' }).map((s) => s.image)).toEqual(st.map(() => 'docker.io/library/node:local'));
    }
    expect(readFileSync(join(REPO_ROOT, rel), 'utf8').split('\n')[0]).toMatch(/^# syntax=docker\/dockerfile:[\d.]+@sha256:[0-9a-f]{64}$/);
  });

  it('installs exactly the locked runtime dependencies: npm ci --omit=dev', () => {
    const runs = all('RUN').map((r) => r.args);
    const ci = runs.find((r) => /\bnpm ci\b/.test(r));
    expect(ci, 'npm ci').toBeDefined();
    expect(ci).toMatch(/--omit=dev\b/);
    expect(ci).toMatch(/--ignore-scripts\b/);
    expect(runs.join('\n')).not.toMatch(/npm install(?![^&]*--no-save)/);
  });

  it('runs as a numeric non-root user, with NODE_ENV=production', () => {
    const users = all('USER', final.instructions);
    expect(users.length).toBeGreaterThanOrEqual(1);
    const user = users.at(-1)!.args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(user.split(':').map(Number).every((n) => n !== 0)).toBe(true);
    expect(user).toBe('65532:65532');
    expect(all('ENV', final.instructions).some((e) => /\bNODE_ENV=production\b/.test(e.args))).toBe(true);
  });

  it('has ENTRYPOINT exactly ["swarmbench"], linked on PATH to bin/swarmbench.js', () => {
    const eps = all('ENTRYPOINT', final.instructions);
    expect(eps.length).toBe(1);
    expect(execForm(eps[0]!.args)).toEqual(['swarmbench']);
    expect(all('RUN', final.instructions).some((r) => /ln -s \/app\/bin\/swarmbench\.js \/usr\/local\/bin\/swarmbench\b/.test(r.args))).toBe(true);
    expect(all('WORKDIR', final.instructions).at(-1)?.args).toBe('/app');
  });

  it('copies only what exists, and only application files (no tests)', () => {
    const copies = all('COPY').filter((c) => copyArgs(c.args).flags.from === undefined);
    expect(copies.length).toBeGreaterThan(0);
    const sources = copies.flatMap((c) => copyArgs(c.args).sources);
    for (const s of sources) expect(existsSync(join(REPO_ROOT, s)), s).toBe(true);
    for (const need of ['package.json', 'package-lock.json', 'bin', 'src', 'crds']) expect(sources).toContain(need);
    expect(sources.some((s) => /^(test|examples|node_modules|out)\b/.test(s))).toBe(false);
    expect(all('ADD')).toEqual([]);
  });

  it('has a BuildKit ignore file beside it that keeps out node_modules, tests, .git and out/, and lets in what is copied', () => {
    const ignoreFile = join(REPO_ROOT, `${rel}.dockerignore`);
    expect(existsSync(ignoreFile)).toBe(true);
    expect(dirname(ignoreFile)).toBe(join(REPO_ROOT, dirname(rel)));
    const ignored = dockerignore(readFileSync(ignoreFile, 'utf8'));
    for (const p of ['node_modules/zod/package.json', 'test/unit/images.test.ts', '.git/HEAD', 'out/results.json', 'src/x/node_modules/a.js']) {
      expect(ignored(p), p).toBe(true);
    }
    for (const p of ['package.json', 'package-lock.json', 'bin/swarmbench.js', 'src/cli/main.ts', 'src/api/schema.ts', 'crds/swarmbench.io_benchmarkruns.yaml']) {
      expect(ignored(p), p).toBe(false);
    }
  });
});

describe('Node versions agree', () => {
  const floor = binFloor();
  const gpuNode = stages(parseDockerfile(readFileSync(join(REPO_ROOT, IMAGES['swarmbench-gpu']), 'utf8')))
    .map((s) => nodeTag(s.image))
    .find((v) => v !== null)!;
  const mainNode = nodeTag(stages(parseDockerfile(readFileSync(join(REPO_ROOT, IMAGES.swarmbench), 'utf8'))).at(-1)!.image)!;
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    engines?: { node?: string };
    devDependencies?: Record<string, string>;
    dependencies?: Record<string, string>;
  };

  it('bin/swarmbench.js admits the GPU image Node (22, tfjs-node-gpu 4.22 breaks on >= 23) and the main image Node', () => {
    expect(gpuNode[0]).toBe(22);
    expect(atLeast(gpuNode, floor), `GPU image node ${gpuNode.join('.')} vs floor ${floor.join('.')}`).toBe(true);
    expect(atLeast(mainNode, floor)).toBe(true);
    expect(floor[0]).toBe(gpuNode[0]);
  });

  it('package.json engines (when present) has the same floor', () => {
    const range = pkg.engines?.node;
    if (range === undefined) return;
    const m = /^>=\s*(\d+)(?:\.(\d+))?/.exec(range);
    expect(m, range).not.toBeNull();
    expect([Number(m![1]), Number(m![2] ?? 0)]).toEqual(floor);
  });

  it('the main image runs the Node major of the node devDependency the tests run on', () => {
    const dev = pkg.devDependencies?.node;
    expect(dev).toBeDefined();
    expect(Number(/(\d+)/.exec(dev!)![1])).toBe(mainNode[0]);
  });

  it('the GPU image installs tfjs-node-gpu 4.22.x at the locked @tensorflow/tfjs version (one engine, not two)', () => {
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    const tfjs = lock.packages['node_modules/@tensorflow/tfjs']?.version;
    const text = readFileSync(join(REPO_ROOT, IMAGES['swarmbench-gpu']), 'utf8');
    const m = /@tensorflow\/tfjs-node-gpu@(\d+\.\d+\.\d+)/.exec(text);
    expect(m).not.toBeNull();
    expect(m![1]).toMatch(/^4\.22\./);
    expect(m![1]).toBe(tfjs);
  });

  it('the GPU image installs from its own lock (images/swarmbench-gpu/deps): tfjs-node-gpu exact with an integrity, every shared package as in package-lock.json', () => {
    type Lock = { packages: Record<string, { version?: string; integrity?: string; dev?: boolean; dependencies?: Record<string, string> }> };
    const main = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as Lock;
    const gpu = JSON.parse(readFileSync(join(REPO_ROOT, 'images/swarmbench-gpu/deps/package-lock.json'), 'utf8')) as Lock;
    const gpuPkg = JSON.parse(readFileSync(join(REPO_ROOT, 'images/swarmbench-gpu/deps/package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const tfjs = main.packages['node_modules/@tensorflow/tfjs']!.version!;
    // Exactly one version, no range; locked with a sha512 integrity; one engine.
    expect(gpuPkg.dependencies['@tensorflow/tfjs-node-gpu']).toBe(tfjs);
    const node = gpu.packages['node_modules/@tensorflow/tfjs-node-gpu']!;
    expect(node.version).toBe(tfjs);
    expect(node.integrity).toMatch(/^sha512-[A-Za-z0-9+/]+=*$/);
    expect(node.dependencies?.['@tensorflow/tfjs']).toBe(tfjs);
    expect(Object.keys(gpu.packages).filter((k) => /node_modules\/@tensorflow\/tfjs$/.test(k))).toEqual(['node_modules/@tensorflow/tfjs']);
    // The rest of package.json's dependencies, unchanged, and every shared package identical.
    const { ['@tensorflow/tfjs-node-gpu']: _gpuOnly, ...rest } = gpuPkg.dependencies;
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(rest).toEqual(pkg.dependencies);
    expect(gpu.packages['']?.dependencies).toEqual(gpuPkg.dependencies);
    for (const [path, p] of Object.entries(gpu.packages)) {
      if (!path) continue;
      expect(p.integrity, `${path}: no integrity`).toMatch(/^sha(512|1)-/);
      expect(p.dev, path).toBeUndefined();
      const m = main.packages[path];
      if (m) expect({ version: p.version, integrity: p.integrity }, path).toEqual({ version: m.version, integrity: m.integrity });
    }
    // The Dockerfile installs it with npm ci (integrity checked), and its ignore file lets it in.
    expect(text(IMAGES['swarmbench-gpu'])).toMatch(/COPY images\/swarmbench-gpu\/deps\/package\.json images\/swarmbench-gpu\/deps\/package-lock\.json \.\/\n(#.*\n)*RUN npm ci --omit=dev --ignore-scripts/);
    const ignored = dockerignore(text(`${IMAGES['swarmbench-gpu']}.dockerignore`));
    expect(ignored('images/swarmbench-gpu/deps/package-lock.json')).toBe(false);
    expect(ignored('images/swarmbench-gpu/update-lock.sh')).toBe(true);
  });
});

describe('images/pin-digests.sh', () => {
  it('pins every base, the ARG default of a FROM ${NAME} included, and --check sees a stale digest', () => {
    // A copy of images/ and a stand-in `crane` that answers one digest for every tag: what the
    // script reads and rewrites, without a registry.
    const dir = mkdtempSync(join(tmpdir(), 'pin-digests-'));
    try {
      for (const rel of ['images/pin-digests.sh', ...Object.values(IMAGES)]) {
        mkdirSync(join(dir, dirname(rel)), { recursive: true });
        copyFileSync(join(REPO_ROOT, rel), join(dir, rel));
      }
      const digest = `sha256:${'f'.repeat(64)}`;
      mkdirSync(join(dir, 'fakebin'));
      writeFileSync(join(dir, 'fakebin/crane'), `#!/bin/sh\necho ${digest}\n`);
      chmodSync(join(dir, 'fakebin/crane'), 0o755);
      const env = { ...process.env, PATH: `${join(dir, 'fakebin')}:${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
      const run = (...args: string[]) => spawnSync('bash', [join(dir, 'images/pin-digests.sh'), ...args], { env, encoding: 'utf8' });
      const check = run('--check');
      expect(check.status, check.stderr).toBe(1);
      expect(check.stderr).toMatch(/node:24\.\d+-bookworm-slim is pinned to sha256:[0-9a-f]{64} but the tag is now sha256:f{64}/);
      const pin = run();
      expect(pin.status, pin.stderr).toBe(0);
      for (const rel of Object.values(IMAGES)) {
        const after = readFileSync(join(dir, rel), 'utf8');
        const st = stages(parseDockerfile(after));
        for (const s of st.filter((s) => !st.some((o) => o.name === s.from))) expect(s.image, `${rel}: ${s.from}`).toMatch(new RegExp(`^[^@\\s]+@${digest}$`));
        expect(after.split('\n')[0]).toMatch(new RegExp(`^# syntax=docker/dockerfile:[\\d.]+@${digest}$`));
        // Only the references changed.
        const strip = (t: string) => t.replace(/@sha256:[0-9a-f]{64}/g, '');
        expect(strip(after)).toBe(strip(text(rel)));
      }
      expect(readFileSync(join(dir, IMAGES.swarmbench), 'utf8')).toMatch(/^FROM \$\{NODE_IMAGE\} AS deps$/m);
      expect(run('--check').status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
