/**
 * A cluster run's result document for the report tests: the quick fixture
 * (test/fixtures/results-quick.json) as if it had run on Kubernetes, with runner environments on
 * two nodes and Prometheus observations holding measured figures, unavailable ones with their
 * reasons, and a step without figures. Used by test/unit/observations-report.test.ts and the
 * golden exports (test/unit/report-golden.test.ts).
 */
import type { Environment, ObservedMetric, Observations, ResultDocument } from '../../src/api/schema.ts';

const metric = (name: string, unit: string, statistic: ObservedMetric['statistic'], value: number | null, extra: Partial<ObservedMetric> = {}): ObservedMetric => ({
  name,
  unit,
  value,
  statistic,
  source: extra.source ?? 'kubelet',
  query: `q_${name}`,
  ...extra,
});

const window = (start: string, end: string) => ({ start, end, stepSeconds: 1 });
const NO_DCGM = 'no DCGM metrics (no DCGM_FI_DEV_GPU_UTIL series in the window)';

export const OBSERVATIONS: Observations = {
  prometheus: { url: 'http://prometheus.monitoring:9090', available: true },
  steps: [
    {
      step: 'scalability',
      category: 'scalability',
      window: window('2026-11-28T09:05:00.000Z', '2026-11-28T09:06:00.000Z'),
      resourceSource: 'kubelet',
      metrics: [
        metric('agent_memory_bytes', 'bytes', 'max', 52428800),
        metric('agent_memory_peak_bytes', 'bytes', 'max', 61341696),
        metric('agent_cpu_cores', 'cores', 'avg', 0.125),
        metric('pool_size', 'agents', 'max', 50),
        metric('scrape_duration_p95_seconds', 's', 'p95', 0.0042, { source: 'prometheus' }),
        metric('samples_ingested_per_second', 'samples/s', 'rate', 1234.5, { source: 'prometheus' }),
        metric('gpu_utilization_percent', '%', 'avg', null, { source: 'dcgm', reason: NO_DCGM }),
      ],
    },
    {
      step: 'gpu',
      category: 'gpu',
      window: window('2026-11-28T09:06:00.000Z', '2026-11-28T09:07:00.000Z'),
      resourceSource: 'agent',
      metrics: [
        metric('agent_memory_bytes', 'bytes', 'max', null, { source: 'agent', reason: 'no agent of this step was scraped in the window' }),
        metric('agent_cpu_cores', 'cores', 'avg', 0, { source: 'agent' }),
        metric('gpu_utilization_percent', '%', 'avg', null, { source: 'dcgm', reason: NO_DCGM }),
      ],
    },
    { step: 'stress', category: 'stress', window: window('bad', 'bad'), reason: 'the step\'s window is not a valid pair of times', metrics: [] },
  ],
};

export const UNAVAILABLE: Observations = {
  prometheus: { url: null, available: false, reason: "neither spec.prometheus.url nor the operator's --prometheus-url is set" },
  steps: [],
};

const runner = (nodeName: string, steps: string[], cpus: number): NonNullable<Environment['runners']>[number] => ({
  nodeName,
  hostname: `quick-a1-${steps[0]}-x7k2p`,
  node: 'v24.21.0',
  os: 'linux 6.8.0-kube',
  arch: 'x64',
  cpus,
  cpuModel: 'Intel Xeon',
  memoryBytes: 64 * 2 ** 30,
  memoryLimitBytes: 2 * 2 ** 30,
  cpuSet: { availableParallelism: cpus, quotaCpus: 2, quotaSource: '/sys/fs/cgroup/cpu.max', effectiveCpus: 2 },
  steps,
});

/** The document as a cluster run: runners on two nodes, and the observations given. */
export function observedDoc(doc: ResultDocument, observations: Observations = OBSERVATIONS): ResultDocument {
  const runners = [runner('worker-1', ['distributed', 'monitoring', 'scalability', 'integration', 'stress'], 16), runner('gpu-1', ['gpu'], 32)];
  const { cpuSet: _local, ...env } = doc.environment;
  return {
    ...doc,
    run: { ...doc.run, namespace: 'bench' },
    environment: { ...env, platform: 'kubernetes', hostname: 'worker-1,gpu-1', node: 'v24.21.0', os: 'linux 6.8.0-kube', cpus: 16, cpuModel: 'Intel Xeon', memoryBytes: 64 * 2 ** 30, agentImage: 'reg/swarmbench:0.1.0', runners, prometheus: { url: 'http://prometheus.monitoring:9090', mode: 'prometheus' } },
    observations,
  };
}
