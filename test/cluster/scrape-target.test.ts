/**
 * The test Prometheus's pod targets (lib/scrape-target.ts, written by pod-sd.ts): runs in `npm test`,
 * no cluster needed.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { scrapeTarget } from './lib/scrape-target.ts';

describe('scrapeTarget', () => {
  it('builds file_sd targets from prometheus.io annotations', () => {
    const p: V1Pod = { metadata: { name: 'p', namespace: 'ns', annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9100', 'prometheus.io/path': '/m' } }, spec: { containers: [] } };
    expect(scrapeTarget(p, '10.244.0.9', 'n')).toEqual({ targets: ['10.244.0.9:9100'], labels: { __metrics_path__: '/m', __scheme__: 'http', namespace: 'ns', pod: 'p', node: 'n' } });
    expect(scrapeTarget({ metadata: {}, spec: { containers: [] } }, '1.2.3.4', 'n')).toBeUndefined();
  });
  it('falls back to the first containerPort, and labels app', () => {
    const p: V1Pod = {
      metadata: { name: 'a-0', namespace: 'ns', labels: { app: 'agent', 'app.kubernetes.io/name': 'swarmbench' }, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/scheme': 'https' } },
      spec: { containers: [{ name: 'x' }, { name: 'agent', ports: [{ containerPort: 8080 }, { containerPort: 9090 }] }] },
    };
    expect(scrapeTarget(p, '10.244.1.2', 'node-1')).toEqual({
      targets: ['10.244.1.2:8080'],
      labels: { __metrics_path__: '/metrics', __scheme__: 'https', namespace: 'ns', pod: 'a-0', node: 'node-1', app: 'agent', app_kubernetes_io_name: 'swarmbench' },
    });
  });
  it('skips a pod that asks to be scraped but names no port, or does not ask', () => {
    const noPort: V1Pod = { metadata: { annotations: { 'prometheus.io/scrape': 'true' } }, spec: { containers: [{ name: 'x' }] } };
    expect(scrapeTarget(noPort, '1.2.3.4', 'n')).toBeUndefined();
    const no: V1Pod = { metadata: { annotations: { 'prometheus.io/scrape': 'false', 'prometheus.io/port': '9100' } }, spec: { containers: [] } };
    expect(scrapeTarget(no, '1.2.3.4', 'n')).toBeUndefined();
  });
});
