/**
 * The one source of truth for SwarmBench's API: the `BenchmarkRun` spec and status, and the
 * result document a run writes. The TypeScript types, the runtime validation (CLI and operator)
 * and the CRD's openAPIV3Schema (`npm run gen:crd`, see `crd.ts`) all derive from these schemas.
 *
 * Decisions the design left open, written down here:
 * - Every field of the spec is optional; `src/plan/params.ts` resolves mode-dependent defaults.
 *   The schema carries no `default`s so the API server never rewrites what a user applied.
 * - Bounds are deliberately tight ("absurdly large values" are errors, not hours of work):
 *   at most 5000 agents in a pool, sustained load at most 24h, batch sizes at most 65536.
 * - Cross-field rules the CRD cannot express (task mix summing to 1, spike sizes ordered,
 *   exactly five scalability steps) are zod refinements; the operator reports them as a
 *   condition, the CLI as exit code 2.
 */
import { z } from 'zod';
import { DEFECT_PATTERN, parseDefectList, type DefectSite } from '../agent/defects.ts';
import { API_GROUP, API_VERSION, API_VERSION_FULL, CONFIG_KEY, DNS_SUBDOMAIN, LABEL_VALUE, QUALIFIED_NAME, QUALIFIED_NAME_MESSAGE, qualifiedNameProblem } from '../kube/names.ts';
import { Distribution } from '../stats.ts';
import { CpuSetSchema, HostLoadSchema, RunnerEnvironment } from './machine.ts';
import { Observations } from './observations.ts';
import { Fingerprint } from './fingerprint.ts';
import { NotificationsStatus, NotifySpec } from './notify.ts';

// The resource's identity is defined once, with the other Kubernetes names, in kube/names.ts.
export { API_GROUP, API_VERSION, API_VERSION_FULL };
export const RESULT_SCHEMA_VERSION = 1;

export const CATEGORIES = ['distributed', 'gpu', 'monitoring', 'scalability', 'integration', 'stress'] as const;
export const Category = z.enum(CATEGORIES);
export type Category = z.infer<typeof Category>;

export const Mode = z.enum(['quick', 'full']);
export type Mode = z.infer<typeof Mode>;

/** A duration such as `90s`, `10m`, `1h30m`, `250ms`. Parsed by `parseDuration`. */
export const Duration = z
  .string()
  .regex(/^(\d+(ms|s|m|h))+$/, 'must be a duration like 30s, 10m or 1h30m');

const MAX_DURATION_MS = 24 * 3600 * 1000;

export function parseDuration(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h)/g)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  }
  return total;
}

const boundedDuration = (max = MAX_DURATION_MS) =>
  Duration.refine((d) => parseDuration(d) > 0, 'must be longer than zero').refine(
    (d) => parseDuration(d) <= max,
    `must be at most ${max / 3_600_000}h`,
  );

const positive = (max: number) => z.number().positive().max(max);
const poolSize = z.number().int().min(1).max(5000);

// Kubernetes names, keys and label values (issue 13): a spec field that becomes an object name, a
// data key, a label value or a label selector is checked as the API server checks it there
// (kube/names.ts), so a bad one is refused at apply (the CRD has the pattern, the API server names
// the field), not by a write of the operator again and again. What a pattern cannot say (a label
// key's name part over 63) is a refinement: SpecInvalid, the field named.
const objectName = (what: string) => z.string().min(1).max(253).regex(DNS_SUBDOMAIN, `must be a ${what} name: a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`);
const configKey = z.string().min(1).max(253).regex(CONFIG_KEY, "must be a data key: letters, digits, '-', '_' and '.'").refine((k) => k !== '.' && k !== '..', "must not be '.' or '..'");
const labelValue = z.string().max(63).regex(LABEL_VALUE, "must be a label value: at most 63 of letters, digits, '-', '_' and '.', starting and ending with a letter or digit");
const qualifiedName = z.string().max(317).regex(QUALIFIED_NAME, QUALIFIED_NAME_MESSAGE).refine((k) => !QUALIFIED_NAME.test(k) || !qualifiedNameProblem(k), { error: (i) => qualifiedNameProblem(String(i.input)) });

/** Targets: any may be overridden. Units are in the names. See docs/tests.md for each test. */
export const Targets = z
  .object({
    successRate: z.number().min(0).max(100),
    clusterFormationMs: positive(3_600_000),
    spawnLatencyMs: positive(600_000),
    distributedLatencyMs: positive(60_000),
    stateSyncMs: positive(600_000),
    loadBalanceDeviation: z.number().min(0).max(10),
    failoverSeconds: positive(3600),
    gpuSpeedup: positive(10_000),
    batchScalingMin: positive(10_000),
    gpuMemoryGrowthMB: z.number().min(0).max(1_000_000),
    cpuFallbackMs: positive(600_000),
    sustainedThroughputRatio: z.number().min(0).max(10),
    monitoringLatencyMs: positive(600_000),
    scrapeDurationMs: positive(600_000),
    dashboardUpdatesPerSec: z.number().min(0).max(100_000),
    alertLatencyMs: positive(600_000),
    metricsSamplesPerSec: z.number().min(0).max(1e9),
    scalingEfficiency: z.number().min(0).max(1000),
    workflowLatencyMs: positive(3_600_000),
    concurrentWorkflowsMs: positive(3_600_000),
    cleanupMemoryMB: z.number().min(0).max(1_000_000),
    sustainedErrorRatePct: z.number().min(0).max(100),
    sustainedP95DriftPct: z.number().min(0).max(100_000),
    spikeRecoverySeconds: positive(3600),
  })
  .partial()
  .strict();
export type Targets = z.infer<typeof Targets>;

export const ResourceRequirements = z
  .object({
    limits: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
    requests: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  })
  .strict();

/** As the API server checks a Pod's tolerations: a key is a label key, a value a label value, Exists takes no value, only NoExecute a tolerationSeconds. */
export const Toleration = z
  .object({
    key: qualifiedName.optional(),
    operator: z.enum(['Exists', 'Equal']).optional(),
    value: labelValue.optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .strict()
  .refine((t) => t.operator !== 'Exists' || !t.value, { message: "must be empty when operator is 'Exists'", path: ['value'] })
  .refine((t) => t.tolerationSeconds === undefined || t.effect === 'NoExecute', { message: "tolerationSeconds needs effect 'NoExecute'", path: ['effect'] });

export const TaskMix = z
  .object({ io: z.number().min(0).max(1), cpu: z.number().min(0).max(1) })
  .strict()
  .refine((m) => Math.abs(m.io + m.cpu - 1) < 1e-6, { message: 'io + cpu must equal 1' });

/**
 * A list of defect profiles (docs/defects.md): `NAME` or `NAME:VALUE`, each profile at most once,
 * all of one site (`agents.defects` the agents', `gpu.defects` the inference backend's). The
 * catalogue and the parser are the reference agent's (`agent/defects.ts`).
 */
export function defectList(site: DefectSite) {
  return z
    .array(z.string().min(1).max(64).regex(DEFECT_PATTERN, 'must be a defect profile: NAME or NAME:VALUE'))
    .max(32)
    .superRefine((list, ctx) => {
      for (const e of parseDefectList(list, site).errors) ctx.addIssue({ code: 'custom', message: e.message, path: [e.index] });
    });
}

export const AgentsSpec = z
  .object({
    /** Agent image (Kubernetes) or `local` (the reference agent as local processes). */
    image: z.string().min(1).max(512).regex(/^\S+$/, 'must be an image reference without whitespace'),
    /** Pool sizes of the scalability tests 4.1–4.5: exactly five, strictly increasing. */
    steps: z
      .array(poolSize)
      .length(5, 'must list exactly five pool sizes (tests 4.1–4.5)')
      .refine((s) => s.every((v, i) => i === 0 || v > s[i - 1]!), 'must be strictly increasing'),
    /** Pool size of the distributed-coordination tests (1.x). */
    poolSize: z.number().int().min(2).max(5000),
    taskMix: TaskMix,
    /** Wait time of an I/O-bound task (ms): stands for an agent waiting on a model API. */
    ioTaskMs: z.number().min(0).max(60_000),
    /** Work of a CPU-bound task: rounds of SHA-256 over a 1 KiB buffer. */
    cpuTaskRounds: z.number().int().min(1).max(1_000_000),
    /** Tasks an agent runs at once before it sheds load with 429. */
    capacity: z.number().int().min(1).max(100_000),
    /** Offered load per agent in the scalability and stress tests (tasks/s). */
    ratePerAgent: z.number().positive().max(100_000),
    /** Local platform: agents per host process for large pools (each keeps its own listener). */
    agentsPerProcess: z.number().int().min(1).max(1000),
    /**
     * Kubernetes: agents hosted by one pod (one `swarmbench agent --count K` process). Pools that
     * kill single agents (1.6 failover) always get one per pod; needs the project's image.
     */
    agentsPerPod: z.number().int().min(1).max(100),
    resources: ResourceRequirements,
    /** Defect profiles of the reference agent (off by default): a system with known defects. */
    defects: defectList('agent'),
  })
  .partial()
  .strict();

export const GpuSpec = z
  .object({
    /** Label keys and values: the operator lists nodes with `key=value,...` (a value that is no label value would break that selector). */
    nodeSelector: z
      .record(z.string(), labelValue)
      .superRefine((m, ctx) => {
        for (const k of Object.keys(m)) {
          const problem = qualifiedNameProblem(k);
          if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [k] });
        }
      }),
    tolerations: z.array(Toleration).max(64),
    resources: ResourceRequirements,
    model: z.enum(['small', 'medium', 'large']),
    batchSizes: z
      .array(z.number().int().min(1).max(65_536))
      .min(2)
      .max(16)
      .refine((s) => s.every((v, i) => i === 0 || v > s[i - 1]!), 'must be strictly increasing'),
    /** Inference backend: `auto` picks the best one present. */
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']),
    /** Defect profiles of the inference backend (off by default). */
    defects: defectList('inference'),
  })
  .partial()
  .strict();

export const SecretKeyRef = z.object({ name: objectName('Secret'), key: configKey }).strict();

export const PrometheusQuery = z
  .object({
    name: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a metric-like name'),
    query: z.string().min(1).max(4096),
    unit: z.string().max(32).optional(),
  })
  .strict();

export const PrometheusSpec = z
  .object({
    url: z.url({ protocol: /^https?$/ }),
    bearerTokenSecretRef: SecretKeyRef.optional(),
    /** Scrape interval the local platform configures and the scrape-duration test compares against. */
    scrapeInterval: Duration.optional(),
    queries: z.array(PrometheusQuery).max(64).optional(),
  })
  .strict();

/** The most runs a pooled baseline (`spec.baseline.pool`) names; report/baseline.ts MAX_POOLED_RUNS. */
export const MAX_BASELINE_POOL = 10;

export const BaselineSpec = z
  .object({
    runRef: objectName('BenchmarkRun').optional(),
    configMapRef: z.object({ name: objectName('ConfigMap'), key: configKey.optional() }).strict().optional(),
    /**
     * A pooled baseline: runs of this namespace (newest first) whose samples are pooled, test by
     * test, and compared with this run's (a schedule's `pooled` policy sets it).
     */
    pool: z
      .array(objectName('BenchmarkRun'))
      .min(1)
      .max(MAX_BASELINE_POOL)
      .refine((p) => new Set(p).size === p.length, 'must not repeat a run')
      .optional(),
    /** Fail the run when a gated metric regresses. */
    failOnRegression: z.boolean().optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    const set = (['runRef', 'configMapRef', 'pool'] as const).filter((k) => b[k] !== undefined);
    if (set.length > 1) ctx.addIssue({ code: 'custom', message: `name one baseline: ${set.join(' and ')} are both set`, path: [set[1]!] });
  });

export const StressSpec = z
  .object({
    sustainedDuration: boundedDuration(),
    sustainedAgents: poolSize,
    spikeFrom: poolSize,
    spikeTo: poolSize,
    /** Offered load in test 6.3 as a multiple of the pool's capacity. */
    overloadFactor: z.number().min(1).max(100),
  })
  .partial()
  .strict()
  .refine((s) => s.spikeFrom === undefined || s.spikeTo === undefined || s.spikeTo > s.spikeFrom, {
    message: 'spikeTo must be larger than spikeFrom',
    path: ['spikeTo'],
  });

export const BenchmarkRunSpec = z
  .object({
    mode: Mode.optional(),
    categories: z
      .array(Category)
      .min(1)
      .refine((c) => new Set(c).size === c.length, 'must not repeat a category')
      .optional(),
    /** Trials of each measured test (several, for median and p95). */
    trials: z.number().int().min(3).max(10_000).optional(),
    targets: Targets.optional(),
    agents: AgentsSpec.optional(),
    gpu: GpuSpec.optional(),
    prometheus: PrometheusSpec.optional(),
    baseline: BaselineSpec.optional(),
    stress: StressSpec.optional(),
    export: z.object({ configMapName: objectName('ConfigMap') }).strict().optional(),
    cleanup: z
      .object({
        policy: z.enum(['Always', 'OnSuccess', 'Never']).optional(),
        ttlSecondsAfterFinished: z.number().int().min(0).max(31_536_000).optional(),
        ttlSecondsAfterFailure: z.number().int().min(0).max(31_536_000).optional(),
      })
      .strict()
      .optional(),
    suspend: z.boolean().optional(),
    /** Webhooks told when an attempt ends (docs/notifications.md; the operator only). */
    notify: NotifySpec.optional(),
  })
  .strict();
export type BenchmarkRunSpec = z.infer<typeof BenchmarkRunSpec>;

const nameRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const ObjectMeta = z
  .object({
    name: z.string().min(1).max(63).regex(nameRe, 'must be a DNS-1123 label'),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    generation: z.number().int().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    creationTimestamp: z.string().optional(),
  })
  .loose();

/** A `BenchmarkRun` manifest as `kubectl apply` and `swarmbench run -f` take it. */
export const BenchmarkRunManifest = z.object({
  apiVersion: z.literal(API_VERSION_FULL),
  kind: z.literal('BenchmarkRun'),
  metadata: ObjectMeta,
  spec: BenchmarkRunSpec,
  status: z.unknown().optional(),
});
export type BenchmarkRunManifest = z.infer<typeof BenchmarkRunManifest>;

// ---------------------------------------------------------------------------------------------
// Results

export const Verdict = z.enum(['Passed', 'Failed']);
export const TestOutcome = z.enum(['Passed', 'Failed', 'Skipped']);
export type TestOutcome = z.infer<typeof TestOutcome>;

// The distribution of a sample set is defined with the statistics that compute it (src/stats.ts).
export { Distribution };

export const Statistic = z.enum(['p50', 'p95', 'p99', 'mean', 'max', 'min', 'ratio', 'count', 'rate', 'value']);
export const TargetOp = z.enum(['<', '<=', '>', '>=']);

export const TestResult = z.object({
  id: z.string().regex(/^[1-6]\.[1-6]$/),
  name: z.string(),
  category: Category,
  result: TestOutcome,
  /** Why the test failed or was skipped. */
  reason: z.string().optional(),
  value: z.number().nullable(),
  unit: z.string(),
  /** The statistic of the samples that `value` is and the target compares. */
  statistic: Statistic,
  target: z.object({ op: TargetOp, value: z.number() }),
  /** Number of samples (trials, round trips, tasks...) behind `value`. */
  samples: z.number().int().min(0),
  /** What one sample is, plural ("trials", "agents", "round trips"); absent: "samples". */
  sampleUnit: z.string().max(40).optional(),
  distribution: Distribution.optional(),
  /** Raw samples (capped) for baseline comparison. */
  rawSamples: z.array(z.number()).optional(),
  /** Test-specific measurements (counts, per-size figures, conditions). */
  details: z.record(z.string(), z.unknown()).optional(),
  durationMs: z.number().min(0),
});
export type TestResult = z.infer<typeof TestResult>;

export const Summary = z.object({
  total: z.number().int(),
  passed: z.number().int(),
  failed: z.number().int(),
  skipped: z.number().int(),
  /** passed / (total - skipped), in percent; null when every test was skipped. */
  successRate: z.number().nullable(),
  verdict: Verdict,
  /** Metrics reported Regressed against the baseline (present when the run was compared). */
  regressions: z.number().int().min(0).optional(),
  /** The baseline gate was on (spec.baseline.failOnRegression): a regression fails the verdict. */
  regressionGate: z.boolean().optional(),
});
export type Summary = z.infer<typeof Summary>;

export const Environment = z.object({
  platform: z.enum(['local', 'kubernetes']),
  node: z.string(),
  os: z.string(),
  arch: z.string(),
  hostname: z.string(),
  cpus: z.number().int(),
  cpuModel: z.string(),
  memoryBytes: z.number(),
  agentImage: z.string(),
  swarmbenchVersion: z.string(),
  inference: z
    .object({ backend: z.string(), gpuInUse: z.boolean(), detail: z.string().optional() })
    .optional(),
  prometheus: z.object({ url: z.string().nullable(), mode: z.enum(['prometheus', 'direct-scrape']) }).optional(),
  /**
   * What really ran as the system under test (absent in documents written before it was
   * recorded): the reference agent, the user's command (`swarmbench run --agent-command`), the
   * user's agents by URL (`--agent-url`, the first 64 and the count), or a container image (with
   * its digest where the image reference pins one).
   */
  agents: z
    .object({
      kind: z.enum(['reference', 'command', 'urls', 'image']),
      image: z.string().optional(),
      digest: z.string().optional(),
      command: z.string().optional(),
      urls: z.array(z.string()).optional(),
      count: z.number().int().min(0).optional(),
    })
    .optional(),
  /** The CPUs the run could use (local runs; src/report/cpuset.ts). */
  cpuSet: CpuSetSchema.optional(),
  /**
   * In a cluster: the distinct runner environments of the steps (by node and figures), each with
   * the steps that ran there, in step order (src/report/assemble.ts). Absent locally and when no
   * step reported its environment (step results written before it was recorded).
   */
  runners: z.array(RunnerEnvironment.extend({ steps: z.array(z.string()) })).optional(),
  /** What the host did during a local run (machine.ts `HostLoadSchema`). */
  hostLoad: HostLoadSchema.optional(),
});
export type Environment = z.infer<typeof Environment>;

export const Priority = z.enum(['HIGH', 'MEDIUM', 'INFO']);
export type Priority = z.infer<typeof Priority>;

/** A recommendation: a rule of `src/report/recommend.ts` that fired on the measurements. */
export const Recommendation = z.object({
  /** The rule's name (docs/report.md lists every rule and its trigger). */
  rule: z.string(),
  priority: Priority,
  category: Category,
  /** The tests whose figures triggered it. */
  tests: z.array(z.string()),
  message: z.string(),
  /** The figures that triggered it, as measured. */
  evidence: z.array(z.string()),
  suggestion: z.string(),
});
export type Recommendation = z.infer<typeof Recommendation>;

export const ComparisonVerdict = z.enum(['Improved', 'Regressed', 'NoChange', 'InsufficientSamples']);
export type ComparisonVerdict = z.infer<typeof ComparisonVerdict>;

const SampleSide = z.object({ n: z.number().int().min(0), median: z.number().nullable() });

/** One test's samples in this run against the baseline's (see src/report/baseline.ts). */
export const MetricComparison = z.object({
  id: z.string(),
  name: z.string(),
  category: Category,
  unit: z.string(),
  /** From the test's target op: `<`/`<=` mean lower is better. */
  better: z.enum(['lower', 'higher']),
  /** A gated metric fails the verdict when it regresses and the spec asks for it. */
  gated: z.boolean(),
  baseline: SampleSide,
  current: SampleSide,
  /** Hodges–Lehmann estimate of current − baseline. */
  shift: z.number().nullable(),
  /** Confidence interval of the shift (distribution-free, Moses). */
  ci: z.tuple([z.number(), z.number()]).nullable(),
  /** shift / |baseline median| in percent. */
  changePct: z.number().nullable(),
  /** Mann-Whitney U of the current samples, and its two-sided p-value. */
  u: z.number().nullable(),
  p: z.number().nullable(),
  test: z.enum(['exact', 'normal']).nullable(),
  verdict: ComparisonVerdict,
  note: z.string().optional(),
});
export type MetricComparison = z.infer<typeof MetricComparison>;

export const Comparison = z.object({
  baseline: z.object({
    name: z.string(),
    attempt: z.number().int(),
    mode: Mode,
    startedAt: z.string(),
    finishedAt: z.string(),
    /** Where the baseline document came from (a file path, a ConfigMap), when known. */
    source: z.string().optional(),
    /** A pooled baseline: the other runs whose samples joined this one's (report/baseline.ts). */
    pool: z.array(z.object({ name: z.string(), attempt: z.number().int(), startedAt: z.string() })).max(16).optional(),
  }),
  method: z.object({
    alpha: z.number(),
    confidence: z.number(),
    minSamples: z.number().int(),
    minEffectPct: z.number(),
    failOnRegression: z.boolean(),
  }),
  metrics: z.array(MetricComparison),
  regressed: z.array(z.string()),
  improved: z.array(z.string()),
  unchanged: z.array(z.string()),
  insufficient: z.array(z.string()),
  /** Differences between the two runs' conditions that make figures less comparable. */
  warnings: z.array(z.string()),
});
export type Comparison = z.infer<typeof Comparison>;

// Observations (observations.ts): what Prometheus saw during each step's window.
export * from './observations.ts';
export * from './machine.ts';

export const ResultDocument = z.object({
  apiVersion: z.literal(API_VERSION_FULL),
  kind: z.literal('BenchmarkResult'),
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  run: z.object({
    name: z.string(),
    namespace: z.string().optional(),
    attempt: z.number().int().min(1),
    mode: Mode,
    categories: z.array(Category),
    startedAt: z.string(),
    finishedAt: z.string(),
  }),
  environment: Environment,
  /** The effective targets after defaults and overrides. */
  targets: z.record(z.string(), z.number()),
  summary: Summary,
  tests: z.array(TestResult),
  /** Rules that fired on the measurements (src/report/recommend.ts), highest priority first. */
  recommendations: z.array(Recommendation).optional(),
  /** The statistical comparison with an earlier result document, when one was given. */
  comparison: Comparison.optional(),
  /** Prometheus's figures over each step's window (agent CPU and memory, scrapes, GPU, spec queries). */
  observations: Observations.optional(),
  /** What the figures depend on besides the system under test (fingerprint.ts); absent in documents written before it. */
  fingerprint: Fingerprint.optional(),
});
export type ResultDocument = z.infer<typeof ResultDocument>;

// ---------------------------------------------------------------------------------------------
// Status (written by the operator through /status)

export const Condition = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.string(),
  observedGeneration: z.number().int().optional(),
});

export const BenchmarkRunStatus = z
  .object({
    phase: z.enum(['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled']),
    observedGeneration: z.number().int(),
    attempt: z.number().int(),
    startedAt: z.string(),
    finishedAt: z.string(),
    conditions: z.array(Condition),
    progress: z.object({
      completedSteps: z.number().int(),
      totalSteps: z.number().int(),
      currentStep: z.string().optional(),
    }),
    // The status is written with JSON merge patches, where null deletes a field: a figure that
    // was not measured is absent here (optional), not null.
    summary: Summary.extend({ passedOfTotal: z.string().optional(), successRate: z.number().optional() }),
    tests: z.array(
      TestResult.pick({ id: true, name: true, category: true, result: true, unit: true, reason: true }).extend({
        value: z.number().optional(),
        target: z.string(),
        p95: z.number().optional(),
      }),
    ),
    recommendations: z.array(
      z.object({ priority: z.enum(['HIGH', 'MEDIUM', 'INFO']), category: z.string(), message: z.string() }),
    ),
    comparison: z.object({
      baseline: z.string(),
      regressed: z.array(z.string()),
      improved: z.array(z.string()),
    }),
    export: z.object({ configMapName: z.string() }),
    /** The value of the `swarmbench.io/rerun` annotation that started the current attempt. */
    lastRerun: z.string(),
    history: z.array(z.object({ attempt: z.number().int(), phase: z.string(), verdict: z.string().optional(), successRate: z.number().nullable().optional(), finishedAt: z.string().optional() })).max(10),
    /**
     * The Prometheus observations of the attempt, in short (src/report/observations.ts
     * `observationStatus`): whether Prometheus answered (else why), how many figures were
     * measured and how many are unavailable, and the key figures per step (agent memory, CPU,
     * pool size, GPU; at most 32), an unavailable one with its reason instead of a value.
     */
    observations: z.object({
      attempt: z.number().int(),
      prometheus: z.enum(['available', 'unavailable']),
      reason: z.string().optional(),
      available: z.number().int().min(0),
      unavailable: z.number().int().min(0),
      figures: z.array(z.object({ step: z.string(), name: z.string(), unit: z.string(), value: z.number().optional(), reason: z.string().optional() })).max(32),
    }),
    /** The settled notifications of the current attempt (src/api/notify.ts, docs/notifications.md). */
    notifications: NotificationsStatus,
  })
  .partial();
export type BenchmarkRunStatus = z.infer<typeof BenchmarkRunStatus>;

// ---------------------------------------------------------------------------------------------
// Step results (what one runner writes: a file locally, a ConfigMap per step in Kubernetes)

export const MeasurementDoc = z.object({
  id: z.string(),
  value: z.number().nullable(),
  samples: z.number().int().min(0),
  raw: z.array(z.number()).optional(),
  distribution: Distribution.optional(),
  skip: z.string().optional(),
  fail: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  durationMs: z.number().optional(),
  /**
   * What one sample is, plural ("trials", "agents", "round trips", "tasks", "windows"): the
   * verdict's reason says "n=8 agents". Absent: "samples".
   */
  sampleUnit: z.string().max(40).optional(),
  /**
   * The statistic `value` really is when it is not the catalogue's: a bench that reduces its
   * samples otherwise says so here (report/verdict.ts also judges a percentile with too few
   * samples for it as the maximum).
   */
  statistic: Statistic.optional(),
});

/**
 * What a category measured for one test: the statistic the catalogue names (or null when nothing
 * could be measured), its samples, and `skip` / `fail` reasons. `report/verdict.ts` judges it.
 */
export type Measurement = z.infer<typeof MeasurementDoc>;

export const StepResult = z.object({
  apiVersion: z.literal(API_VERSION_FULL),
  kind: z.literal('StepResult'),
  step: z.string(),
  category: Category,
  attempt: z.number().int().min(1),
  startedAt: z.string(),
  finishedAt: z.string(),
  /** Where the step ran (hostname / node name). */
  node: z.string(),
  measurements: z.array(MeasurementDoc),
  /** Set when the category could not finish; its tests without a measurement fail with this reason. */
  error: z.string().optional(),
  /** The process that ran the step (absent in step results written before it was recorded). */
  environment: RunnerEnvironment.optional(),
  /**
   * This try of the step found agent pods of an earlier try (a runner pod that died mid-step and
   * the Job retried) and removed them before its first pool (platform/kubernetes/index.ts).
   */
  earlierTry: z.object({ agentPods: z.number().int().min(0) }).strict().optional(),
});
export type StepResult = z.infer<typeof StepResult>;
