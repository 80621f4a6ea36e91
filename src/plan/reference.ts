/**
 * The BenchmarkRun resource reference (`docs/reference.md`), rendered from the generated CRD's
 * openAPIV3Schema (`crd.ts`), so types, required fields, enums and bounds are the ones the API
 * server enforces. `node src/plan/gen-reference.ts` writes it; a unit test fails when the committed
 * file drifts.
 *
 * The schema carries no `default`s (the API server must not rewrite what a user applied) and its
 * doc comments are not in the CRD, so two things come from elsewhere:
 * - defaults: resolved the way a run resolves them (`resolveParams`, the catalogue's default
 *   targets), per mode where they differ; that is why this generator lives in plan/, above the
 *   schema it documents. Nothing at run time imports it.
 * - descriptions: `NOTES` below (the targets' from the catalogue). A test fails when a spec field
 *   has no note or a note names a field that no longer exists.
 */
import { CATALOGUE, DEFAULT_TARGETS } from './catalogue.ts';
import { resolveParams, type Params } from './params.ts';
import { buildCrd } from '../api/crd.ts';
import { CATEGORIES } from '../api/schema.ts';

type Json = Record<string, unknown>;

export const REFERENCE_PATH = 'docs/reference.md';

/** What each field means. Keys are field paths; `[]` is an array's element, `*` a map's value. */

/** The fields of a metav1.Condition, as both resources' references describe them. */
export const CONDITION_FIELD_DOCS: Record<string, string> = {
  'status.conditions[].type': 'Condition type.',
  'status.conditions[].status': 'True, False or Unknown.',
  'status.conditions[].reason': 'CamelCase reason.',
  'status.conditions[].message': 'Human-readable detail.',
  'status.conditions[].lastTransitionTime': 'When the status last changed.',
  'status.conditions[].observedGeneration': 'The generation the condition was set for.',
};

export const NOTES: Record<string, string> = {
  'spec': 'What to run and how to judge it. Every field is optional.',
  'spec.mode': 'Durations and sizes (not which tests run): `quick` finishes within minutes on a small machine, `full` uses the suite\'s sizes.',
  'spec.categories': 'Categories to run; the others are not planned. Each at most once.',
  'spec.trials': 'Trials of each measured test (median, p95 and p99 come from them).',
  'spec.targets.successRate': 'The verdict: passed / (total - skipped) must be at least this, %.',
  'spec.targets.sustainedP95DriftPct': "6.1 Sustained load, second condition: no window's p95-over-agents latency may rise more than this above both the median window of the run and the windows before it, %.",
  'spec.targets': 'Targets, any of which may be overridden; a test\'s verdict compares its statistic with its target (docs/tests.md).',
  'spec.agents': 'The agent pools of the distributed, scalability, integration and stress tests.',
  'spec.agents.image': 'Agent image (Kubernetes), or `local`: the reference agent as local processes. Any image that speaks the agent contract v1 (docs/agent-contract.md).',
  'spec.agents.steps': 'Pool sizes of the scalability tests 4.1-4.5: exactly five, strictly increasing.',
  'spec.agents.poolSize': 'Pool size of the distributed-coordination tests (1.x).',
  'spec.agents.taskMix': 'Shares of I/O-bound and CPU-bound tasks in the offered load; `io + cpu` must equal 1.',
  'spec.agents.taskMix.io': 'Share of I/O-bound tasks (waiting, as agents waiting on model APIs do).',
  'spec.agents.taskMix.cpu': 'Share of CPU-bound tasks.',
  'spec.agents.ioTaskMs': 'Wait time of an I/O-bound task, ms.',
  'spec.agents.cpuTaskRounds': 'Work of a CPU-bound task: rounds of SHA-256 over a 1 KiB buffer.',
  'spec.agents.capacity': 'Tasks an agent runs at once before it sheds load with 429.',
  'spec.agents.ratePerAgent': 'Offered load per agent in the scalability and stress tests, tasks/s.',
  'spec.agents.agentsPerProcess': 'Local platform: agents per host process for large pools (each keeps its own listener).',
  'spec.agents.agentsPerPod': 'Kubernetes: agents hosted by one pod (one `swarmbench agent --count K` process, ports 8080..8080+K-1). Pools that kill single agents (1.6 failover) always get one per pod. Needs the project\'s image.',
  'spec.agents.resources': 'Kubernetes resources of each agent container.',
  'spec.agents.resources.limits': 'Resource limits (quantities such as `500m`, `256Mi`).',
  'spec.agents.resources.requests': 'Resource requests.',
  'spec.agents.defects': 'Defect profiles of the reference agent, off by default: `NAME` or `NAME:VALUE`, each at most once (docs/defects.md lists them and what each imitates). Every agent of every pool runs with them, to see which tests catch a system with known defects. Ignored by a user\'s agent image.',
  'spec.gpu': 'The GPU-acceleration step: where its runner is scheduled and what it measures (docs/gpu.md).',
  'spec.gpu.nodeSelector': 'Node labels of the GPU step\'s Job. When no node matches, the step runs on an ordinary node and the GPU-only tests are Skipped.',
  'spec.gpu.tolerations': 'Tolerations of the GPU step\'s Job (core/v1 Toleration).',
  'spec.gpu.tolerations[].key': 'Taint key.',
  'spec.gpu.tolerations[].operator': 'How the key is matched.',
  'spec.gpu.tolerations[].value': 'Taint value (with `Equal`).',
  'spec.gpu.tolerations[].effect': 'Taint effect to tolerate; empty: all.',
  'spec.gpu.tolerations[].tolerationSeconds': 'With `NoExecute`: how long the pod stays bound after the taint appears.',
  'spec.gpu.resources': 'Resources of the GPU step\'s runner container.',
  'spec.gpu.resources.limits': 'Resource limits; `nvidia.com/gpu: 1` asks the device plugin for a GPU.',
  'spec.gpu.resources.requests': 'Resource requests.',
  'spec.gpu.model': 'The seeded model: `small` 784-512-256-10, `medium` 1024-2048-2048-1024-100, `large` 4096-4096-4096-4096-1000.',
  'spec.gpu.batchSizes': 'Batch sizes of 2.1 and 2.2, strictly increasing.',
  'spec.gpu.backend': 'The best inference backend to try: `auto` and `tensorflow` start at tfjs-node-gpu, `wasm` skips the TensorFlow bindings, `cpu` uses only the JavaScript backend.',
  'spec.gpu.defects': 'Defect profiles of the inference backend, off by default: `tensor-leak`, `throughput-decay`, `no-batching`, `no-fallback`, as `NAME` or `NAME:VALUE` (docs/defects.md).',
  'spec.prometheus': 'A Prometheus that scrapes the agents: the monitoring tests read its figures, and the operator queries it over each step\'s window (docs/monitoring.md).',
  'spec.prometheus.url': 'Base URL, http or https.',
  'spec.prometheus.bearerTokenSecretRef': 'A Secret key in the run\'s namespace holding a bearer token for Prometheus.',
  'spec.prometheus.bearerTokenSecretRef.name': 'Secret name.',
  'spec.prometheus.bearerTokenSecretRef.key': 'Key in the Secret.',
  'spec.prometheus.scrapeInterval': 'The scrape interval of that Prometheus (a duration such as `15s`): the step of range queries.',
  'spec.prometheus.queries': 'Extra PromQL, evaluated with `query_range` over each step\'s window and reported per series.',
  'spec.prometheus.queries[].name': 'Name the figure is reported under (metric-like).',
  'spec.prometheus.queries[].query': 'The PromQL expression.',
  'spec.prometheus.queries[].unit': 'Unit shown with the figure.',
  'spec.baseline': 'An earlier run to compare with: per test a Mann-Whitney U test and a Hodges-Lehmann shift; Improved, Regressed, NoChange or InsufficientSamples (docs/report.md).',
  'spec.baseline.runRef': 'Another BenchmarkRun in this namespace; its export ConfigMap is read.',
  'spec.baseline.configMapRef': 'A ConfigMap holding an earlier `results.json`.',
  'spec.baseline.configMapRef.name': 'ConfigMap name.',
  'spec.baseline.configMapRef.key': 'Key holding the result document; default `results.json`.',
  'spec.baseline.pool': 'A pooled baseline: BenchmarkRuns of this namespace, newest first, whose samples are joined test by test (a schedule\'s `pooled` policy sets it); runs not found or not measured alike are left out and named. One of runRef, configMapRef, pool.',
  'spec.baseline.failOnRegression': 'A Regressed test fails the verdict. Without it regressions are reported only.',
  'spec.stress': 'Sizes and durations of the stress tests (6.x).',
  'spec.stress.sustainedDuration': 'Length of the sustained-load test 6.1 (a duration such as `10m`, at most 24h).',
  'spec.stress.sustainedAgents': 'Pool size of 6.1.',
  'spec.stress.spikeFrom': 'Pool size before the spike of 6.2.',
  'spec.stress.spikeTo': 'Pool size after the spike of 6.2; larger than `spikeFrom`.',
  'spec.stress.overloadFactor': 'Offered load in 6.3 as a multiple of the pool\'s capacity.',
  'spec.export': 'Where the exports go.',
  'spec.export.configMapName': 'ConfigMap with `results.json`, `summary.csv`, `junit.xml`, `report.md` and `report.txt` (the same files `swarmbench run` writes); not owned by the run, so it outlives it. Default `<run>-results`.',
  'spec.cleanup': 'What happens to a finished attempt\'s Jobs, pods, pools and step results.',
  'spec.cleanup.policy': '`Always`, `OnSuccess` (a Succeeded attempt after `ttlSecondsAfterFinished`, a Failed or Cancelled one after `ttlSecondsAfterFailure`) or `Never`.',
  'spec.cleanup.ttlSecondsAfterFinished': 'Seconds after the attempt finished before the cleanup (with `OnSuccess`: after a Succeeded attempt).',
  'spec.cleanup.ttlSecondsAfterFailure': 'With `OnSuccess`: seconds a Failed or Cancelled attempt is kept for inspection (its Jobs, pods and step results), then cleaned up. Default one day.',
  'spec.suspend': '`true` cancels a running attempt (phase Cancelled) and starts none.',
  'spec.notify': 'Webhooks told when an attempt ends Succeeded or Failed: a CloudEvent or a Slack message, sent by the operator with retries and recorded in `status.notifications` (docs/notifications.md). At most 5 targets, each Secret, key and format once. The operator only: `swarmbench run` sends none.',
  'spec.notify[].secretRef': 'The Secret of the run\'s namespace whose key holds the webhook URL. The Secret must consent (label `swarmbench.io/consumer: "true"`) and, where the chart lists any, be in `rbac.notifySecrets`; otherwise the run is SpecInvalid naming this field.',
  'spec.notify[].secretRef.name': 'Secret name.',
  'spec.notify[].secretRef.key': 'Key whose value is the webhook URL (http or https, at most 2048 characters).',
  'spec.notify[].format': '`cloudevents`: a CloudEvents 1.0 structured JSON body; `slack`: a Slack incoming-webhook body.',
  'spec.notify[].events': 'The events this target gets: `finished` (every end), `regressed` (a test regressed against the baseline), `failed` (phase Failed).',
  'status': 'Written by the operator through the /status subresource.',
  'status.phase': 'Phase of the current attempt.',
  'status.observedGeneration': 'The `metadata.generation` of the spec the current attempt runs.',
  'status.attempt': 'Number of the current attempt (1, 2, ...). A new generation or a new `swarmbench.io/rerun` value after a finished attempt starts the next one.',
  'status.startedAt': 'When the current attempt started (RFC 3339).',
  'status.finishedAt': 'When it finished.',
  'status.conditions': 'metav1.Conditions: `Ready` (finished and passed), `Progressing` and `Reconciling` (kstatus) while an attempt runs, `Complete` (finished, whatever the verdict), `Degraded`, `Regressed` (with a baseline).',
  ...CONDITION_FIELD_DOCS,
  'status.progress': 'Steps of the plan.',
  'status.progress.completedSteps': 'Steps done.',
  'status.progress.totalSteps': 'Steps in the plan.',
  'status.progress.currentStep': 'The step running now (`<category>/<step>`).',
  'status.summary': 'The verdict of a finished attempt.',
  'status.summary.total': 'Tests planned.',
  'status.summary.passed': 'Tests passed.',
  'status.summary.failed': 'Tests failed.',
  'status.summary.skipped': 'Tests skipped (never counted as passed).',
  'status.summary.successRate': 'passed / (total - skipped), %. Absent when every test was skipped.',
  'status.summary.verdict': 'Failed below the success-rate target, or on a regression with `failOnRegression`.',
  'status.summary.regressions': 'Tests Regressed against the baseline.',
  'status.summary.regressionGate': 'Whether `spec.baseline.failOnRegression` was on.',
  'status.summary.passedOfTotal': '`passed/total`, for the printer column.',
  'status.tests': 'One entry per test.',
  'status.tests[].id': 'Test id, `1.1` to `6.3`.',
  'status.tests[].name': 'Test name.',
  'status.tests[].category': 'Its category.',
  'status.tests[].result': 'Passed, Failed or Skipped.',
  'status.tests[].unit': 'Unit of `value`.',
  'status.tests[].reason': 'Why it failed or was skipped.',
  'status.tests[].value': 'The statistic the target judges; absent when not measured.',
  'status.tests[].target': 'The target, e.g. `<10`.',
  'status.tests[].p95': 'p95 of the samples, where there are several.',
  'status.recommendations': 'Rules that fired on the measurements, highest priority first (docs/report.md).',
  'status.recommendations[].priority': 'HIGH, MEDIUM or INFO.',
  'status.recommendations[].category': 'Category of the tests that triggered it.',
  'status.recommendations[].message': 'What was found and what to do.',
  'status.comparison': 'The baseline comparison, when `spec.baseline` is set and the baseline was found.',
  'status.comparison.baseline': 'The baseline: a run name or `configmap/<name>`.',
  'status.comparison.regressed': 'Ids of Regressed tests.',
  'status.comparison.improved': 'Ids of Improved tests.',
  'status.export': 'Where the exports of the current attempt are.',
  'status.export.configMapName': 'The export ConfigMap.',
  'status.lastRerun': 'The `swarmbench.io/rerun` annotation value that started the current attempt.',
  'status.history': 'Earlier attempts, at most 10.',
  'status.history[].attempt': 'Attempt number.',
  'status.history[].phase': 'Its final phase.',
  'status.history[].verdict': 'Its verdict.',
  'status.history[].successRate': 'Its success rate, %.',
  'status.history[].finishedAt': 'When it finished.',
  'status.observations': 'The Prometheus observations of an attempt in short (results.json holds every figure): whether Prometheus answered, how many figures were measured and how many are unavailable, and the key figures per step.',
  'status.observations.attempt': 'The attempt they belong to.',
  'status.observations.prometheus': '`available`, or `unavailable` (no URL, no answer: then there are no figures and `reason` says why).',
  'status.observations.reason': 'Why Prometheus was unavailable.',
  'status.observations.available': 'Figures measured, over every step.',
  'status.observations.unavailable': 'Figures without a value, over every step (each with its reason in results.json).',
  'status.observations.figures': 'Per step: agent memory (`agent_memory_bytes`), agent CPU (`agent_cpu_cores`) and pool size (`pool_size`), and the GPU step\'s `gpu_utilization_percent`; at most 32.',
  'status.observations.figures[].step': 'The step.',
  'status.observations.figures[].name': 'The figure (docs/operator.md "Observations").',
  'status.observations.figures[].unit': 'Its unit.',
  'status.observations.figures[].value': 'Its value; absent when it is unavailable.',
  'status.observations.figures[].reason': 'Why it is unavailable (at most 200 characters), never a 0 instead.',
  'status.notifications': 'The notifications of the current attempt that settled (delivered, or given up for good), one per event and target: an operator that restarts sends what is not recorded here, never again what is.',
  'status.notifications[].id': 'The CloudEvent `id`, `<run uid>.<attempt>.<event>`: the same on every send of the event.',
  'status.notifications[].event': '`finished`, `regressed` or `failed`.',
  'status.notifications[].target': 'The target as `<secret>/<key>:<format>` (never the URL).',
  'status.notifications[].attempt': 'The attempt notified.',
  'status.notifications[].result': '`Delivered` (a 2xx answer) or `Failed` (refused, the tries spent, or the Secret unusable).',
  'status.notifications[].tries': 'HTTP requests made by the operator that settled it (0: none could be made).',
  'status.notifications[].at': 'When it settled.',
  'status.notifications[].reason': 'Why it failed (never the URL).',
};

/** Defaults as a run resolves them, read off the resolved params of each mode. */
const DEFAULTS: Record<string, (p: Params) => unknown> = {
  'spec.categories': (p) => p.categories,
  'spec.trials': (p) => p.trials,
  'spec.agents.image': (p) => p.agents.image,
  'spec.agents.steps': (p) => p.agents.steps,
  'spec.agents.poolSize': (p) => p.agents.poolSize,
  'spec.agents.taskMix': (p) => p.agents.taskMix,
  'spec.agents.ioTaskMs': (p) => p.agents.ioTaskMs,
  'spec.agents.cpuTaskRounds': (p) => p.agents.cpuTaskRounds,
  'spec.agents.capacity': (p) => p.agents.capacity,
  'spec.agents.ratePerAgent': (p) => p.agents.ratePerAgent,
  'spec.agents.agentsPerProcess': (p) => p.agents.agentsPerProcess,
  'spec.agents.agentsPerPod': (p) => p.agents.agentsPerPod,
  'spec.gpu.model': (p) => p.gpu.model,
  'spec.gpu.batchSizes': (p) => p.gpu.batchSizes,
  'spec.gpu.backend': (p) => p.gpu.backend,
  'spec.stress.sustainedDuration': (p) => `${p.stress.sustainedMs / 1000}s`,
  'spec.stress.sustainedAgents': (p) => p.stress.sustainedAgents,
  'spec.stress.spikeFrom': (p) => p.stress.spikeFrom,
  'spec.stress.spikeTo': (p) => p.stress.spikeTo,
  'spec.stress.overloadFactor': (p) => p.stress.overloadFactor,
};

/** Defaults that are not params (the operator's). */
const FIXED_DEFAULTS: Record<string, string> = {
  'spec.mode': '`quick`',
  'spec.export.configMapName': '`<run>-results`',
  'spec.agents.defects': 'none',
  'spec.gpu.defects': 'none',
  'spec.cleanup.policy': '`OnSuccess`',
  'spec.cleanup.ttlSecondsAfterFinished': '`0`',
  // operator/cleanup.ts FAILURE_TTL_SECONDS (test/unit/operator-reconcile.test.ts checks they agree).
  'spec.cleanup.ttlSecondsAfterFailure': '`86400`',
  'spec.suspend': '`false`',
  'spec.baseline.failOnRegression': '`false`',
  'spec.baseline.configMapRef.key': '`results.json`',
  'spec.notify[].format': '`cloudevents`',
  'spec.notify[].events': '`[finished]`',
};

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const show = (v: unknown): string => {
  if (Array.isArray(v)) return `\`[${v.map((x) => String(x)).join(', ')}]\``;
  if (isObj(v)) return `\`{${Object.entries(v).map(([k, x]) => `${k}: ${String(x)}`).join(', ')}}\``;
  return `\`${String(v)}\``;
};

function defaultOf(path: string): string {
  const fixed = FIXED_DEFAULTS[path];
  if (fixed) return fixed;
  if (path === 'spec.categories') return `all: ${show([...CATEGORIES])}`;
  const key = /^spec\.targets\.(\w+)$/.exec(path)?.[1];
  if (key) return show(DEFAULT_TARGETS[key as keyof typeof DEFAULT_TARGETS]);
  const get = DEFAULTS[path];
  if (!get) return '';
  const quick = show(get(resolveParams({ mode: 'quick' })));
  const full = show(get(resolveParams({ mode: 'full' })));
  return quick === full ? quick : `quick: ${quick}<br>full: ${full}`;
}

function noteOf(path: string): string {
  const key = /^spec\.targets\.(\w+)$/.exec(path)?.[1];
  if (key) {
    const tests = CATALOGUE.filter((t) => t.targetKey === key);
    if (tests.length === 0) return NOTES[path] ?? '';
    return tests.map((t) => `${t.id} ${t.name}: ${t.statistic} ${t.op} target (${t.unit})`).join('; ') + '.';
  }
  return NOTES[path] ?? '';
}

function typeOf(n: Json): string {
  if (n['x-kubernetes-int-or-string']) return 'int-or-string';
  if (n['x-kubernetes-preserve-unknown-fields'] && n.type === undefined) return 'any';
  if (n.type === 'array' && isObj(n.items)) return `[]${typeOf(n.items)}`;
  if (n.type === 'object' && !n.properties && isObj(n.additionalProperties)) return `map[string]${typeOf(n.additionalProperties)}`;
  if (n.type === 'object' && n['x-kubernetes-preserve-unknown-fields']) return 'object (any fields)';
  return String(n.type);
}

function constraintsOf(n: Json): string {
  const out: string[] = [];
  const c = n.type === 'array' && isObj(n.items) ? { ...n.items, minItems: n.minItems, maxItems: n.maxItems } : n;
  if (Array.isArray(c.enum)) out.push(`one of ${c.enum.map((e) => `\`${String(e)}\``).join(', ')}`);
  const min = c.minimum as number | undefined;
  const max = c.maximum as number | undefined;
  if (min !== undefined) out.push(`${c.exclusiveMinimum === true ? '>' : '>='} ${min}`);
  if (typeof c.exclusiveMinimum === 'number') out.push(`> ${c.exclusiveMinimum}`);
  if (max !== undefined) out.push(`${c.exclusiveMaximum === true ? '<' : '<='} ${max}`);
  if (typeof c.exclusiveMaximum === 'number') out.push(`< ${c.exclusiveMaximum}`);
  if (c.minLength !== undefined) out.push(`length >= ${String(c.minLength)}`);
  if (c.maxLength !== undefined) out.push(`length <= ${String(c.maxLength)}`);
  if (c.pattern !== undefined) out.push(`pattern \`${String(c.pattern).replace(/\|/g, '\\|')}\``);
  if (c.minItems !== undefined && c.minItems === c.maxItems) out.push(`exactly ${String(c.minItems)} items`);
  else {
    if (c.minItems !== undefined) out.push(`items >= ${String(c.minItems)}`);
    if (c.maxItems !== undefined) out.push(`items <= ${String(c.maxItems)}`);
  }
  return out.join(', ');
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export interface Table {
  path: string;
  node: Json;
}

/**
 * Objects that get a table of their own: spec, status, and every nested object (also array
 * elements), except below the paths in `stop` (documented elsewhere: a schedule's run template).
 */
export function tables(node: Json, path: string, out: Table[] = [], stop: ReadonlySet<string> = new Set()): Table[] {
  if (!isObj(node.properties)) return out;
  out.push({ path, node });
  for (const [k, v] of Object.entries(node.properties)) {
    if (!isObj(v)) continue;
    const p = `${path}.${k}`;
    if (stop.has(p)) continue;
    if (isObj(v.properties)) tables(v, p, out, stop);
    else if (v.type === 'array' && isObj(v.items) && isObj(v.items.properties)) tables(v.items, `${p}[]`, out, stop);
  }
  return out;
}

/** Every field path of the schema (the keys `NOTES` may use). */
export function fieldPaths(): string[] {
  const out: string[] = [];
  for (const t of tables(specAndStatus().spec, 'spec').concat(tables(specAndStatus().status, 'status'))) {
    if (!t.path.endsWith('[]')) out.push(t.path);
    for (const k of Object.keys(t.node.properties as Json)) out.push(`${t.path}.${k}`);
  }
  return [...new Set(out)];
}

function specAndStatus(): { spec: Json; status: Json } {
  const crd = buildCrd() as { spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: Json; status: Json } } } }[] } };
  const props = crd.spec.versions[0]!.schema.openAPIV3Schema.properties;
  return { spec: props.spec, status: props.status };
}

function anchor(path: string): string {
  return path.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/-+$/, '');
}

/** Where a table's descriptions and defaults come from (BenchmarkRun's by default). */
export interface Lookup {
  note: (path: string) => string;
  default: (path: string) => string;
}
const RUN_LOOKUP: Lookup = { note: noteOf, default: defaultOf };

export function renderTable(t: Table, linked: Set<string>, lookup: Lookup = RUN_LOOKUP): string {
  const required = new Set(Array.isArray(t.node.required) ? (t.node.required as string[]) : []);
  const isSpec = t.path.startsWith('spec');
  const head = isSpec
    ? '| Field | Type | Default | Required | Constraints | Description |\n|---|---|---|---|---|---|\n'
    : '| Field | Type | Required | Constraints | Description |\n|---|---|---|---|---|\n';
  const rows = Object.entries(t.node.properties as Json).map(([k, raw]) => {
    const n = raw as Json;
    const p = `${t.path}.${k}`;
    let type = typeOf(n);
    const sub = isObj(n.properties) ? p : n.type === 'array' && isObj(n.items) && isObj(n.items.properties) ? `${p}[]` : undefined;
    if (sub && linked.has(sub)) type = `[${type}](#${anchor(sub)})`;
    const cells = [`\`${p}\``, type, ...(isSpec ? [lookup.default(p)] : []), required.has(k) ? 'yes' : '', constraintsOf(n), lookup.note(p)];
    return `| ${cells.map(cell).join(' | ')} |`;
  });
  const note = lookup.note(t.path.replace(/\[\]$/, ''));
  return `### \`${t.path}\`\n\n${note ? `${note}\n\n` : ''}${head}${rows.join('\n')}\n`;
}

export function renderReference(): string {
  const { spec, status } = specAndStatus();
  const specTables = tables(spec, 'spec');
  const statusTables = tables(status, 'status');
  const linked = new Set([...specTables, ...statusTables].map((t) => t.path));
  return [
    '<!-- Generated by `node src/plan/gen-reference.ts` (npm run gen:reference) from src/api/schema.ts. Do not edit by hand. -->',
    '# BenchmarkRun reference',
    '',
    '`apiVersion: swarmbench.io/v1alpha1`, `kind: BenchmarkRun` (plural `benchmarkruns`, short name `br`, category `swarmbench`), namespaced.',
    '',
    'Types, required fields, enums and bounds are those of the CRD (`crds/swarmbench.io_benchmarkruns.yaml`), which the API server enforces.',
    'Cross-field rules it cannot express (a task mix summing to 1, strictly increasing sizes, `spikeTo > spikeFrom`) are checked by the',
    'operator (`SpecInvalid` condition) and by `swarmbench run` (exit code 2). Defaults are applied when a run starts, never written into',
    'the object; where the two modes differ both are given. Durations are strings such as `90s`, `10m`, `1h30m`, `250ms`.',
    '',
    'Examples: [examples/](../examples/). What each test measures: [tests.md](tests.md). Runs on a cron schedule: the BenchmarkSchedule',
    'resource ([reference-schedule.md](reference-schedule.md), [schedules.md](schedules.md)).',
    '',
    '## Spec',
    '',
    ...specTables.map((t) => renderTable(t, linked)),
    '## Status',
    '',
    ...statusTables.map((t) => renderTable(t, linked)),
  ].join('\n');
}
