/**
 * The corpus of bad BenchmarkRuns (issue 13): each one ends in one of three ways, never in a
 * crash of the operator or a retry loop.
 *
 * - `rejected`: the API server refuses the apply and its error names the field (the CRD's schema,
 *   generated from src/api/schema.ts, or its rule for object names);
 * - `specInvalid`: the API server accepts it, the operator marks it Failed with Ready=False and
 *   reason SpecInvalid, its message naming the field (zod refinements, src/operator/policy.ts);
 * - `degraded`: spec and name are fine, but the cluster refuses a write the operator needs (here
 *   a ValidatingAdmissionPolicy denying the run's Jobs, with reason Invalid: a 422, or Forbidden:
 *   a 403): the attempt ends Failed, Degraded with the reason (`Rejected`, `Forbidden`) and the
 *   server's message, one Warning event, and nothing is retried.
 *
 * Used twice: by test/unit/bad-runs.test.ts against the generated CRD (test/support/crd-validate.ts),
 * zod and the reconcile over the fake cluster, and by test/cluster/operator-robust.itest.ts against
 * the real API server and operator. Every name is unique, so the cluster test can apply them all
 * in one namespace.
 */
import { dump } from 'js-yaml';
import type { BenchmarkRunSpec } from '../../src/api/schema.ts';

export interface BadRun {
  /** What is wrong, in words. */
  what: string;
  name: string;
  spec: Record<string, unknown>;
  /** The field the API server's refusal names. */
  rejected?: string;
  /** The SpecInvalid condition's message matches this (it names the field). */
  specInvalid?: RegExp;
  /** The cluster refuses the run's Jobs (`deny`: the admission policy's reason); the Degraded condition says `reason` and matches `message`. */
  degraded?: { deny: 'Invalid' | 'Forbidden'; reason: 'Rejected' | 'Forbidden'; message: RegExp };
}

const PROM = 'http://127.0.0.1:9090';
/** A spec that runs (one small step): the base of the entries that are bad elsewhere. */
export const SMALL: BenchmarkRunSpec = { mode: 'quick', categories: ['integration'], trials: 3, agents: { poolSize: 3 } };
/** 180 characters, 31 labels. */
const LONG_DOTTED = `${'team.'.repeat(30)}nightly-benchmark-of-the-swarm`;

const rejected = (name: string, what: string, spec: Record<string, unknown>, field: string): BadRun => ({ name, what, spec, rejected: field });
const invalid = (name: string, what: string, spec: Record<string, unknown>, message: RegExp): BadRun => ({ name, what, spec, specInvalid: message });

export const BAD_RUNS: BadRun[] = [
  // The CRD's schema: the API server refuses the apply, naming the field.
  rejected('bad-mode', 'an unknown mode', { mode: 'turbo' }, 'spec.mode'),
  rejected('bad-category', 'an unknown category', { categories: ['distributed', 'telepathy'] }, 'spec.categories[1]'),
  rejected('bad-categories-empty', 'no category at all', { categories: [] }, 'spec.categories'),
  rejected('bad-trials', 'one trial', { trials: 1 }, 'spec.trials'),
  rejected('bad-trials-fraction', 'a fraction of a trial', { trials: 2.5 }, 'spec.trials'),
  rejected('bad-pool', 'an empty pool', { agents: { poolSize: 0 } }, 'spec.agents.poolSize'),
  rejected('bad-steps', 'three scalability steps', { agents: { steps: [1, 2, 3] } }, 'spec.agents.steps'),
  rejected('bad-capacity', 'an agent that takes no task', { agents: { capacity: 0 } }, 'spec.agents.capacity'),
  rejected('bad-taskmix', 'a task mix share above 1', { agents: { taskMix: { io: 2, cpu: 0 } } }, 'spec.agents.taskMix.io'),
  rejected('bad-image', 'an agent image with whitespace', { agents: { image: 'registry.example/agent: latest' } }, 'spec.agents.image'),
  rejected('bad-defect', 'a defect that is no profile name', { agents: { defects: ['Slow Agents!'] } }, 'spec.agents.defects[0]'),
  rejected('bad-target', 'a success rate of 250%', { targets: { successRate: 250 } }, 'spec.targets.successRate'),
  rejected('bad-target-unknown', 'a target that does not exist', { targets: { telepathyMs: 5 } }, 'spec.targets.telepathyMs'),
  rejected('bad-duration', 'a duration that is no duration', { stress: { sustainedDuration: 'forever' } }, 'spec.stress.sustainedDuration'),
  rejected('bad-overload', 'an overload of 500 times the capacity', { stress: { overloadFactor: 500 } }, 'spec.stress.overloadFactor'),
  rejected('bad-batch', 'a batch size of 0', { gpu: { batchSizes: [0, 8] } }, 'spec.gpu.batchSizes[0]'),
  rejected('bad-model', 'an unknown model', { gpu: { model: 'huge' } }, 'spec.gpu.model'),
  rejected('bad-cleanup', 'an unknown cleanup policy', { cleanup: { policy: 'Sometimes' } }, 'spec.cleanup.policy'),
  rejected('bad-ttl', 'a negative ttl', { cleanup: { ttlSecondsAfterFinished: -1 } }, 'spec.cleanup.ttlSecondsAfterFinished'),
  rejected('bad-unknown-field', 'a field the spec does not have', { ...SMALL, replicas: 3 }, 'spec.replicas'),
  // Invalid export names: the operator could never write the export.
  rejected('bad-export-underscore', 'an export name with upper case and _', { ...SMALL, export: { configMapName: 'Results_Final' } }, 'spec.export.configMapName'),
  rejected('bad-export-dot', 'an export name ending in a dot', { ...SMALL, export: { configMapName: 'results.' } }, 'spec.export.configMapName'),
  rejected('bad-export-dash', 'an export name starting with a dash', { ...SMALL, export: { configMapName: '-results' } }, 'spec.export.configMapName'),
  rejected('bad-export-space', 'an export name with a space', { ...SMALL, export: { configMapName: 'my results' } }, 'spec.export.configMapName'),
  rejected('bad-export-long', 'an export name of 254 characters', { ...SMALL, export: { configMapName: 'r'.repeat(254) } }, 'spec.export.configMapName'),
  // Names of other objects and keys the operator reads.
  rejected('bad-baseline-run', 'a baseline run name with upper case', { ...SMALL, baseline: { runRef: 'Nightly' } }, 'spec.baseline.runRef'),
  rejected('bad-baseline-run-ns', 'a baseline run given as namespace/name', { ...SMALL, baseline: { runRef: 'bench/nightly' } }, 'spec.baseline.runRef'),
  rejected('bad-baseline-cm', 'a baseline ConfigMap name with _', { ...SMALL, baseline: { configMapRef: { name: 'my_baseline' } } }, 'spec.baseline.configMapRef.name'),
  rejected('bad-baseline-key', 'a baseline key with a space', { ...SMALL, baseline: { configMapRef: { name: 'base', key: 'results json' } } }, 'spec.baseline.configMapRef.key'),
  rejected('bad-token-name', 'a token Secret name with upper case', { ...SMALL, prometheus: { url: PROM, bearerTokenSecretRef: { name: 'Prom_Token', key: 'token' } } }, 'spec.prometheus.bearerTokenSecretRef.name'),
  rejected('bad-token-key', 'a token key with a slash', { ...SMALL, prometheus: { url: PROM, bearerTokenSecretRef: { name: 'prom-token', key: '../token' } } }, 'spec.prometheus.bearerTokenSecretRef.key'),
  rejected('bad-notify-format', 'a notify format that does not exist', { ...SMALL, notify: [{ secretRef: { name: 'hook', key: 'url' }, format: 'email' }] }, 'spec.notify[0].format'),
  rejected('bad-notify-event', 'a notify event that does not exist', { ...SMALL, notify: [{ secretRef: { name: 'hook', key: 'url' }, events: ['started'] }] }, 'spec.notify[0].events[0]'),
  rejected('bad-notify-secret', 'a notify Secret name with upper case', { ...SMALL, notify: [{ secretRef: { name: 'Team_Hook', key: 'url' } }] }, 'spec.notify[0].secretRef.name'),
  rejected('bad-notify-many', 'six notify targets', { ...SMALL, notify: [1, 2, 3, 4, 5, 6].map((i) => ({ secretRef: { name: `hook-${i}`, key: 'url' } })) }, 'spec.notify'),
  rejected('bad-query-name', 'a query name that is no metric name', { ...SMALL, prometheus: { url: PROM, queries: [{ name: '1bad', query: 'up' }] } }, 'spec.prometheus.queries[0].name'),
  // Node selector values that would break the operator's label selector, and bad tolerations.
  rejected('bad-selector-comma', 'a node selector value with a comma', { ...SMALL, gpu: { nodeSelector: { 'nvidia.com/gpu.present': 'true,false' } } }, 'spec.gpu.nodeSelector'),
  rejected('bad-selector-space', 'a node selector value with a space', { ...SMALL, gpu: { nodeSelector: { 'nvidia.com/gpu.present': 'a b' } } }, 'spec.gpu.nodeSelector'),
  rejected('bad-selector-bang', 'a node selector value starting with !', { ...SMALL, gpu: { nodeSelector: { 'nvidia.com/gpu.present': '!true' } } }, 'spec.gpu.nodeSelector'),
  rejected('bad-selector-paren', 'a node selector value with a parenthesis', { ...SMALL, gpu: { nodeSelector: { 'nvidia.com/gpu.present': 'gpu)' } } }, 'spec.gpu.nodeSelector'),
  rejected('bad-selector-dash', 'a node selector value starting with a dash', { ...SMALL, gpu: { nodeSelector: { 'nvidia.com/gpu.present': '-true' } } }, 'spec.gpu.nodeSelector'),
  rejected('bad-selector-long', 'a node selector value of 64 characters', { ...SMALL, gpu: { nodeSelector: { 'nvidia.com/gpu.present': 'v'.repeat(64) } } }, 'spec.gpu.nodeSelector'),
  rejected('bad-toleration-key', 'a toleration key with a space', { ...SMALL, gpu: { tolerations: [{ key: 'nvidia.com/gpu taint', operator: 'Exists' }] } }, 'spec.gpu.tolerations[0].key'),
  rejected('bad-toleration-value', 'a toleration value with a space', { ...SMALL, gpu: { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Equal', value: 'yes please' }] } }, 'spec.gpu.tolerations[0].value'),
  rejected('bad-toleration-op', 'an unknown toleration operator', { ...SMALL, gpu: { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Maybe' }] } }, 'spec.gpu.tolerations[0].operator'),
  rejected('bad-toleration-effect', 'an unknown taint effect', { ...SMALL, gpu: { tolerations: [{ key: 'nvidia.com/gpu', effect: 'NoRun' }] } }, 'spec.gpu.tolerations[0].effect'),
  // Names the API server refuses for any object.
  rejected('Nightly_Run', 'a run name with upper case and _', SMALL, 'metadata.name'),
  rejected('team..nightly', 'a run name with an empty label', SMALL, 'metadata.name'),
  rejected(`${'n'.repeat(254)}`, 'a run name of 254 characters', SMALL, 'metadata.name'),

  // Accepted by the API server; the operator marks them SpecInvalid, naming the field.
  invalid('mix', 'a task mix that does not add up to 1', { agents: { taskMix: { io: 0.9, cpu: 0.3 } } }, /taskMix: io \+ cpu must equal 1/),
  invalid('order', 'scalability steps out of order', { agents: { steps: [50, 10, 20, 30, 40] } }, /spec\.agents\.steps: must be strictly increasing/),
  invalid('spike', 'a spike that shrinks', { stress: { spikeFrom: 50, spikeTo: 10 } }, /spec\.stress\.spikeTo: spikeTo must be larger/),
  invalid('longrun', 'a sustained run of 200 hours', { stress: { sustainedDuration: '200h' } }, /spec\.stress\.sustainedDuration: must be at most 24h/),
  invalid('zerorun', 'a sustained run of no time', { stress: { sustainedDuration: '0s' } }, /spec\.stress\.sustainedDuration: must be longer than zero/),
  invalid('dupcat', 'a category twice', { categories: ['gpu', 'gpu'] }, /spec\.categories: must not repeat/),
  invalid('batchorder', 'batch sizes out of order', { gpu: { batchSizes: [8, 4] } }, /spec\.gpu\.batchSizes: must be strictly increasing/),
  invalid('promurl', 'a Prometheus URL that is not http', { ...SMALL, prometheus: { url: 'ftp://prom.example:9090' } }, /spec\.prometheus\.url/),
  invalid('defect-unknown', 'a defect profile that does not exist', { ...SMALL, agents: { defects: ['explode'] } }, /spec\.agents\.defects\[0\]/),
  invalid('selector-key', 'a node selector key that is no label key', { ...SMALL, gpu: { nodeSelector: { 'bad key!': 'true' } } }, /spec\.gpu\.nodeSelector\.bad key!: must be a label key/),
  invalid('selector-host', 'a node selector key runs may not use', { ...SMALL, gpu: { nodeSelector: { 'kubernetes.io/hostname': 'node-a' } } }, /spec\.gpu\.nodeSelector\.kubernetes\.io\/hostname: node label kubernetes\.io\/hostname is not one runs may select on/),
  invalid('toleration-exists', 'an Exists toleration with a value', { ...SMALL, gpu: { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', value: 'x' }] } }, /spec\.gpu\.tolerations\[0\]\.value: must be empty when operator is 'Exists'/),
  invalid('toleration-seconds', 'tolerationSeconds without NoExecute', { ...SMALL, gpu: { tolerations: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule', tolerationSeconds: 30 }] } }, /spec\.gpu\.tolerations\[0\]\.effect: tolerationSeconds needs effect 'NoExecute'/),
  invalid('notify-twice', 'the same notify target twice', { ...SMALL, notify: [{ secretRef: { name: 'hook', key: 'url' } }, { secretRef: { name: 'hook', key: 'url' }, format: 'cloudevents' }] }, /spec\.notify: must not repeat a target/),
  invalid('notify-no-secret', 'a notify Secret that does not exist', { ...SMALL, notify: [{ secretRef: { name: 'no-such-hook', key: 'url' } }] }, /spec\.notify\[0\]\.secretRef\.name: Secret no-such-hook not found/),
  invalid('quantity', 'a CPU limit that is no quantity', { ...SMALL, agents: { poolSize: 3, resources: { limits: { cpu: 'lots' } } } }, /spec\.agents\.resources\.limits\.cpu: lots is not a Kubernetes quantity/),
  invalid('request-over-limit', 'a CPU request above its limit', { ...SMALL, agents: { poolSize: 3, resources: { requests: { cpu: '4' }, limits: { cpu: '1' } } } }, /spec\.agents\.resources\.requests\.cpu: 4 is above limits\.cpu/),
  // Names over 63 characters and dotted names: accepted (names.ts hashes them into every object name and label); the operator handles them as any other.
  invalid(LONG_DOTTED, 'a dotted run name of 180 characters with a bad task mix', { agents: { taskMix: { io: 0.5, cpu: 0.1 } } }, /taskMix: io \+ cpu must equal 1/),
  invalid('team.a.nightly', 'a dotted run name with a shrinking spike', { stress: { spikeFrom: 20, spikeTo: 10 } }, /spikeTo must be larger/),
  invalid(`nightly-${'x'.repeat(60)}`, 'a run name of 68 characters with a category twice', { categories: ['stress', 'stress'] }, /must not repeat/),

  // Fine as written; the cluster refuses the run's Jobs for good: Degraded once, no retry storm.
  { name: 'denied-invalid', what: 'its Jobs refused with 422 (an admission policy)', spec: SMALL, degraded: { deny: 'Invalid', reason: 'Rejected', message: /HTTP 422/ } },
  { name: 'denied-forbidden', what: 'its Jobs refused with 403 (an admission policy)', spec: SMALL, degraded: { deny: 'Forbidden', reason: 'Forbidden', message: /HTTP 403/ } },
  { name: `denied.${'long-'.repeat(14)}run`, what: 'a dotted run name of 80 characters whose Jobs are refused with 422', spec: SMALL, degraded: { deny: 'Invalid', reason: 'Rejected', message: /HTTP 422/ } },
];

/** The run as `kubectl apply -f -` takes it. */
export function manifestOf(run: BadRun, namespace: string): string {
  return dump({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: run.name, namespace }, spec: run.spec }, { lineWidth: -1 });
}
