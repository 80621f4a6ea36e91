import { describe, expect, it } from 'vitest';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import { dnsName, jobName } from '../../src/kube/names.ts';
import { agentTokenSecret, conditionsFor, gpuScheduling, jobState, paramsConfigMap, setCondition, stepJob } from '../../src/operator/desired.ts';

const run = { name: 'nightly', namespace: 'bench', uid: 'u-1' };
const images = { image: 'reg/swarmbench:1', gpuImage: 'reg/swarmbench-gpu:1' };

describe('desired objects', () => {
  it('names are deterministic, DNS-safe and bounded', () => {
    expect(jobName('nightly', 2, 'gpu')).toBe('nightly-a2-gpu');
    const long = dnsName(`${'x'.repeat(80)}-a1-scalability`);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toBe(dnsName(`${'x'.repeat(80)}-a1-scalability`));
    expect(long).not.toBe(dnsName(`${'x'.repeat(80)}-a1-stress`));
  });

  it('a step Job runs the runner with its params, owned and labelled; GPU steps get the GPU scheduling', () => {
    const spec = { gpu: { nodeSelector: { 'nvidia.com/gpu.present': 'true' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists' as const }], resources: { limits: { 'nvidia.com/gpu': 1 } } } };
    const plan = buildPlan(resolveParams(spec));
    const gpu = stepJob(run, 2, plan.find((s) => s.category === 'gpu')!, spec, images, 'nightly-a2-token-x7k2p');
    const dist = stepJob(run, 2, plan.find((s) => s.category === 'distributed')!, spec, images, 'nightly-a2-token-x7k2p');
    expect(gpu.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'BenchmarkRun', uid: 'u-1', controller: true, blockOwnerDeletion: true });
    expect(gpu.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/run': 'nightly', 'swarmbench.io/attempt': '2', 'swarmbench.io/category': 'gpu' });
    const g = gpu.spec!.template.spec!;
    expect(g.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(g.containers[0]!.image).toBe('reg/swarmbench-gpu:1');
    expect(g.containers[0]!.resources).toEqual({ limits: { 'nvidia.com/gpu': 1 } });
    expect(g.containers[0]!.args).toEqual(['runner', '--step', 'gpu', '--platform', 'kubernetes', '--result-configmap', 'nightly-a2-gpu-result', '--attempt', '2']);
    // Without a GPU node the reconcile passes null: an ordinary Job with the ordinary image.
    const plain = stepJob(run, 2, plan.find((s) => s.category === 'gpu')!, spec, images, 'nightly-a2-token-x7k2p', null).spec!.template.spec!;
    expect(plain.nodeSelector).toBeUndefined();
    expect(plain.containers[0]!.image).toBe('reg/swarmbench:1');
    // No gpu section: the NVIDIA defaults.
    const def = gpuScheduling({});
    expect(def).toMatchObject({ nodeSelector: { 'nvidia.com/gpu.present': 'true' }, resources: { limits: { 'nvidia.com/gpu': 1 } } });
    const d = dist.spec!.template.spec!;
    expect(d.nodeSelector).toBeUndefined();
    expect(d.tolerations).toBeUndefined();
    expect(d.containers[0]!.image).toBe('reg/swarmbench:1');
    expect(d.containers[0]!.env?.find((e) => e.name === 'SWARMBENCH_PARAMS')?.valueFrom?.configMapKeyRef).toEqual({ name: 'nightly-a2-params', key: 'params.json' });
    // The attempt's agent-token Secret, by the name given (the one its params ConfigMap records).
    expect(d.containers[0]!.env?.find((e) => e.name === 'SWARMBENCH_AGENT_TOKEN')?.valueFrom?.secretKeyRef).toEqual({ name: 'nightly-a2-token-x7k2p', key: 'token' });
    expect(d.containers[0]!.env?.find((e) => e.name === 'SWARMBENCH_AGENT_TOKEN_SECRET')?.value).toBe('nightly-a2-token-x7k2p');
  });

  it('the agent-token Secret has no name, only generateName (the API server picks it), and is owned and labelled', () => {
    const s = agentTokenSecret(run, 2, 'tok', 'scrape');
    expect(s.metadata!.name).toBeUndefined();
    expect(s.metadata!.generateName).toBe('nightly-a2-token-');
    expect(s.metadata!.ownerReferences?.[0]).toMatchObject({ kind: 'BenchmarkRun', uid: 'u-1', controller: true });
    expect(s.metadata!.labels).toMatchObject({ 'swarmbench.io/run': 'nightly', 'swarmbench.io/attempt': '2', 'swarmbench.io/component': 'agent-token' });
    expect(s.data).toEqual({ token: Buffer.from('tok').toString('base64'), 'metrics-token': Buffer.from('scrape').toString('base64') });
  });

  it('the params ConfigMap freezes the resolved params', () => {
    const p = resolveParams({ mode: 'quick', categories: ['stress'] });
    const cm = paramsConfigMap(run, 1, p, 'nightly-a1-token-x7k2p');
    expect(JSON.parse(cm.data!['params.json']!)).toEqual(p);
    expect(cm.data!.agentTokenSecret).toBe('nightly-a1-token-x7k2p');
  });
});

describe('job state and conditions', () => {
  it('finished detection uses conditions, not completionTime', () => {
    expect(jobState({ status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'x' }] } }).state).toBe('Failed');
    expect(jobState({ status: { completionTime: new Date() } }).state).toBe('Running');
    expect(jobState({ status: { conditions: [{ type: 'Complete', status: 'True' }] } }).state).toBe('Complete');
  });

  it('lastTransitionTime moves only when the status changes', () => {
    const a = setCondition([], { type: 'Ready', status: 'False', reason: 'Running', message: '' }, 't1');
    const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'Still', message: 'm' }, 't2');
    expect(b[0]!.lastTransitionTime).toBe('t1');
    const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'Done', message: '' }, 't3');
    expect(c[0]!.lastTransitionTime).toBe('t3');
  });

  it('Complete is True for both verdicts; Ready only when it passed; all carry observedGeneration', () => {
    const ok = conditionsFor([], 4, 'Succeeded', 'TargetsMet', 'm', 't');
    const bad = conditionsFor([], 4, 'Failed', 'TargetsMissed', 'm', 't');
    const get = (l: typeof ok, t: string) => l.find((c) => c.type === t)!;
    expect(get(ok, 'Complete').status).toBe('True');
    expect(get(bad, 'Complete').status).toBe('True');
    expect(get(ok, 'Ready').status).toBe('True');
    expect(get(bad, 'Ready').status).toBe('False');
    expect(get(bad, 'Degraded').status).toBe('True');
    expect(ok.every((c) => c.observedGeneration === 4)).toBe(true);
    const running = conditionsFor([], 1, 'Running', 'Running', 'm', 't');
    expect(get(running, 'Progressing').status).toBe('True');
    expect(get(running, 'Reconciling').status).toBe('True'); // kstatus: in progress
    expect(get(running, 'Complete').status).toBe('False');
    expect(get(ok, 'Reconciling').status).toBe('False');
    expect(get(bad, 'Reconciling').status).toBe('False');
  });
});
