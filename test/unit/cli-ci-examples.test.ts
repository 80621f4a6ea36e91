/**
 * The CI recipes of examples/ci/, checked here since no CI service can run them: each file is
 * parsed with js-yaml and held to the structure its service requires (GitHub Actions: on, jobs,
 * runs-on, steps with `uses` or `run`; GitLab CI: stages, a job with stage, image, script,
 * artifacts), every shell script in them passes `bash -n`, every `swarmbench` command they run
 * uses only options the command has, the job fails with swarmbench's exit code, junit.xml and
 * report.md are uploaded (and the report becomes the job summary or a comment), the manifest they
 * submit exists and validates, and the Role of rbac.yaml grants what the commands need. The krew
 * manifest has the fields krew requires.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load, loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parseManifestText } from '../../src/api/validate.ts';
import { SPEC } from '../../src/cli/completion.ts';
import { REPO_ROOT } from '../../src/paths.ts';

const read = (p: string) => readFileSync(join(REPO_ROOT, p), 'utf8');

interface GhStep { name?: string; uses?: string; run?: string; if?: string; with?: Record<string, unknown>; env?: Record<string, string>; id?: string }
interface GhWorkflow { name: string; on: Record<string, unknown>; env?: Record<string, string>; permissions?: Record<string, string>; jobs: Record<string, { 'runs-on': string; steps: GhStep[]; 'timeout-minutes'?: number }> }
interface GlJob { stage: string; image: string; script: string[]; before_script?: string[]; after_script?: string[]; artifacts: { when?: string; paths: string[]; reports?: { junit?: string | string[] }; expose_as?: string }; rules?: unknown[]; timeout?: string }

const gh = load(read('examples/ci/github-actions.yml')) as GhWorkflow;
const gl = load(read('examples/ci/gitlab-ci.yml')) as Record<string, unknown> & { stages: string[]; variables: Record<string, string> };

/** A script with the CI's own expressions (`${{ … }}`) replaced, as the runner hands it to the shell. */
const shell = (s: string) => s.replace(/\$\{\{[^}]*\}\}/g, 'X');

function bashN(script: string): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ci-'));
  writeFileSync(join(dir, 's.sh'), script);
  const r = spawnSync('bash', ['-n', join(dir, 's.sh')], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** Every `swarmbench <command> …` in a script, with its options (continuation lines joined). */
function swarmbenchCalls(script: string): { command: string; options: string[] }[] {
  const joined = script.replace(/\\\n\s*/g, ' ');
  return [...joined.matchAll(/(?:^|[\s;&|(])swarmbench\s+([a-z]+)([^\n;|&]*)/g)].map((m) => ({
    command: m[1]!,
    options: [...m[2]!.matchAll(/(?:^|\s|\+)(--?[a-zA-Z][a-zA-Z-]*)/g)].map((o) => o[1]!),
  }));
}

function checkCalls(where: string, scripts: string[]): string[] {
  const commands: string[] = [];
  for (const s of scripts) {
    for (const call of swarmbenchCalls(s)) {
      commands.push(call.command);
      const spec = SPEC.find((c) => c.name === call.command);
      if (call.command === 'version') continue;
      expect(spec, `${where}: swarmbench ${call.command} is a command`).toBeDefined();
      const known = spec!.flags.flatMap((f) => f.names);
      for (const o of call.options) expect(known, `${where}: swarmbench ${call.command} ${o}`).toContain(o);
    }
  }
  return commands;
}

describe('examples/ci/github-actions.yml', () => {
  const job = Object.values(gh.jobs)[0]!;
  const steps = job.steps;
  const bench = steps.find((s) => s.run?.includes('swarmbench submit'))!;

  it('is a workflow: name, on, one job with runs-on and steps that each use an action or run a script', () => {
    expect(gh.name).toBe('swarmbench');
    expect(Object.keys(gh.on)).toEqual(expect.arrayContaining(['pull_request']));
    expect(Object.keys(gh.jobs)).toHaveLength(1);
    expect(job['runs-on']).toMatch(/^ubuntu-/);
    expect(job['timeout-minutes']).toBeGreaterThan(30); // the run's --timeout 30m fits inside
    for (const s of steps) {
      expect(Boolean(s.uses) !== Boolean(s.run), `${s.name ?? s.uses}: uses or run, not both`).toBe(true);
      if (s.uses) expect(s.uses, 'actions pinned to a major version').toMatch(/^[\w-]+\/[\w-]+@v\d+$/);
    }
    expect(steps.map((s) => s.uses).filter(Boolean)).toEqual(expect.arrayContaining(['actions/checkout@v4', 'actions/setup-node@v4', 'actions/upload-artifact@v4']));
    expect(steps.find((s) => s.uses === 'actions/setup-node@v4')!.with!['node-version']).toBe(24);
  });

  it('every script passes bash -n, and uses only options swarmbench has', () => {
    for (const s of steps.filter((x) => x.run)) {
      const r = bashN(shell(s.run!));
      expect(r.stderr, s.name).toBe('');
      expect(r.status, s.name).toBe(0);
    }
    const commands = checkCalls('github', steps.filter((x) => x.run).map((x) => shell(x.run!)));
    expect(commands).toEqual(expect.arrayContaining(['submit', 'describe', 'logs', 'delete']));
  });

  it('submits, waits and writes the exports; the job fails with swarmbench’s exit code', () => {
    const call = swarmbenchCalls(bench.run!).find((c) => c.command === 'submit')!;
    expect(call.options).toEqual(expect.arrayContaining(['-f', '--wait', '--timeout', '--out', '--name', '-n']));
    expect(bench.run).toMatch(/code=\$\?/);
    expect(bench.run).toMatch(/exit "\$code"\s*$/);
    for (const code of ['0', '1', '2', '3', '4']) expect(bench.run).toMatch(new RegExp(`\\n\\s*${code}\\) echo`));
    // Steps after it report whatever the verdict: they run `if: always()`.
    const after = steps.slice(steps.indexOf(bench) + 1);
    for (const s of after) expect(s.if, s.name).toMatch(/always\(\)|failure\(\)/);
  });

  it('uploads junit.xml and report.md, puts report.md into the job summary and a PR comment, and deletes the run', () => {
    const upload = steps.find((s) => s.uses === 'actions/upload-artifact@v4')!;
    const paths = String(upload.with!.path).split('\n').map((p) => p.trim()).filter(Boolean);
    expect(paths).toEqual(expect.arrayContaining(['out/junit.xml', 'out/report.md']));
    expect(steps.some((s) => s.run?.includes('out/report.md') && s.run.includes('$GITHUB_STEP_SUMMARY'))).toBe(true);
    const comment = steps.find((s) => s.run?.includes('gh pr comment'))!;
    expect(comment.env!.GH_TOKEN).toBe('${{ github.token }}');
    expect(gh.permissions!['pull-requests']).toBe('write');
    expect(steps.some((s) => s.run?.includes('swarmbench delete') && s.if === 'always()')).toBe(true);
  });

  it('submits a manifest that exists and validates; run names are DNS labels', () => {
    const manifest = gh.env!.SWARMBENCH_MANIFEST!;
    const v = parseManifestText(read(manifest), manifest);
    expect(v.ok ? [] : v.errors).toEqual([]);
    const name = gh.env!.SWARMBENCH_RUN!.replace(/\$\{\{[^}]*\}\}/g, '123456789012');
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(name.length).toBeLessThanOrEqual(63);
  });
});

describe('examples/ci/gitlab-ci.yml', () => {
  const job = gl.swarmbench as GlJob;

  it('is a pipeline: stages, and a job of one of them with an image, a script and artifacts', () => {
    expect(gl.stages).toEqual(['benchmark']);
    expect(gl.stages).toContain(job.stage);
    expect(job.image).toMatch(/^node:24/);
    expect(Array.isArray(job.script)).toBe(true);
    expect(job.rules!.length).toBeGreaterThan(0);
    expect(job.timeout).toMatch(/^\d+m$/);
    // GitLab's own rules: keys a job may have, and at most 10 exposed paths.
    const allowed = ['stage', 'image', 'timeout', 'interruptible', 'rules', 'before_script', 'script', 'after_script', 'artifacts', 'variables', 'allow_failure'];
    for (const k of Object.keys(job)) expect(allowed, k).toContain(k);
    expect(job.artifacts.paths.length).toBeLessThanOrEqual(10);
  });

  it('every script passes bash -n and uses only options swarmbench has; the job fails with its exit code', () => {
    const scripts = [job.before_script ?? [], job.script, job.after_script ?? []].map((s) => s.join('\n'));
    for (const s of scripts) {
      const r = bashN(s);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    const commands = checkCalls('gitlab', scripts);
    expect(commands).toEqual(expect.arrayContaining(['submit', 'describe', 'delete']));
    const main = job.script.join('\n');
    expect(swarmbenchCalls(main).find((c) => c.command === 'submit')!.options).toEqual(expect.arrayContaining(['-f', '--wait', '--timeout', '--out', '--name']));
    expect(main).toMatch(/code=\$\?/);
    expect(main).toMatch(/exit "\$code"\s*$/);
  });

  it('reports junit.xml to the merge request, keeps report.md as an exposed artifact, whatever the verdict', () => {
    expect(job.artifacts.when).toBe('always');
    expect(job.artifacts.reports!.junit).toBe('out/junit.xml');
    expect(job.artifacts.paths).toEqual(expect.arrayContaining(['out/junit.xml', 'out/report.md']));
    expect(job.artifacts.expose_as).toBeTruthy();
    expect((job.after_script ?? []).join('\n')).toMatch(/merge_requests\/\$CI_MERGE_REQUEST_IID\/notes/);
    const v = parseManifestText(read(gl.variables.SWARMBENCH_MANIFEST!), gl.variables.SWARMBENCH_MANIFEST);
    expect(v.ok).toBe(true);
  });
});

describe('examples/ci/rbac.yaml', () => {
  const docs = loadAll(read('examples/ci/rbac.yaml')) as { kind: string; metadata: { name: string; namespace?: string }; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[]; subjects?: { kind: string; name: string; namespace: string }[]; roleRef?: { kind: string; name: string } }[];
  const can = (group: string, resource: string, verb: string) =>
    docs.find((d) => d.kind === 'Role')!.rules!.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));

  it('binds the Role to the ServiceAccount in one namespace', () => {
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding']);
    const ns = docs[0]!.metadata.namespace;
    for (const d of docs) expect(d.metadata.namespace).toBe(ns);
    const rb = docs[2]!;
    expect(rb.roleRef).toMatchObject({ kind: 'Role', name: docs[1]!.metadata.name });
    expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: docs[0]!.metadata.name, namespace: ns }]);
  });

  it('grants what submit --wait, report, logs, describe, rerun and delete do', () => {
    for (const v of ['get', 'list', 'create', 'patch', 'delete']) expect(can('swarmbench.io', 'benchmarkruns', v), `benchmarkruns ${v}`).toBe(true);
    for (const v of ['get', 'create', 'patch']) expect(can('', 'configmaps', v), `configmaps ${v}`).toBe(true);
    expect(can('', 'pods', 'list')).toBe(true);
    expect(can('', 'pods/log', 'get')).toBe(true);
    expect(can('batch', 'jobs', 'list')).toBe(true);
    expect(can('', 'events', 'list')).toBe(true);
    // Nothing it does not need.
    expect(can('', 'secrets', 'get')).toBe(false);
    expect(can('swarmbench.io', 'benchmarkruns/status', 'patch')).toBe(false);
  });
});

describe('krew/swarmbench.yaml', () => {
  const m = load(read('krew/swarmbench.yaml')) as { apiVersion: string; kind: string; metadata: { name: string }; spec: { version: string; shortDescription: string; homepage: string; platforms: { selector: unknown; uri: string; sha256: string; bin: string; files: { from: string; to: string }[] }[] } };

  it('has what krew requires, and its bin is the plugin entry of this repository', () => {
    expect(m.apiVersion).toBe('krew.googlecontainertools.github.com/v1alpha2');
    expect(m.kind).toBe('Plugin');
    expect(m.metadata.name).toBe('swarmbench');
    const pkg = JSON.parse(read('package.json')) as { version: string; bin: Record<string, string> };
    expect(m.spec.version).toBe(`v${pkg.version}`);
    expect(m.spec.shortDescription.length).toBeLessThanOrEqual(50);
    expect(m.spec.platforms.length).toBeGreaterThan(0);
    for (const p of m.spec.platforms) {
      expect(p.selector).toBeDefined();
      expect(p.uri).toMatch(new RegExp(`^https://.*v${pkg.version.replace(/\./g, '\\.')}\\.tar\\.gz$`));
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(p.bin).toBe(pkg.bin['kubectl-swarmbench']);
      expect(existsSync(join(REPO_ROOT, p.bin))).toBe(true);
    }
  });
});
