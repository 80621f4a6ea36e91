/**
 * The operator's memory does not grow with history (issue 13, docs/operator.md "The Kubernetes
 * foundation"): a namespace holding 1000 export ConfigMaps of 500 KB (labelled as the operator
 * labels exports; `SWARMBENCH_BOUNDED_EXPORTS` sets the count) and an operator started with a
 * 256 MiB V8 heap. Its informers sync (/readyz), it still reconciles (a suspended run goes
 * Pending), and its resident memory stays under 256 MiB: the exports are neither listed nor
 * watched (the ConfigMap informer's selector), so the 500 MB never reach it.
 *
 * Kept simple on purpose: it creates the ConfigMaps through the API (about 500 MB in etcd, a few
 * minutes on the test cluster) and reads the RSS from /proc. Skipped (reason in the suite's name)
 * when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients, clusterGate, freePort, kill9, kubectl, prepareNamespace, startOperator, until } from './lib/itest.ts';

const gate = await clusterGate('operator bounded memory');

const ns = `op-bounded-${Date.now().toString(36)}`;
const EXPORTS = Number(process.env.SWARMBENCH_BOUNDED_EXPORTS ?? '1000');
const EXPORT_BYTES = 500 * 1024;
const HEAP_MB = 256;

/** The resident set of a local process, in bytes (Linux /proc). */
const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

describe.skipIf(!!gate.notUp)(gate.title, () => {
  const { core, custom } = adminClients();
  let op: { proc: ChildProcess; log: string[] } | undefined;

  beforeAll(async () => {
    prepareNamespace(ns);
    const data = 'x'.repeat(EXPORT_BYTES);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let n = next++; n < EXPORTS; n = next++) {
        await core.createNamespacedConfigMap({
          namespace: ns,
          body: {
            metadata: {
              name: `old-run-${n}-results`,
              labels: { 'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/run': `old-run-${n}`, 'swarmbench.io/attempt': '1', 'swarmbench.io/component': 'export' },
            },
            data: { 'results.json': data },
          },
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }, 900_000);

  afterAll(async () => {
    if (op) await kill9(op.proc);
    kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it(`with ${EXPORTS} export ConfigMaps of 500 KB the operator syncs, reconciles, and stays under a ${HEAP_MB} MiB heap`, async () => {
    const port = await freePort();
    op = startOperator(ns, ['--leader-elect', 'false', '--port', String(port)], 'bounded', { NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}` });
    await until('the operator ready (informers synced)', async () => {
      if (op!.proc.exitCode !== null) throw new Error(`the operator exited ${op!.proc.exitCode}: ${op!.log.join('').slice(-2000)}`);
      const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return r?.status === 200;
    }, 120_000, 500);

    await custom.createNamespacedCustomObject({
      group: 'swarmbench.io', version: 'v1alpha1', namespace: ns, plural: 'benchmarkruns',
      body: { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'suspended' }, spec: { mode: 'quick', suspend: true } },
    });
    await until('the suspended run Pending', async () => {
      const r = (await custom.getNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', namespace: ns, plural: 'benchmarkruns', name: 'suspended' })) as { status?: { phase?: string } };
      return r.status?.phase === 'Pending';
    }, 60_000, 500);

    expect(op.proc.exitCode).toBeNull();
    const rss = rssOf(op.proc.pid!);
    expect(rss).toBeLessThan(HEAP_MB * 1024 * 1024);
  }, 300_000);
});
