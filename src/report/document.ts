/**
 * Builds the result document (`results.json`) from judged tests and the run's conditions.
 */
import { arch, cpus, hostname, platform as osPlatform, release, totalmem } from 'node:os';
import {
  API_VERSION_FULL,
  RESULT_SCHEMA_VERSION,
  ResultDocument,
  type Environment,
  type ResultDocument as ResultDocumentT,
  type StepResult,
  type TestResult,
} from '../api/schema.ts';
import type { Params } from '../plan/params.ts';
import { summarize } from './verdict.ts';

export function localEnvironment(params: Params, version: string, steps: readonly StepResult[]): Environment {
  const env: Environment = {
    platform: 'local',
    node: process.version,
    os: `${osPlatform()} ${release()}`,
    arch: arch(),
    hostname: hostname(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    agentImage: params.agents.image,
    swarmbenchVersion: version,
  };
  const inference = findDetails(steps, 'gpu');
  if (inference && typeof inference.backend === 'string') {
    env.inference = {
      backend: inference.backend,
      gpuInUse: inference.gpuInUse === true,
      ...(typeof inference.backendDetail === 'string' ? { detail: inference.backendDetail } : {}),
    };
  }
  if (params.categories.includes('monitoring')) {
    env.prometheus = {
      url: params.monitoring.prometheusUrl,
      mode: params.monitoring.prometheusUrl ? 'prometheus' : 'direct-scrape',
    };
  }
  return env;
}

function findDetails(steps: readonly StepResult[], category: string): Record<string, unknown> | undefined {
  for (const s of steps) {
    if (s.category !== category) continue;
    for (const m of s.measurements) if (m.details && 'backend' in m.details) return m.details;
  }
  return undefined;
}

export function buildResultDocument(input: {
  name: string;
  namespace?: string;
  attempt: number;
  params: Params;
  startedAt: string;
  finishedAt: string;
  tests: TestResult[];
  environment: Environment;
}): ResultDocumentT {
  const doc: ResultDocumentT = {
    apiVersion: API_VERSION_FULL,
    kind: 'BenchmarkResult',
    schemaVersion: RESULT_SCHEMA_VERSION,
    run: {
      name: input.name,
      ...(input.namespace ? { namespace: input.namespace } : {}),
      attempt: input.attempt,
      mode: input.params.mode,
      categories: input.params.categories,
      startedAt: input.startedAt,
      finishedAt: input.finishedAt,
    },
    environment: input.environment,
    targets: { ...input.params.targets },
    summary: summarize(input.tests, input.params.targets.successRate),
    tests: input.tests,
  };
  // The document must always satisfy its own schema: a bug here is caught before anyone reads it.
  return ResultDocument.parse(doc);
}
