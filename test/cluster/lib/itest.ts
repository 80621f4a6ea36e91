/**
 * What the cluster test files share: the gate (skip with the reason in the suite's name when the
 * test cluster is down; fail under SWARMBENCH_REQUIRE_CLUSTER=1), waiting for a condition with a
 * deadline, kubectl, the runner RBAC, and an operator process with its log kept for failures.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  AppsV1Api, BatchV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { CLI_ENTRY, REPO_ROOT } from '../../../src/paths.ts';
import { APISERVER_URL, KUBECONFIG, PKI, SCRAPE_TOKEN_FILE, TOOLS_BIN } from './config.ts';
import { ok } from './http.ts';

/** Why the cluster is not usable, or undefined when it is. */
export async function clusterNotUp(): Promise<string | undefined> {
  if (!existsSync(KUBECONFIG)) return `no kubeconfig at ${KUBECONFIG}`;
  const readyz = await ok(`${APISERVER_URL}/readyz`, { ca: join(PKI, 'ca.crt'), cert: join(PKI, 'admin.crt'), key: join(PKI, 'admin.key') });
  return readyz ? undefined : `API server ${APISERVER_URL} is not ready`;
}

/** The suite gate: `describe.skipIf(!!gate.notUp)(gate.title, ...)`. */
export async function clusterGate(name: string): Promise<{ notUp: string | undefined; title: string }> {
  const notUp = await clusterNotUp();
  if (notUp && process.env.SWARMBENCH_REQUIRE_CLUSTER === '1') throw new Error(`the test cluster is not up (${notUp}); run npm run cluster:up`);
  if (notUp) process.stderr.write(`${name}: SKIPPED, the test cluster is not up (${notUp})\n`);
  return { notUp, title: notUp ? `${name} [SKIPPED: cluster not up: ${notUp}; run npm run cluster:up]` : name };
}

/** A TCP port free on loopback now (for a local process's metrics or health listener). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something other than undefined/false, or fails after the deadline. */
export async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** The API clients the cluster tests use, as the cluster's admin. */
export function adminClients() {
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
    leases: kc.makeApiClient(CoordinationV1Api),
  };
}

/** A BenchmarkRun as the API server has it now (the caller names the fields it reads). */
export async function readRun<T>(custom: CustomObjectsApi, namespace: string, name: string): Promise<T> {
  return (await custom.getNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', namespace, plural: 'benchmarkruns', name })) as T;
}

export const kubeEnv = { ...process.env, KUBECONFIG, PATH: `${TOOLS_BIN}:${process.env.PATH}` };

export function kubectl(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(join(TOOLS_BIN, 'kubectl'), args, { env: kubeEnv, encoding: 'utf8', input, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The CRD, a fresh namespace and the runner's RBAC (the shipped manifests/runner-rbac.yaml). */
export function prepareNamespace(ns: string): void {
  for (const args of [['apply', '-f', join(REPO_ROOT, 'crds')], ['create', 'namespace', ns], ['apply', '-n', ns, '-f', join(REPO_ROOT, 'manifests', 'runner-rbac.yaml')]]) {
    const r = kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  }
  const w = kubectl(['wait', '--for=condition=Established', 'crd/benchmarkruns.swarmbench.io', '--timeout=30s']);
  if (w.code !== 0) throw new Error(`the CRD is not established: ${w.stderr}`);
}

/**
 * A BenchmarkRun created directly (no operator watching), to own what a test creates by hand
 * through the platform; returns its uid. prepareNamespace(ns) first.
 */
export async function createOwnerRun(ns: string, name: string, spec: Record<string, unknown>): Promise<string> {
  const { custom } = adminClients();
  const br = (await custom.createNamespacedCustomObject({
    group: 'swarmbench.io', version: 'v1alpha1', namespace: ns, plural: 'benchmarkruns',
    body: { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name }, spec },
  })) as { metadata: { uid: string } };
  return br.metadata.uid;
}

export interface OperatorProcess {
  proc: ChildProcess;
  /** The last lines it logged (stderr), for failure messages. */
  log: string[];
}

/**
 * The admission policy of the test operators: the chart's defaults, plus loopback Prometheus URLs
 * (these operators run as processes on this machine, and some tests give a run a Prometheus of
 * their own on loopback; never in a real cluster).
 */
export const TEST_ADMISSION = JSON.stringify({ prometheus: { allowLoopback: true } });

/**
 * `swarmbench operator` as a process watching one namespace (test images `swarmbench:dev`), with
 * TEST_ADMISSION and the test Prometheus's scrape token (copied into each run's token Secret, so
 * the agents' /metrics answer that Prometheus). `extra` flags come last and win.
 */
export function startOperator(ns: string, extra: string[] = ['--leader-elect', 'false'], id = 'operator', env: Record<string, string> = {}): OperatorProcess {
  const scrape = existsSync(SCRAPE_TOKEN_FILE) ? ['--metrics-token-file', SCRAPE_TOKEN_FILE] : [];
  const proc = spawn(
    process.execPath,
    [
      CLI_ENTRY, 'operator', '--namespace', ns, '--image', 'swarmbench:dev', '--gpu-image', 'swarmbench-gpu:dev', '--port', '0', '--host', '127.0.0.1',
      '--admission', TEST_ADMISSION, ...scrape, ...extra,
    ],
    { cwd: REPO_ROOT, env: { ...kubeEnv, POD_NAME: id, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const log: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    log.push(d);
    if (log.length > 300) log.shift();
  });
  return { proc, log };
}

/** SIGKILL and wait for the exit. */
export async function kill9(p: ChildProcess): Promise<void> {
  p.kill('SIGKILL');
  if (p.exitCode === null && p.signalCode === null) await new Promise((r) => p.once('exit', r));
}
