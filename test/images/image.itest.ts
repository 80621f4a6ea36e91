/**
 * The project's image, built for real and run the way a node runs it: images/build.sh builds
 * swarmbench:<version> from images/swarmbench/Dockerfile with buildah and exports an OCI archive;
 * this test unpacks that archive with umoci into an OCI runtime bundle (its config.json comes from
 * the image's config: user, entrypoint, environment, working directory, as a container runtime
 * makes it) and runs it with runc, with a read-only root filesystem as the chart and the
 * operator's Jobs run it.
 *
 * Runs only through `npm run test:images` (test/images/vitest.config.ts). Where buildah, umoci or
 * runc is missing, or not as root, the suite is skipped with the reason in its name; under
 * SWARMBENCH_REQUIRE_IMAGES=1 it fails instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/paths.ts';

const TOOLS = ['buildah', 'umoci', 'runc'] as const;

function whyNot(): string | undefined {
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
  if (missing.length > 0) return `${missing.join(', ')} not installed`;
  if (process.getuid?.() !== 0) return 'not root (buildah storage, umoci unpack and runc need it)';
  return undefined;
}

const skip = whyNot();
if (skip && process.env.SWARMBENCH_REQUIRE_IMAGES === '1') throw new Error(`the image test cannot run: ${skip}`);
if (skip) process.stderr.write(`image.itest: SKIPPED, ${skip}\n`);
const title = skip ? `the swarmbench image [SKIPPED: ${skip}]` : 'the swarmbench image';

interface Pkg {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  link?: boolean;
}
interface ImageConfig {
  architecture: string;
  os: string;
  config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string };
}
interface RuntimeSpec {
  process: { args: string[]; terminal?: boolean; user: { uid: number; gid: number }; env: string[]; cwd: string };
  root: { path: string; readonly?: boolean };
  [k: string]: unknown;
}

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as Pkg;
const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const IMAGE = `ghcr.io/swarmbench/swarmbench:${pkg.version}`;
const DEV_IMAGE = 'ghcr.io/swarmbench/swarmbench:dev';

function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status ?? r.signal}\n${r.stderr}`);
  return r.stdout;
}

describe.skipIf(!!skip)(title, () => {
  let work = '';
  let archive = '';
  let bundle = '';
  let spec: RuntimeSpec;
  let config: ImageConfig;
  let runs = 0;

  /** Runs the image with runc: `args` replaces entrypoint + cmd when given; root read-only unless told. */
  function run(args: string[] | undefined, opts: { readonly?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
    const s: RuntimeSpec = structuredClone(spec);
    if (args) s.process.args = args;
    s.process.terminal = false;
    s.root.readonly = opts.readonly ?? true;
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(s, null, 2));
    const id = `swarmbench-image-itest-${process.pid}-${++runs}`;
    const r = spawnSync('runc', ['--root', join(work, 'runc'), 'run', '--bundle', bundle, id], { encoding: 'utf8', timeout: 60_000 });
    spawnSync('runc', ['--root', join(work, 'runc'), 'delete', '--force', id], { stdio: 'ignore' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  beforeAll(() => {
    // Idempotent: seconds when nothing changed since the last build. Logs go to this stderr.
    const built = spawnSync(join(REPO_ROOT, 'images/build.sh'), [], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (built.status !== 0) throw new Error(`images/build.sh failed (exit ${built.status ?? built.signal})`);
    archive = built.stdout.trim().split('\n').at(-1) ?? '';
    expect(archive).toMatch(new RegExp(`/swarmbench-${pkg.version.replace(/\./g, '\\.')}-[0-9a-f]{16}\\.tar$`));
    // What the test cluster asks: the same archive, without building.
    expect(sh(join(REPO_ROOT, 'images/build.sh'), ['--print-archive']).trim()).toBe(archive);
    work = mkdtempSync(join(tmpdir(), 'swarmbench-image-'));
    sh('mkdir', ['-p', join(work, 'layout'), join(work, 'runc')]);
    sh('tar', ['-xf', archive, '-C', join(work, 'layout')]);
    bundle = join(work, 'bundle');
    sh('umoci', ['unpack', '--image', `${join(work, 'layout')}:${IMAGE}`, bundle]);
    spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as RuntimeSpec;
    const blob = (digest: string) => readFileSync(join(work, 'layout/blobs', ...digest.split(':')), 'utf8');
    const index = JSON.parse(readFileSync(join(work, 'layout/index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const manifest = JSON.parse(blob(index.manifests[0]!.digest)) as { config: { digest: string } };
    config = JSON.parse(blob(manifest.config.digest)) as ImageConfig;
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(`the archive holds one image, named ${IMAGE} and ${DEV_IMAGE}, whose config runs swarmbench as 65532:65532`, () => {
    const index = JSON.parse(readFileSync(join(work, 'layout/index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toEqual([IMAGE, DEV_IMAGE]);
    // One manifest under both names; its digest beside the archive (the test cluster compares it
    // with what a node's containerd holds).
    expect(new Set(index.manifests.map((m) => m.digest)).size).toBe(1);
    expect(readFileSync(`${archive}.digest`, 'utf8').trim()).toBe(index.manifests[0]!.digest);
    expect(config.os).toBe('linux');
    expect(config.config.User).toBe('65532:65532');
    expect(config.config.Entrypoint).toEqual(['swarmbench']);
    expect(config.config.Cmd).toEqual(['--help']);
    expect(config.config.WorkingDir).toBe('/app');
    expect(config.config.Env).toContain('NODE_ENV=production');
    // What a runtime makes of it (umoci, like containerd, turns the image config into the OCI spec).
    expect(spec.process.user).toMatchObject({ uid: 65532, gid: 65532 });
    expect(spec.process.args).toEqual(['swarmbench', '--help']);
    expect(spec.process.cwd).toBe('/app');
  });

  it('`swarmbench --version` prints the version of package.json, on a read-only root filesystem', () => {
    const r = run([...config.config.Entrypoint!, '--version']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
    // The image's default command: the usage.
    const help = run(undefined);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/swarmbench/);
    expect(help.stdout).toMatch(/\boperator\b/);
  });

  it('runs Node of the major.minor the Dockerfile names, the node devDependency the tests run on', () => {
    const r = run(['node', '--version']);
    expect(r.status, r.stderr).toBe(0);
    const dev = pkg.devDependencies.node!;
    const [major, minor] = dev.replace(/^[\^~]/, '').split('.');
    expect(r.stdout.trim()).toMatch(new RegExp(`^v${major}\\.${minor}\\.\\d+$`));
    const from = /^ARG NODE_IMAGE=node:(\d+)\.(\d+)-/m.exec(readFileSync(join(REPO_ROOT, 'images/swarmbench/Dockerfile'), 'utf8'));
    expect([from?.[1], from?.[2]]).toEqual([major, minor]);
  });

  it('the process is uid/gid 65532, not root (id -u, and the kernel\'s /proc/self/status)', () => {
    const id = run(['sh', '-c', 'id -u; id -g']);
    expect(id.status, id.stderr).toBe(0);
    expect(id.stdout).toBe('65532\n65532\n');
    const status = run(['node', '-e', 'process.stdout.write(require("fs").readFileSync("/proc/self/status", "utf8").match(/^(Uid|Gid):.*$/gm).join("\\n"))']);
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toBe('Uid:\t65532\t65532\t65532\t65532\nGid:\t65532\t65532\t65532\t65532');
  });

  it('needs no writable path: / is read-only, and /app is root\'s and not writable by the user even on a writable root', () => {
    const write = (path: string) => `try { require("fs").writeFileSync(${JSON.stringify(path)}, "x"); console.log("wrote") } catch (e) { console.log(e.code) }`;
    const ro = run(['node', '-e', write('/probe')]);
    expect(ro.stdout.trim()).toBe('EROFS');
    const rw = run(['node', '-e', `${write('/app/probe')}; ${write('/app/node_modules/probe')}; ${write('/app/src/probe')}`], { readonly: false });
    expect(rw.stdout.trim().split('\n')).toEqual(['EACCES', 'EACCES', 'EACCES']);
    const st = statSync(join(bundle, 'rootfs/app'));
    expect([st.uid, st.mode & 0o022]).toEqual([0, 0]);
  });

  it("holds Node's compile cache of every command for user 65532, root's and read-only, and it halves the modules' load CPU", () => {
    const dir = '/var/cache/swarmbench/node-compile-cache';
    expect(config.config.Env).toContain(`NODE_COMPILE_CACHE=${dir}`);
    const subdirs = readdirSync(join(bundle, 'rootfs', dir));
    expect(subdirs).toHaveLength(1);
    expect(subdirs[0]).toMatch(/^v\d+\.\d+\.\d+-\w+-[0-9a-f]+-65532$/);
    expect(readdirSync(join(bundle, 'rootfs', dir, subdirs[0]!)).length).toBeGreaterThan(1000);
    const st = statSync(join(bundle, 'rootfs', dir));
    expect([st.uid, st.mode & 0o022]).toEqual([0, 0]);
    // The agent's modules, loaded with the cache and without it (NODE_COMPILE_CACHE empty): CPU ms.
    const load = `const t = process.cpuUsage(); await import("/app/src/agent/cli.ts"); const u = process.cpuUsage(t); console.log(Math.round((u.user + u.system) / 1000))`;
    const cpu = (cache: boolean): number => {
      const r = run(['sh', '-c', `${cache ? '' : 'NODE_COMPILE_CACHE= '}exec node --input-type=module -e '${load}'`]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      return Number(r.stdout.trim());
    };
    const cached = Math.min(cpu(true), cpu(true));
    const cold = Math.min(cpu(false), cpu(false));
    process.stderr.write(`image: the agent's modules load in ${cached} ms of CPU with the compile cache, ${cold} ms without\n`);
    expect(cached).toBeLessThan(cold * 0.75);
  });

  it('/app holds the application only: bin, crds, src (no tests), package.json, package-lock.json, node_modules', () => {
    const app = join(bundle, 'rootfs/app');
    expect(readdirSync(app).sort()).toEqual(['bin', 'crds', 'node_modules', 'package-lock.json', 'package.json', 'src']);
    const files = (readdirSync(join(app, 'src'), { recursive: true }) as string[]).filter((f) => statSync(join(app, 'src', f)).isFile());
    expect(files.length).toBeGreaterThan(10);
    expect(files.filter((f) => /\.test\.ts$|(^|\/)node_modules\//.test(f))).toEqual([]);
    expect(readFileSync(join(app, 'package.json'), 'utf8')).toBe(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(readFileSync(join(app, 'package-lock.json'), 'utf8')).toBe(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
  });

  it('/app/node_modules: exactly the runtime packages of package-lock.json, at their locked versions, and no devDependency', () => {
    const nm = join(bundle, 'rootfs/app/node_modules');
    // The top level, listed: every package, scoped ones as @scope/name.
    const top = readdirSync(nm)
      .filter((n) => !n.startsWith('.'))
      .flatMap((n) => (n.startsWith('@') ? readdirSync(join(nm, n)).map((s) => `${n}/${s}`) : [n]))
      .sort();
    const entries = Object.entries(lock.packages).filter(([k]) => k.startsWith('node_modules/'));
    const runtime = entries.filter(([, e]) => !e.dev);
    const wantTop = runtime.map(([k]) => k.slice('node_modules/'.length)).filter((n) => !n.includes('/node_modules/')).sort();
    // Optional packages for another platform are the only runtime entries allowed to be absent.
    const absent = wantTop.filter((n) => !top.includes(n));
    for (const n of absent) expect(lock.packages[`node_modules/${n}`]?.optional, `${n} is missing from the image`).toBe(true);
    expect(top.filter((n) => !wantTop.includes(n)), 'packages in the image that the lock does not have as runtime packages').toEqual([]);
    for (const name of Object.keys(pkg.dependencies)) expect(top, name).toContain(name);
    // A devDependency is absent unless a runtime package needs it too (then the lock does not
    // mark it dev: @types/node is a dependency of @kubernetes/client-node).
    for (const name of Object.keys(pkg.devDependencies)) {
      expect(top.includes(name), `devDependency ${name}`).toBe(lock.packages[`node_modules/${name}`]?.dev !== true);
    }
    for (const name of ['vitest', 'typescript', 'eslint', 'autocannon', 'node']) expect(existsSync(join(nm, name)), name).toBe(false);
    // Every runtime package present (nested ones too) at its locked version; no dev-only package anywhere.
    for (const [path, e] of runtime) {
      const at = join(bundle, 'rootfs/app', path, 'package.json');
      if (!existsSync(at) && e.optional) continue;
      expect((JSON.parse(readFileSync(at, 'utf8')) as { version: string }).version, path).toBe(e.version);
    }
    for (const [path] of entries.filter(([, e]) => e.dev)) expect(existsSync(join(bundle, 'rootfs/app', path)), path).toBe(false);
    expect(top.length).toBeGreaterThan(Object.keys(pkg.dependencies).length);
  });
});
