/**
 * The CLI against the real control plane (issue 15): `swarmbench submit --wait` and the other
 * cluster commands as processes, the operator running, each case ending with its exit code:
 *
 * - the quick example (restricted to the integration category to keep CI short) as the CI
 *   ServiceAccount of examples/ci/rbac.yaml: progress, the report, exit 0; `report RUN --out`
 *   writes the bytes the operator wrote, which are the bytes the embedded renderer writes;
 *   `get`, `describe` and `logs` (the runner's output) as that ServiceAccount;
 * - `kubectl swarmbench` through kubectl's plugin mechanism, and its completion;
 * - an impossible target: 1; an agent image that does not exist: 3, naming it; a baseline with a
 *   planted regression: 4; a timeout: 3, then `rerun --wait`: 0;
 * - the errors a person meets, each one line: no cluster reachable, no permission (the verb and
 *   the resource), a run not found, an API group the server does not serve (the CRD missing);
 * - `delete`, with and without the export.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument } from '../../src/api/schema.ts';
import { resourceServed } from '../../src/cli/cluster/client.ts';
import { statusCode } from '../../src/kube/client.ts';
import { explainError } from '../../src/cli/cluster/errors.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { EXPORT_FILES } from '../../src/report/exports.ts';
import { APISERVER_URL, KUBECONFIG, PKI, PROMETHEUS_URL, TOOLS_BIN } from './lib/config.ts';
import { adminClients, clusterGate, kubeEnv, kubectl, prepareNamespace, startOperator, until, type OperatorProcess } from './lib/itest.ts';

const gate = await clusterGate('swarmbench CLI against the cluster');

const ns = `cli-${Date.now().toString(36)}`;
const work = mkdtempSync(join(tmpdir(), 'swarmbench-cli-'));
const BIN = join(REPO_ROOT, 'bin', 'swarmbench.js');

/** A small run that finishes in about ten seconds: integration only, a pool of 3. `spec`: lines instead of `trials: 3`. */
const small = (name: string, o: { image?: string; spec?: string } = {}) =>
  `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}}\nspec:\n  mode: quick\n  categories: [integration]\n${o.spec ?? '  trials: 3\n'}` +
  `  agents: {poolSize: 3${o.image ? `, image: "${o.image}"` : ''}}\n  cleanup: {policy: Never}\n  prometheus: {url: "${PROMETHEUS_URL}"}\n`;

function file(name: string, text: string): string {
  const p = join(work, name);
  writeFileSync(p, text);
  return p;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A process to its end, its output kept (async: the operator's piped log keeps flowing meanwhile). */
function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `swarmbench ARGS` with a kubeconfig (the admin's by default). */
const cli = (args: string[], kubeconfig = KUBECONFIG, timeoutMs?: number) =>
  exec(process.execPath, [BIN, ...args], { ...kubeEnv, KUBECONFIG: kubeconfig, NO_COLOR: '1' }, timeoutMs);

/** A kubeconfig for a ServiceAccount's token. */
async function tokenKubeconfig(core: CoreV1Api, sa: string): Promise<string> {
  const tr = await core.createNamespacedServiceAccountToken({ name: sa, namespace: ns, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  return file(`${sa}.kubeconfig`, [
    'apiVersion: v1', 'kind: Config',
    `clusters: [{name: test, cluster: {server: "${APISERVER_URL}", certificate-authority: "${join(PKI, 'ca.crt')}"}}]`,
    `users: [{name: ${sa}, user: {token: "${tr.status!.token}"}}]`,
    `contexts: [{name: ${sa}, context: {cluster: test, user: ${sa}, namespace: ${ns}}}]`,
    `current-context: ${sa}`, '',
  ].join('\n'));
}

const oneLine = (s: string) => expect(s.trim().split('\n'), s).toHaveLength(1);

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let operator: OperatorProcess | undefined;
  let ci: string; // the kubeconfig of examples/ci/rbac.yaml's ServiceAccount
  let nobody: string; // a ServiceAccount with no rights
  let quick: string; // the run of the first case
  const outA = join(work, 'out-submit');

  const withLog = (r: Result) => `${r.stderr}\n--- stdout tail ---\n${r.stdout.slice(-2000)}\n--- operator log tail ---\n${(operator?.log ?? []).slice(-20).join('')}`;

  beforeAll(async () => {
    ({ core, custom } = adminClients());
    prepareNamespace(ns);
    operator = startOperator(ns);
    const rbac = readFileSync(join(REPO_ROOT, 'examples', 'ci', 'rbac.yaml'), 'utf8').replace(/namespace: bench/g, `namespace: ${ns}`);
    const a = kubectl(['apply', '-f', '-'], rbac);
    if (a.code !== 0) throw new Error(`examples/ci/rbac.yaml: ${a.stderr}`);
    const sa = kubectl(['create', 'serviceaccount', 'nobody', '-n', ns]);
    if (sa.code !== 0) throw new Error(sa.stderr);
    ci = await tokenKubeconfig(core, 'swarmbench-ci');
    nobody = await tokenKubeconfig(core, 'nobody');
  });

  afterAll(async () => {
    operator?.proc.kill('SIGTERM');
    // Retried: another test file may be restarting the API server just now.
    await until(`namespace ${ns} deleted`, () => core?.deleteNamespace({ name: ns }).then(() => true, (e: unknown) => (statusCode(e) === 404 ? true : undefined)), 30_000, 2000).catch(() => undefined);
  });

  it('submit --wait of the quick example, as the CI ServiceAccount: progress, the report, exit 0, the exports', async () => {
    const r = await cli(['submit', '-f', join(REPO_ROOT, 'examples', 'benchmarkrun-quick.yaml'), '-c', 'integration', '-n', ns, '--wait', '--timeout', '5m', '--out', outA], ci);
    expect(r.code, withLog(r)).toBe(0);
    const created = /benchmarkrun\.swarmbench\.io\/(quick-[a-z0-9]{5}) created in namespace (\S+)/.exec(r.stderr);
    expect(created, r.stderr).not.toBeNull();
    quick = created![1]!;
    expect(created![2]).toBe(ns);
    expect(r.stderr).toMatch(/note: spec\.export\.configMapName \(quick-results\) is left out/);
    expect(r.stderr).toMatch(/^attempt 1: 1 steps \(integration\)$/m);
    expect(r.stderr).toMatch(/^\[1\/1\] integration {2}\(\d+ s\)$/m);
    expect(r.stderr).toMatch(/^done integration: 3 measurements$/m);
    expect(r.stderr).toMatch(new RegExp(`swarmbench submit: run ${quick} passed \\(success rate [\\d.]+%\\) \\(exit 0\\)\\n$`));
    expect(r.stdout).toMatch(/^SwarmBench quick-[a-z0-9]{5} · quick · attempt 1$/m);
    expect(r.stdout).toMatch(/^VERDICT: PASSED$/m);
    expect(readdirSync(outA).sort()).toEqual([...EXPORT_FILES].sort());
    const doc = ResultDocument.parse(JSON.parse(readFileSync(join(outA, 'results.json'), 'utf8')));
    expect(doc.run).toMatchObject({ name: quick, namespace: ns, attempt: 1, categories: ['integration'] });
    expect(doc.tests.map((t) => t.id)).toEqual(['5.1', '5.2', '5.3']);
  }, 360_000);

  it('report RUN --out writes the export byte for byte: the bytes the operator wrote, and the bytes the embedded renderer writes', async () => {
    const outB = join(work, 'out-report');
    const r = await cli(['report', quick, '-n', ns, '--out', outB], ci);
    expect(r.code, withLog(r)).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(outA, 'report.txt'), 'utf8')); // no TTY: the terminal report without colour
    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: `${quick}-results` });
    // The embedded path: `swarmbench report results.json --out DIR`, the writer `swarmbench run` uses.
    const outC = join(work, 'out-embedded');
    const e = await cli(['report', join(outA, 'results.json'), '--out', outC]);
    expect(e.code, e.stderr).toBe(0);
    for (const f of EXPORT_FILES) {
      const b = readFileSync(join(outB, f));
      expect(b.equals(Buffer.from(cm.data![f]!, 'utf8')), `${f}: report RUN = the ConfigMap`).toBe(true);
      expect(b.equals(readFileSync(join(outA, f))), `${f}: report RUN = submit --out`).toBe(true);
      expect(b.equals(readFileSync(join(outC, f))), `${f}: report RUN = the embedded renderer`).toBe(true);
    }
    const junit = await cli(['report', quick, '-n', ns, '--format', 'junit'], ci);
    expect(junit.code).toBe(0);
    expect(junit.stdout).toBe(cm.data!['junit.xml']);
    const refused = await cli(['report', quick, '-n', ns, '--baseline', 'old.json'], ci);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--baseline applies to a result document on disk; for a run, write its files with --out DIR, then: swarmbench report DIR\/results\.json --baseline/);
  });

  it('get, describe and logs, as the CI ServiceAccount: the row, the conditions and steps, the runner’s output', async () => {
    const g = await cli(['get', '-n', ns], ci);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/^NAME\s+PHASE\s+ATTEMPT\s+PASSED\s+SUCCESS\s+VERDICT\s+STEP\s+AGE$/m);
    expect(g.stdout).toMatch(new RegExp(`^${quick}\\s+Succeeded\\s+1\\s+3/3\\s+100%\\s+Passed\\s+\\d+[smh]$`, 'm'));
    const d = await cli(['describe', quick, '-n', ns], ci);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^Phase:\s+Succeeded, attempt 1/m);
    expect(d.stdout).toMatch(/^\s+Ready\s+True\s+TargetsMet\s/m);
    expect(d.stdout).toMatch(new RegExp(`^\\s+integration\\s+done\\s+${quick}-a1-integration\\s+3 measurements$`, 'm'));
    expect(d.stdout).toMatch(/AttemptStarted/);
    expect(d.stdout).not.toMatch(/\(jobs:|\(events:|\(results:/); // the Role lets it read every section
    const l = await cli(['logs', quick, '-n', ns], ci);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toMatch(new RegExp(`^==> runner of step integration: pod ${quick}-a1-integration-[a-z0-9]+ on swarmbench-cpu-\\d, Succeeded, container runner <==$`, 'm'));
    expect(l.stdout).toContain('"message":"step result written"');
    const bad = await cli(['logs', quick, '-n', ns, '--step', 'warp'], ci);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`swarmbench logs: run ${quick} has no step "warp" (its steps: integration)\n`);
  });

  it('kubectl swarmbench: the same commands through kubectl’s plugin mechanism, and its completion', async () => {
    const plugins = join(work, 'plugins');
    mkdirSync(plugins);
    symlinkSync(join(REPO_ROOT, 'bin', 'kubectl-swarmbench.js'), join(plugins, 'kubectl-swarmbench'));
    symlinkSync(join(REPO_ROOT, 'bin', 'kubectl_complete-swarmbench.js'), join(plugins, 'kubectl_complete-swarmbench'));
    // kubectl finds the plugin on PATH; its `#!/usr/bin/env node` finds this Node (24).
    const env = { ...kubeEnv, KUBECONFIG: ci, PATH: `${plugins}:${dirname(process.execPath)}:${TOOLS_BIN}:${process.env.PATH}` };
    const kc = join(TOOLS_BIN, 'kubectl');
    const list = await exec(kc, ['plugin', 'list'], env);
    expect(list.stdout).toContain(join(plugins, 'kubectl-swarmbench'));
    const g = await exec(kc, ['swarmbench', 'get', quick, '-n', ns], env);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toMatch(new RegExp(`^${quick}\\s+Succeeded\\s+1\\s+3/3\\s+100%\\s+Passed`, 'm'));
    const missing = await exec(kc, ['swarmbench', 'get', 'no-such-run', '-n', ns], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`kubectl swarmbench get: run no-such-run not found in namespace ${ns}; list the runs with: kubectl swarmbench get -n ${ns}\n`);
    const complete = await exec(kc, ['__complete', 'swarmbench', 'get', '-n', ns, 'qu'], env);
    expect(complete.stdout.trim().split('\n')).toEqual([quick, ':4']);
    const commands = await exec(kc, ['__complete', 'swarmbench', 'sub'], env);
    expect(commands.stdout.trim().split('\n')).toEqual(['submit', ':4']);
  });

  it('an impossible target: exit 1, and the failed test named', async () => {
    const r = await cli(['submit', '-f', file('impossible.yaml', small('impossible', { spec: '  trials: 3\n  targets: {workflowLatencyMs: 0.001}\n' })), '-n', ns, '--wait', '--timeout', '5m']);
    expect(r.code, withLog(r)).toBe(1);
    expect(r.stdout).toMatch(/^VERDICT: FAILED · failed: 5\.1$/m);
    expect(r.stderr).toMatch(/swarmbench submit: run impossible-[a-z0-9]{5} failed \(success rate [\d.]+% < 90%\): 5\.1 \(exit 1\)\n$/);
  }, 360_000);

  it('an agent image that does not exist: exit 3, naming the image and the reason', async () => {
    const image = 'registry.invalid/no-such/agent:0.0.0';
    const r = await cli(['submit', '-f', file('noimage.yaml', small('noimage', { image })), '-n', ns, '--wait', '--stuck-after', '10s', '--timeout', '4m']);
    expect(r.code, withLog(r)).toBe(3);
    const last = r.stderr.trim().split('\n').slice(-2);
    expect(last[0]).toMatch(new RegExp(`^swarmbench submit: run (noimage-[a-z0-9]{5}) cannot be carried out: pod noimage-[a-z0-9]{5}-a1-integration-\\S+ \\(step integration\\): container agent: (ImagePullBackOff|ErrImagePull): image "${image.replace(/[./]/g, '\\$&')}" cannot be pulled \\(.+\\) \\(for \\d+ s\\) \\(exit 3\\)$`));
    expect(last[1]).toMatch(/the run goes on in the cluster: follow it with `swarmbench get noimage-[a-z0-9]{5} -n /);
    // delete: the run goes (and with it the pool that keeps failing: the garbage collector's work).
    const name = /run (noimage-[a-z0-9]{5})/.exec(last[0]!)![1]!;
    const d = await cli(['delete', name, '-n', ns]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(`benchmarkrun.swarmbench.io/${name} deleted\n`);
  }, 360_000);

  it('a baseline with a planted regression: exit 4; the baseline ConfigMap is owned by the run', async () => {
    // The first run's results, with 5.1 ten times faster: this run's 5.1 is then a clear regression.
    const doc = JSON.parse(readFileSync(join(outA, 'results.json'), 'utf8')) as { tests: { id: string; rawSamples?: number[]; value: number }[] };
    const t51 = doc.tests.find((t) => t.id === '5.1')!;
    expect(t51.rawSamples!.length).toBeGreaterThanOrEqual(5);
    t51.rawSamples = t51.rawSamples!.map((v) => v / 10);
    t51.value /= 10;
    const planted = file('planted.json', JSON.stringify(doc));
    // The same workload as the baseline's run (the quick example's integration category, its
    // default sizes, no Prometheus: the monitoring source is part of the workload): a baseline of
    // another workload is refused (src/report/fingerprint.ts).
    const regress = 'apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: regress}\nspec:\n  mode: quick\n  categories: [integration]\n  cleanup: {policy: Never}\n';
    const r = await cli(['submit', '-f', file('regress.yaml', regress), '-n', ns, '--baseline', planted, '--wait', '--timeout', '5m']);
    expect(r.code, withLog(r)).toBe(4);
    expect(r.stdout).toMatch(/^\s+5\.1\s+End-to-end workflow\s.*REGRESSED$/m);
    // 5.1 regressed (planted); another test may regress too by the machine's noise (the baseline's
    // other samples are the first run's), which changes nothing: the targets pass, the gate fails.
    expect(r.stderr).toMatch(/swarmbench submit: run (regress-[a-z0-9]{5}) regressed against the baseline: ([\d.]+, )*5\.1(, [\d.]+)* \(the targets alone pass\) \(exit 4\)\n$/);
    const name = /run (regress-[a-z0-9]{5}) regressed/.exec(r.stderr)![1]!;
    const run = (await custom.getNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', plural: 'benchmarkruns', namespace: ns, name })) as { metadata: { uid: string }; spec: { baseline: unknown } };
    expect(run.spec.baseline).toEqual({ configMapRef: { name: `${name}-baseline`, key: 'results.json' }, failOnRegression: true });
    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: `${name}-baseline` });
    expect(cm.metadata!.ownerReferences).toEqual([{ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', name, uid: run.metadata.uid }]);
    expect(JSON.parse(cm.data!['results.json']!).tests.find((t: { id: string }) => t.id === '5.1').rawSamples).toEqual(t51.rawSamples);
    // delete: the run, its baseline ConfigMap and its export (owned by the run) go by garbage collection.
    const d = await cli(['delete', name, '-n', ns]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(`benchmarkrun.swarmbench.io/${name} deleted\n`);
    expect(d.stderr).toBe(`swarmbench delete: the export ConfigMap ${name}-results goes with the run (--keep-export keeps it)\n`);
    await until('the baseline and export ConfigMaps to be collected', async () => {
      const cms = await core.listNamespacedConfigMap({ namespace: ns });
      return cms.items.some((c) => c.metadata!.name === `${name}-baseline` || c.metadata!.name === `${name}-results`) ? undefined : true;
    }, 60_000, 1000);
  }, 360_000);

  it('a timeout: exit 3 naming where the run was; rerun --wait follows the next attempt to exit 0', async () => {
    const manifest = file('timed.yaml', small('timed'));
    const r = await cli(['submit', '-f', manifest, '-n', ns, '--name', 'timed', '--wait', '--timeout', '2s']);
    expect(r.code, withLog(r)).toBe(3);
    expect(r.stderr).toMatch(/swarmbench submit: run timed did not finish in time: still (Pending|Running)(, step integration \(1\/1\))? after [23] s \(exit 3\)\n/);
    const again = await cli(['submit', '-f', manifest, '-n', ns, '--name', 'timed']);
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`swarmbench submit: run timed already exists in namespace ${ns}: choose another --name, omit --name for a generated one, or start it again with swarmbench rerun timed\n`);
    const re = await cli(['rerun', 'timed', '-n', ns, '--wait', '--timeout', '5m']);
    expect(re.code, withLog(re)).toBe(0);
    expect(re.stderr).toMatch(/^benchmarkrun\.swarmbench\.io\/timed: rerun requested \(swarmbench\.io\/rerun=\S+\); attempt 2 starts/m);
    expect(re.stderr).toMatch(/^attempt 2: 1 steps \(integration\)$/m);
    expect(re.stderr).toMatch(/swarmbench rerun: run timed passed \(success rate [\d.]+%\) \(exit 0\)\n$/);
    const g = await cli(['get', 'timed', '-n', ns]);
    expect(g.stdout).toMatch(/^timed\s+Succeeded\s+2\s+3\/3\s/m);
  }, 360_000);

  it('the errors a person meets are one line that says what to do', async () => {
    // No cluster reachable: a kubeconfig whose server has a port nobody listens on.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = file('dead.kubeconfig', readFileSync(KUBECONFIG, 'utf8').replace(APISERVER_URL, `https://127.0.0.1:${port}`));
    const unreachable = await cli(['get', '-n', ns], dead);
    expect(unreachable.code).toBe(3);
    oneLine(unreachable.stderr);
    expect(unreachable.stderr).toMatch(new RegExp(`^swarmbench get: cannot reach the Kubernetes API server at https://127\\.0\\.0\\.1:${port} \\(context \\S+\\): connection refused \\(ECONNREFUSED\\); check that the cluster is up, or choose another with --kubeconfig/--context\\n$`));

    // No permission: the verb, the resource, the namespace and the user.
    const list = await cli(['get', '-n', ns], nobody);
    expect(list.code).toBe(3);
    oneLine(list.stderr);
    expect(list.stderr).toBe(
      `swarmbench get: no permission: user system:serviceaccount:${ns}:nobody cannot list benchmarkruns.swarmbench.io in namespace ${ns}; ask a cluster admin for a role that grants it, e.g. kubectl create role swarmbench-user --verb=list --resource=benchmarkruns.swarmbench.io -n ${ns} (and a rolebinding)\n`,
    );
    const create = await cli(['submit', '-f', file('denied.yaml', small('denied')), '-n', ns], nobody);
    expect(create.code).toBe(3);
    expect(create.stderr).toMatch(new RegExp(`^swarmbench submit: no permission: user system:serviceaccount:${ns}:nobody cannot create benchmarkruns\\.swarmbench\\.io in namespace ${ns};`));

    // A run not found.
    const missing = await cli(['describe', 'no-such-run', '-n', ns]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`swarmbench describe: run no-such-run not found in namespace ${ns}; list the runs with: swarmbench get -n ${ns}\n`);

    // The CRD not installed: the real API server's answers for a group it does not serve (the
    // shared cluster keeps the CRD, so the group is another one): discovery says not served, and
    // the 404 of a read in it becomes the line about the CRD.
    expect(await resourceServed(custom, 'swarmbench.io', 'v1alpha1', 'benchmarkruns')).toBe(true);
    expect(await resourceServed(custom, 'not-installed.swarmbench.io', 'v1alpha1', 'benchmarkruns')).toBe(false);
    const err = await custom.getNamespacedCustomObject({ group: 'not-installed.swarmbench.io', version: 'v1alpha1', plural: 'benchmarkruns', namespace: ns, name: 'x' }).then(() => undefined, (e: unknown) => e);
    const e = explainError(err, { verb: 'get', resource: 'benchmarkruns', group: 'swarmbench.io', namespace: ns, name: 'x' }, { server: APISERVER_URL, context: 'test' }, false);
    expect(e.code).toBe(3);
    // The cluster's own server (on the host IP the pods reach it on).
    expect(e.message).toMatch(new RegExp(`^the BenchmarkRun CRD \\(benchmarkruns\\.swarmbench\\.io, swarmbench\\.io/v1alpha1\\) is not installed in the cluster at ${APISERVER_URL.replace(/[.]/g, '\\.')}: install SwarmBench first`));

    // An invalid manifest: the field named, nothing created.
    const invalid = await cli(['submit', '-f', file('invalid.yaml', small('invalid', { spec: '  trials: many\n' })), '-n', ns]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/invalid BenchmarkRun in .*invalid\.yaml:\n {2}spec\.trials: /);
  });

  it('delete RUN --keep-export removes the run and keeps its export, released from the run', async () => {
    const d = await cli(['delete', quick, '-n', ns, '--keep-export'], ci);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(`configmap/${quick}-results kept (released from the run)\nbenchmarkrun.swarmbench.io/${quick} deleted\n`);
    expect(d.stderr).toBe('');
    const gone = await cli(['get', quick, '-n', ns]);
    expect(gone.code, gone.stderr).toBe(2);
    expect(gone.stderr).toBe(`swarmbench get: run ${quick} not found in namespace ${ns}; list the runs with: swarmbench get -n ${ns}\n`);
    await core.readNamespacedConfigMap({ namespace: ns, name: `${quick}-results` });
  });
});
