/**
 * The one-line errors of the cluster commands (src/cli/cluster/errors.ts, client.ts, guard.ts)
 * and their exit codes, from errors shaped as @kubernetes/client-node 2.x and undici's fetch
 * give them (the cluster test checks the same against the real API server), and the argument
 * rules (args.ts, report-any.ts, submit.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseManifestText } from '../../src/api/validate.ts';
import { parseCommand, parseDurationOption, prog, runNameArg } from '../../src/cli/cluster/args.ts';
import { loadConfig } from '../../src/cli/cluster/client.ts';
import { causeCodes, CliError, explainError, type Operation } from '../../src/cli/cluster/errors.ts';
import { EXIT } from '../../src/cli/cluster/exit.ts';
import { guarded } from '../../src/cli/cluster/guard.ts';
import { baselineKind, generatedName, prepareManifest } from '../../src/cli/cluster/submit.ts';
import { firstPositional, reportTarget } from '../../src/cli/report-any.ts';

const target = { server: 'https://10.0.0.1:6443', context: 'prod' };
const getRun: Operation = { verb: 'get', resource: 'benchmarkruns', group: 'swarmbench.io', namespace: 'bench', name: 'nightly' };
const createRun: Operation = { verb: 'create', resource: 'benchmarkruns', group: 'swarmbench.io', namespace: 'bench', name: 'nightly' };
const api = (code: number, body: unknown) => new ApiException(code, `HTTP-Code: ${code}`, body, {});
/** What undici's fetch throws: a TypeError whose cause is the socket's error. */
const fetchFailed = (code: string, message = `connect ${code} 10.0.0.1:6443`) => new TypeError('fetch failed', { cause: Object.assign(new Error(message), { code }) });

function explain(err: unknown, op = getRun, crd?: boolean): CliError {
  const e = explainError(err, op, target, crd);
  expect(e.message, 'one line').not.toContain('\n');
  return e;
}

describe('errors a person meets', () => {
  it('no cluster reachable: refused, unknown host, no answer in time; exit 3, naming the server and context', () => {
    const refused = explain(fetchFailed('ECONNREFUSED'));
    expect(refused.code).toBe(EXIT.infrastructure);
    expect(refused.message).toBe(
      'cannot reach the Kubernetes API server at https://10.0.0.1:6443 (context prod): connection refused (ECONNREFUSED); check that the cluster is up, or choose another with --kubeconfig/--context',
    );
    expect(explain(fetchFailed('ENOTFOUND')).message).toMatch(/host not found \(ENOTFOUND\)/);
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    expect(explain(timeout).message).toBe('the API server at https://10.0.0.1:6443 did not answer in time (get benchmarkruns.swarmbench.io): check the cluster, or raise --request-timeout');
    expect(explain(fetchFailed('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain')).message).toMatch(/failed the TLS check \(SELF_SIGNED_CERT_IN_CHAIN\).*certificate-authority-data/);
    // Anything else says what it was doing and every cause.
    expect(explain(new TypeError('fetch failed', { cause: new Error('bad port') })).message).toBe(
      'cannot get benchmarkruns.swarmbench.io in namespace bench at https://10.0.0.1:6443: fetch failed: bad port',
    );
    expect(causeCodes(fetchFailed('ECONNRESET'))).toEqual(['ECONNRESET']);
  });

  it('no permission: the user, the verb, the resource and the namespace, and how to grant it; exit 3', () => {
    const body = {
      kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403,
      message: 'benchmarkruns.swarmbench.io is forbidden: User "system:serviceaccount:bench:ci" cannot create resource "benchmarkruns" in API group "swarmbench.io" in the namespace "bench"',
    };
    const e = explain(api(403, JSON.stringify(body)), createRun);
    expect(e.code).toBe(EXIT.infrastructure);
    expect(e.message).toBe(
      'no permission: user system:serviceaccount:bench:ci cannot create benchmarkruns.swarmbench.io in namespace bench; ask a cluster admin for a role that grants it, e.g. kubectl create role swarmbench-user --verb=create --resource=benchmarkruns.swarmbench.io -n bench (and a rolebinding)',
    );
    const logs = explain(api(403, { message: 'forbidden' }), { verb: 'get', resource: 'pods/log', group: '', namespace: 'bench', name: 'p' });
    expect(logs.message).toMatch(/^no permission: you cannot get pods\/log in namespace bench; .*--verb=get --resource=pods\/log -n bench/);
  });

  it('the CRD not installed (the group is not served): exit 3 and how to install; a run not found: exit 2 and how to list', () => {
    const notFound = api(404, { kind: 'Status', reason: 'NotFound', message: 'benchmarkruns.swarmbench.io "nightly" not found', code: 404 });
    const crd = explain(api(404, '404 page not found'), getRun, false);
    expect(crd.code).toBe(EXIT.infrastructure);
    expect(crd.message).toMatch(/^the BenchmarkRun CRD \(benchmarkruns\.swarmbench\.io, swarmbench\.io\/v1alpha1\) is not installed in the cluster at https:\/\/10\.0\.0\.1:6443: install SwarmBench first \(helm install/);
    const run = explain(notFound, getRun, true);
    expect(run.code).toBe(EXIT.invalid);
    expect(run.message).toBe(`run nightly not found in namespace bench; list the runs with: ${prog()} get -n bench`);
    // A create that finds no namespace says so.
    expect(explain(api(404, { reason: 'NotFound', message: 'namespaces "bench" not found' }), createRun, true)).toMatchObject({
      code: EXIT.invalid,
      message: 'namespace bench not found: create it (kubectl create namespace bench) or choose another with -n',
    });
    // A ConfigMap's 404 never reads as a missing CRD.
    expect(explain(notFound, { verb: 'get', resource: 'configmaps', group: '', namespace: 'bench', name: 'x-results' }, false).message).toBe('configmap x-results not found in namespace bench');
  });

  it('the credentials refused (401): exit 3; what the server refused (422) or a name taken (409): exit 2; the rest: exit 3 with the code', () => {
    expect(explain(api(401, { message: 'Unauthorized' })).message).toMatch(/refused the credentials of context prod \(HTTP 401 Unauthorized\): log in again/);
    const invalid = explain(api(422, { reason: 'Invalid', message: 'BenchmarkRun.swarmbench.io "x" is invalid: \n* spec.mode: Unsupported value: "fast"\n* spec.trials: Invalid value' }), createRun);
    expect(invalid.code).toBe(EXIT.invalid);
    expect(invalid.message).toContain('spec.mode: Unsupported value: "fast"; * spec.trials');
    expect(explain(api(409, { reason: 'AlreadyExists' }), createRun)).toMatchObject({ code: EXIT.invalid, message: 'run nightly already exists in namespace bench: choose another --name, or omit --name for a generated one' });
    expect(explain(api(500, { reason: 'InternalError', message: 'etcdserver: request timed out\nmore' }))).toMatchObject({
      code: EXIT.infrastructure,
      message: 'get benchmarkruns.swarmbench.io nightly in namespace bench: HTTP 500 InternalError: etcdserver: request timed out',
    });
  });

  it('the guard prints `<prog> <command>: <message>` and returns the code; an unforeseen error is 3', async () => {
    const lines: string[] = [];
    const sink = { write: (s: string) => lines.push(s) };
    expect(await guarded('get', async () => { throw new CliError('run x not found', EXIT.invalid); }, sink).main([])).toBe(2);
    expect(await guarded('get', async () => { throw new Error('boom'); }, sink).main([])).toBe(3);
    expect(await guarded('get', async () => 0, sink).main([])).toBe(0);
    expect(lines).toEqual([`${prog()} get: run x not found\n`, `${prog()} get: boom\n`]);
  });
});

describe('the kubeconfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-kc-'));
  const kc = join(dir, 'config');
  writeFileSync(kc, `apiVersion: v1
kind: Config
clusters: [{name: c1, cluster: {server: "https://10.0.0.1:6443"}}]
users: [{name: u1, user: {token: t}}]
contexts: [{name: one, context: {cluster: c1, user: u1, namespace: team}}, {name: two, context: {cluster: c1, user: u1}}]
current-context: one
`);

  it('--kubeconfig and --context pick the cluster; a missing file or context is exit 2 naming it', () => {
    expect(loadConfig({ kubeconfig: kc }).getCurrentContext()).toBe('one');
    expect(loadConfig({ kubeconfig: kc, context: 'two' }).getCurrentContext()).toBe('two');
    expect(() => loadConfig({ kubeconfig: join(dir, 'nope') })).toThrow(expect.objectContaining({ code: EXIT.invalid, message: `--kubeconfig ${join(dir, 'nope')}: no such file` }));
    expect(() => loadConfig({ kubeconfig: kc, context: 'three' })).toThrow(expect.objectContaining({ code: EXIT.invalid, message: '--context three: no such context in the kubeconfig (contexts: one, two)' }));
  });

  it('no configuration anywhere is exit 3 with what to do', () => {
    const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, KSH: process.env.KUBERNETES_SERVICE_HOST };
    try {
      delete process.env.KUBECONFIG;
      delete process.env.KUBERNETES_SERVICE_HOST;
      process.env.HOME = dir;
      expect(() => loadConfig({})).toThrow(expect.objectContaining({ code: EXIT.infrastructure, message: expect.stringMatching(/^no Kubernetes cluster configured: .*pass --kubeconfig FILE or set KUBECONFIG$/) }));
      process.env.KUBECONFIG = join(dir, 'missing');
      expect(() => loadConfig({})).toThrow(expect.objectContaining({ message: expect.stringContaining(`$KUBECONFIG (${join(dir, 'missing')}) names no file that exists`) }));
    } finally {
      for (const [k, v] of [['KUBECONFIG', saved.KUBECONFIG], ['HOME', saved.HOME], ['KUBERNETES_SERVICE_HOST', saved.KSH]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('arguments', () => {
  it('durations: units, bare seconds, zero only where allowed, a bound; bad ones name the option', () => {
    expect(parseDurationOption('timeout', '30m')).toBe(1_800_000);
    expect(parseDurationOption('timeout', '1h30m')).toBe(5_400_000);
    expect(parseDurationOption('timeout', '90')).toBe(90_000);
    expect(parseDurationOption('timeout', '250ms')).toBe(250);
    expect(parseDurationOption('stuck-after', '0', true)).toBe(0);
    expect(() => parseDurationOption('timeout', '0')).toThrow('--timeout: must be longer than zero');
    expect(() => parseDurationOption('timeout', '30 minutes')).toThrow('--timeout: "30 minutes" is not a duration; write it like 30s, 10m or 1h30m');
    expect(() => parseDurationOption('timeout', '49h')).toThrow('--timeout: at most 48h');
  });

  it('run names are DNS labels; a hostile name is cut in the message', () => {
    expect(runNameArg('nightly-1')).toBe('nightly-1');
    expect(() => runNameArg(undefined)).toThrow(/give the run's name \(RUN\)/);
    expect(() => runNameArg('Nightly')).toThrow(/"Nightly" is not a run name/);
    const long = 'x'.repeat(5000);
    try {
      runNameArg(long, '--name');
    } catch (e) {
      expect((e as CliError).code).toBe(EXIT.invalid);
      expect((e as CliError).message.length).toBeLessThan(250);
      expect((e as CliError).message.startsWith('--name: ')).toBe(true);
    }
  });

  it('parseCommand: the connection options, an unknown option or an extra argument is exit 2', () => {
    const p = parseCommand('get', ['-n', 'bench', '--context', 'c', '--request-timeout', '5s', 'run1'], { output: { type: 'string', short: 'o' } }, 1);
    expect(p.connection).toEqual({ namespace: 'bench', context: 'c', requestTimeoutMs: 5000 });
    expect(p.positionals).toEqual(['run1']);
    expect(() => parseCommand('get', ['--colour'], {}, 1)).toThrow(expect.objectContaining({ code: EXIT.invalid, message: expect.stringMatching(/Unknown option '--colour'.*; see .* get --help/) }));
    expect(() => parseCommand('get', ['a', 'b'], {}, 1)).toThrow('unexpected argument "b"');
    expect(() => parseCommand('get', ['-n', 'Bad_NS'], {}, 1)).toThrow('--namespace: "Bad_NS" is not a namespace name');
  });

  it('report X: a file when it exists, ends in .json or holds a /; else a run', () => {
    const exists = (p: string) => p === 'results';
    expect(reportTarget('results', exists)).toBe('file');
    expect(reportTarget('old.json', exists)).toBe('file');
    expect(reportTarget('out/results', exists)).toBe('file');
    expect(reportTarget('nightly', exists)).toBe('run');
    expect(reportTarget(undefined, exists)).toBe('file');
    expect(firstPositional(['-f', 'markdown', '--out', 'dir', 'nightly'])).toBe('nightly');
    expect(firstPositional(['-n', 'bench', '--format=csv', 'x.json'])).toBe('x.json');
    expect(firstPositional(['--rules'])).toBeUndefined();
    expect(firstPositional(['--', '-weird'])).toBe('-weird');
    expect(baselineKind('last-release', () => false)).toBe('run');
    expect(baselineKind('old.json', () => false)).toBe('file');
    expect(baselineKind('baseline', (p) => p === 'baseline')).toBe('file');
  });

  it('submit: generated names fit 63 characters; categories override; a shared export name is left out with a note', () => {
    const seq = [0, 1, 2, 3, 4];
    expect(generatedName('quick', () => seq.shift()!)).toBe('quick-bcdfg');
    const long = generatedName('a'.repeat(80));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    const parsed = parseManifestText('apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: quick}\nspec: {mode: quick, export: {configMapName: quick-results}}\n');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const gen = prepareManifest(parsed.value, { categories: ['integration'], generated: true });
    expect(gen.manifest.spec.categories).toEqual(['integration']);
    expect(gen.manifest.spec.export).toBeUndefined();
    expect(gen.notes[0]).toMatch(/spec\.export\.configMapName \(quick-results\) is left out/);
    const exact = prepareManifest(parsed.value, { generated: false });
    expect(exact.manifest.spec.export).toEqual({ configMapName: 'quick-results' });
    expect(exact.notes).toEqual([]);
  });

  it('prog: kubectl swarmbench through the plugin executable', () => {
    expect(prog('/usr/local/bin/kubectl-swarmbench')).toBe('kubectl swarmbench');
    expect(prog('/x/bin/kubectl-swarmbench.js')).toBe('kubectl swarmbench');
    expect(prog('/x/bin/swarmbench.js')).toBe('swarmbench');
  });
});
