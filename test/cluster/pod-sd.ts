/**
 * Prometheus targets for the test cluster's pods: Debian's Prometheus 2.42 has no
 * `kubernetes_sd_configs`, so this daemon lists the pods every 2 s (the admin kubeconfig) and writes
 * each running, ready-or-not pod with `prometheus.io/scrape: "true"` as a `file_sd_configs` target
 * (lib/scrape-target.ts: `<podIP>:<prometheus.io/port or the first containerPort>`,
 * labels namespace, pod, node, app) into <state>/prometheus/targets/pods.json, replaced atomically
 * and only when it changed. Started and stopped by test/cluster/cluster.ts.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { APISERVER_URL, PKI, PROM_TARGETS } from './lib/config.ts';
import { get } from './lib/http.ts';
import { sleep } from './lib/proc.ts';
import { scrapeTarget, type ScrapeTarget } from './lib/scrape-target.ts';

const auth = { ca: join(PKI, 'ca.crt'), cert: join(PKI, 'admin.crt'), key: join(PKI, 'admin.key'), timeoutMs: 10_000 };
let last = '';
let stopping = false;
process.on('SIGTERM', () => (stopping = true));
process.on('SIGINT', () => (stopping = true));

while (!stopping) {
  try {
    const r = await get(`${APISERVER_URL}/api/v1/pods?fieldSelector=status.phase%3DRunning`, auth);
    if (r.status === 200) {
      const pods = (JSON.parse(r.body) as { items: V1Pod[] }).items;
      const targets: ScrapeTarget[] = [];
      for (const p of pods) {
        const ip = p.status?.podIP;
        if (!ip || !p.spec?.nodeName || p.metadata?.deletionTimestamp) continue;
        const t = scrapeTarget(p, ip, p.spec.nodeName);
        if (t) targets.push(t);
      }
      targets.sort((a, b) => a.targets[0]!.localeCompare(b.targets[0]!));
      const text = JSON.stringify(targets, null, 2);
      if (text !== last) {
        mkdirSync(dirname(PROM_TARGETS), { recursive: true });
        writeFileSync(`${PROM_TARGETS}.tmp`, text);
        renameSync(`${PROM_TARGETS}.tmp`, PROM_TARGETS);
        last = text;
      }
    } else console.error(`pod-sd: listing pods: HTTP ${r.status}`);
  } catch (e) {
    console.error(`pod-sd: ${e instanceof Error ? e.message : String(e)}`);
  }
  await sleep(2000);
}
