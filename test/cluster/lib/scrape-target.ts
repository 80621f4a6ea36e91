/**
 * A Prometheus `file_sd_configs` entry for a pod, as Kubernetes service discovery with the usual
 * `prometheus.io/*` annotations would give it: what test/cluster/pod-sd.ts writes for the test
 * Prometheus (Debian's 2.42 has no `kubernetes_sd_configs`). Pure; unit-tested without a cluster
 * (test/cluster/scrape-target.test.ts).
 */
import type { V1Pod } from '@kubernetes/client-node';

export interface ScrapeTarget {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * The target of a running pod that asks to be scraped (`prometheus.io/scrape: "true"`):
 * `<podIP>:<prometheus.io/port, else the first containerPort>`, path and scheme from
 * `prometheus.io/path` and `prometheus.io/scheme`, labels namespace, pod, node and app; undefined
 * when it does not ask or names no port.
 */
export function scrapeTarget(pod: V1Pod, podIP: string, nodeName: string): ScrapeTarget | undefined {
  const a = pod.metadata?.annotations ?? {};
  if (a['prometheus.io/scrape'] !== 'true') return undefined;
  let port = a['prometheus.io/port'];
  if (!port) {
    const p = pod.spec?.containers.flatMap((c) => c.ports ?? [])[0];
    if (!p) return undefined;
    port = String(p.containerPort);
  }
  return {
    targets: [`${podIP}:${port}`],
    labels: {
      __metrics_path__: a['prometheus.io/path'] || '/metrics',
      __scheme__: a['prometheus.io/scheme'] || 'http',
      namespace: pod.metadata?.namespace ?? '',
      pod: pod.metadata?.name ?? '',
      node: nodeName,
      ...(pod.metadata?.labels?.app ? { app: pod.metadata.labels.app } : {}),
      ...(pod.metadata?.labels?.['app.kubernetes.io/name'] ? { app_kubernetes_io_name: pod.metadata.labels['app.kubernetes.io/name'] } : {}),
    },
  };
}
