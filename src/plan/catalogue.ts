/**
 * The Phase 9 catalogue: 27 tests, what each reports, and the target it is judged against.
 * `docs/tests.md` explains what each test really measures. Default targets are the suite's.
 */
import type { Category, Targets } from '../api/schema.ts';

export type TargetKey = keyof Required<Targets>;
export type Op = '<' | '<=' | '>' | '>=';
export type StatisticName = 'p50' | 'p95' | 'p99' | 'mean' | 'max' | 'min' | 'ratio' | 'count' | 'rate' | 'value';

export interface TestDef {
  id: string;
  name: string;
  category: Category;
  unit: string;
  statistic: StatisticName;
  op: Op;
  /** The target this test is judged against; `fixedTarget` for tests whose target is not a setting. */
  targetKey?: TargetKey;
  fixedTarget?: number;
  /** Tests that only mean something on a GPU: Skipped with a reason when none is verified in use. */
  gpuOnly?: boolean;
}

export const DEFAULT_TARGETS: Required<Targets> = {
  successRate: 90,
  clusterFormationMs: 5000,
  spawnLatencyMs: 50,
  distributedLatencyMs: 10,
  stateSyncMs: 1000,
  loadBalanceDeviation: 0.15,
  failoverSeconds: 30,
  gpuSpeedup: 4.22,
  batchScalingMin: 2,
  gpuMemoryGrowthMB: 100,
  cpuFallbackMs: 100,
  sustainedThroughputRatio: 0.9,
  monitoringLatencyMs: 50,
  scrapeDurationMs: 100,
  dashboardUpdatesPerSec: 1,
  alertLatencyMs: 500,
  metricsSamplesPerSec: 1000,
  scalingEfficiency: 90,
  workflowLatencyMs: 5000,
  concurrentWorkflowsMs: 10000,
  cleanupMemoryMB: 50,
  sustainedErrorRatePct: 1,
  sustainedP95DriftPct: 20,
  spikeRecoverySeconds: 5,
};

const t = (
  id: string,
  name: string,
  category: Category,
  unit: string,
  statistic: StatisticName,
  op: Op,
  target: TargetKey | number,
  gpuOnly = false,
): TestDef => ({
  id,
  name,
  category,
  unit,
  statistic,
  op,
  ...(typeof target === 'number' ? { fixedTarget: target } : { targetKey: target }),
  ...(gpuOnly ? { gpuOnly } : {}),
});

export const CATALOGUE: readonly TestDef[] = [
  t('1.1', 'Cluster formation', 'distributed', 'ms', 'p50', '<', 'clusterFormationMs'),
  t('1.2', 'Agent spawn latency', 'distributed', 'ms/agent', 'p50', '<', 'spawnLatencyMs'),
  t('1.3', 'Cross-node latency', 'distributed', 'ms', 'p50', '<', 'distributedLatencyMs'),
  t('1.4', 'State synchronisation', 'distributed', 'ms', 'p95', '<', 'stateSyncMs'),
  t('1.5', 'Load balancing', 'distributed', 'MARD', 'value', '<', 'loadBalanceDeviation'),
  t('1.6', 'Failure recovery', 'distributed', 's', 'p50', '<', 'failoverSeconds'),
  t('2.1', 'Neural speedup', 'gpu', 'x', 'ratio', '>=', 'gpuSpeedup', true),
  t('2.2', 'Batch processing', 'gpu', 'x', 'ratio', '>=', 'batchScalingMin'),
  t('2.3', 'Memory management', 'gpu', 'MB', 'max', '<', 'gpuMemoryGrowthMB'),
  t('2.4', 'CPU fallback', 'gpu', 'ms', 'p50', '<', 'cpuFallbackMs'),
  t('2.5', 'Sustained throughput', 'gpu', 'ratio', 'ratio', '>=', 'sustainedThroughputRatio'),
  t('3.1', 'WebSocket latency', 'monitoring', 'ms', 'p50', '<', 'monitoringLatencyMs'),
  t('3.2', 'Prometheus scrape duration', 'monitoring', 'ms', 'p95', '<', 'scrapeDurationMs'),
  t('3.3', 'Dashboard update rate', 'monitoring', 'updates/s', 'rate', '>=', 'dashboardUpdatesPerSec'),
  t('3.4', 'Alert latency', 'monitoring', 'ms', 'p50', '<', 'alertLatencyMs'),
  t('3.5', 'Metrics volume', 'monitoring', 'samples/s', 'rate', '>=', 'metricsSamplesPerSec'),
  t('4.1', 'Scaling step 1', 'scalability', '%', 'ratio', '>=', 'scalingEfficiency'),
  t('4.2', 'Scaling step 2', 'scalability', '%', 'ratio', '>=', 'scalingEfficiency'),
  t('4.3', 'Scaling step 3', 'scalability', '%', 'ratio', '>=', 'scalingEfficiency'),
  t('4.4', 'Scaling step 4', 'scalability', '%', 'ratio', '>=', 'scalingEfficiency'),
  t('4.5', 'Scaling step 5', 'scalability', '%', 'ratio', '>=', 'scalingEfficiency'),
  t('5.1', 'End-to-end workflow', 'integration', 'ms', 'p50', '<', 'workflowLatencyMs'),
  t('5.2', 'Concurrent workflows', 'integration', 'ms', 'max', '<', 'concurrentWorkflowsMs'),
  t('5.3', 'Resource cleanup', 'integration', 'MB', 'max', '<', 'cleanupMemoryMB'),
  t('6.1', 'Sustained load', 'stress', '%', 'value', '<', 'sustainedErrorRatePct'),
  t('6.2', 'Spike recovery', 'stress', 's', 'value', '<', 'spikeRecoverySeconds'),
  t('6.3', 'Resource exhaustion', 'stress', 'lost tasks', 'count', '<=', 0),
];

export function testsOf(category: Category): TestDef[] {
  return CATALOGUE.filter((d) => d.category === category);
}

export function defOf(id: string): TestDef {
  const d = CATALOGUE.find((x) => x.id === id);
  if (!d) throw new Error(`unknown test id ${id}`);
  return d;
}

export function meets(value: number, op: Op, target: number): boolean {
  switch (op) {
    case '<':
      return value < target;
    case '<=':
      return value <= target;
    case '>':
      return value > target;
    case '>=':
      return value >= target;
  }
}

export function targetText(op: Op, value: number): string {
  return `${op}${value}`;
}

/** The target value of a test under the effective targets. */
export function targetOf(def: TestDef, targets: Required<Targets>): number {
  if (def.fixedTarget !== undefined) return def.fixedTarget;
  return targets[def.targetKey!];
}
