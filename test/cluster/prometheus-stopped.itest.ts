/**
 * A run's Prometheus stopped mid-run, on the real control plane (issue 13): a second Prometheus
 * of the test's own (the cluster's configuration: the pods' file_sd targets, the scrape token), a
 * run of the integration and monitoring steps pointed at it, and that Prometheus killed once the
 * first step's Job exists. The run still ends with every result; its observations say
 * `available: false` with the reason, in the export and the status, and no figure is a made-up 0:
 * there are no figures.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument } from '../../src/api/schema.ts';
import { HOST, STATE } from './lib/config.ts';
import { ok } from './lib/http.ts';
import { adminClients, clusterGate, kill9, kubectl, prepareNamespace, readRun, startOperator, until } from './lib/itest.ts';

const gate = await clusterGate('prometheus stopped mid-run');
const ns = `prom-stop-${Date.now().toString(36)}`;

/** A free loopback port (the listener is closed before the port is used). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, HOST, r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

interface Run {
  status?: {
    phase?: string;
    tests?: { id: string; result: string; value: number | null; reason?: string }[];
    export?: { configMapName: string };
    observations?: { prometheus: string; reason?: string; available: number; figures: unknown[] };
  };
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let custom: CustomObjectsApi;
  let op: ChildProcess | undefined;
  let prom: ChildProcess | undefined;
  let log: string[] = [];
  let dir = '';
  let url = '';

  beforeAll(async () => {
    ({ core, batch, custom } = adminClients());
    prepareNamespace(ns);
    ({ proc: op, log } = startOperator(ns));
    const conf = join(STATE, 'prometheus', 'prometheus.yml');
    const bin = [process.env.SWARMBENCH_PROMETHEUS, '/usr/bin/prometheus'].find((p) => p && existsSync(p))!;
    dir = mkdtempSync(join(tmpdir(), 'sb-prom-'));
    writeFileSync(join(dir, 'prometheus.yml'), readFileSync(conf, 'utf8'));
    const port = await freePort();
    url = `http://${HOST}:${port}`;
    prom = spawn(bin, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${HOST}:${port}`, '--log.level=warn'], { stdio: 'ignore' });
    await until('the second Prometheus to be ready', async () => (await ok(`${url}/-/ready`)) || undefined, 60_000, 250);
  });

  afterAll(async () => {
    op?.kill('SIGKILL');
    prom?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('its Prometheus killed after the first step started: every result, observations unavailable with the reason, no 0 made up', async () => {
    const manifest =
      `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: blind, namespace: ${ns}}\n` +
      `spec:\n  mode: quick\n  categories: [integration, monitoring]\n  trials: 3\n  agents: {poolSize: 3}\n  prometheus: {url: "${url}"}\n`;
    expect(kubectl(['apply', '-f', '-'], manifest).code).toBe(0);
    await until('the first step Job', async () => (await batch.listNamespacedJob({ namespace: ns, labelSelector: 'swarmbench.io/run=blind' })).items.length > 0 || undefined, 120_000, 500);
    await kill9(prom!);
    console.log(`killed the run's Prometheus (${url}) once the first step had started`);
    const r = await until('the run to finish', async () => {
      const x = await readRun<Run>(custom, ns, 'blind');
      return ['Succeeded', 'Failed'].includes(x.status?.phase ?? '') ? x : undefined;
    }, 600_000, 1000).catch((e: unknown) => {
      throw new Error(`${String(e)}\noperator log:\n${log.join('').slice(-3000)}`);
    });
    // Every test of both steps has a result.
    const ids = r.status!.tests!.map((t) => t.id);
    expect(ids.filter((id) => id.startsWith('5.')).length).toBeGreaterThanOrEqual(3);
    expect(ids.filter((id) => id.startsWith('3.')).length).toBe(5);
    // The observations: unavailable, with the reason; in the status and the export.
    expect(r.status!.observations).toMatchObject({ prometheus: 'unavailable', available: 0 });
    expect(r.status!.observations!.reason).toMatch(/ECONNREFUSED|unreachable|unavailable/);
    const exp = await core.readNamespacedConfigMap({ namespace: ns, name: r.status!.export!.configMapName });
    const doc = ResultDocument.parse(JSON.parse(exp.data!['results.json']!));
    console.log(`observations: ${JSON.stringify(doc.observations?.prometheus)}; steps ${doc.observations?.steps.length}`);
    expect(doc.observations!.prometheus).toMatchObject({ url, available: false });
    expect(doc.observations!.steps).toEqual([]);
    // A test that reads Prometheus did not pass on a 0: it has a value measured before the stop,
    // or none with its reason.
    for (const t of r.status!.tests!) if (t.value === null) expect(t.reason ?? '', t.id).not.toBe('');
  }, 900_000);
});
