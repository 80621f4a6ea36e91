import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { dnsName, labelValue, ownerReference, seedsKey, selectorString, stepResultName } from '../../src/kube/names.ts';
import {
  agentDeployment, agentHandleOf, isOwnImage, isPodReady, metricValue, poolLabels, poolNames, poolSelector,
  seedsValue, stepSeedsConfigMap, statsFromMetrics, stepResultConfigMap, type PoolContext,
} from '../../src/platform/kubernetes/manifests.ts';

const ctx: PoolContext = { run: { namespace: 'bench', name: 'nightly', uid: 'uid-1' }, attempt: 2, step: 'integration', category: 'integration' };
const DNS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe('names', () => {
  it('keeps short valid names as they are', () => {
    expect(dnsName('nightly-a2-integration-integ')).toBe('nightly-a2-integration-integ');
    expect(poolNames(ctx, 'integ')).toEqual({ deployment: 'nightly-a2-integration-integ', seeds: 'nightly-a2-integration-seeds', seedsKey: 'integ' });
    expect(stepResultName('nightly', 2, 'integration')).toBe('nightly-a2-integration-result');
  });

  it('cuts long names to the limit with a hash, deterministic and distinct', () => {
    const long = { ...ctx, run: { ...ctx.run, name: 'a'.repeat(100) } };
    const n1 = poolNames(long, 'pool-one');
    const n2 = poolNames(long, 'pool-two');
    expect(n1.deployment.length).toBeLessThanOrEqual(57);
    expect(n1.seeds.length).toBeLessThanOrEqual(253);
    expect(n1.seeds).toBe(n2.seeds); // one seeds ConfigMap per step, a key per pool
    expect(n1.seedsKey).not.toBe(n2.seedsKey);
    expect(seedsKey('a b/c')).toMatch(/^[-._a-zA-Z0-9]+$/);
    expect(seedsKey('a b/c')).not.toBe(seedsKey('a_b_c'));
    expect(n1.deployment).toMatch(DNS);
    expect(n1.deployment).not.toBe(n2.deployment);
    expect(poolNames(long, 'pool-one')).toEqual(n1);
    expect(dnsName('Foo_Bar.baz')).toMatch(DNS);
    expect(dnsName('---')).toMatch(DNS);
  });

  it('makes label values valid and at most 63 characters', () => {
    expect(labelValue('nightly')).toBe('nightly');
    const v = labelValue(`${'x'.repeat(80)}.y`);
    expect(v.length).toBeLessThanOrEqual(63);
    expect(v).toMatch(/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
    expect(labelValue('-bad-')).toMatch(/^[A-Za-z0-9]/);
  });
});

describe('agent Deployment: the run\'s token, resources and uid', () => {
  const base = { ctx, pool: { name: 'integ', capacity: 64 }, replicas: 1, image: 'ghcr.io/swarmbench/swarmbench:dev', ownImage: true };

  it('mounts the run\'s agent-token Secret as SWARMBENCH_AGENT_TOKEN when given, and nothing without it', () => {
    const env = agentDeployment({ ...base, agentTokenSecret: 'nightly-a1-token-x7k2p' }).spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'SWARMBENCH_AGENT_TOKEN')).toEqual({ name: 'SWARMBENCH_AGENT_TOKEN', valueFrom: { secretKeyRef: { name: 'nightly-a1-token-x7k2p', key: 'token' } } });
    expect(agentDeployment(base).spec!.template.spec!.containers[0]!.env!.some((e) => e.name === 'SWARMBENCH_AGENT_TOKEN')).toBe(false);
    // The administrator's scrape token: the same Secret's optional key (absent when the operator has none).
    expect(env.find((e) => e.name === 'SWARMBENCH_METRICS_TOKEN')).toEqual({
      name: 'SWARMBENCH_METRICS_TOKEN',
      valueFrom: { secretKeyRef: { name: 'nightly-a1-token-x7k2p', key: 'metrics-token', optional: true } },
    });
    expect(agentDeployment(base).spec!.template.spec!.containers[0]!.env!.some((e) => e.name === 'SWARMBENCH_METRICS_TOKEN')).toBe(false);
    // Without the operator's Secret: the runner's own token as a plain value, never none.
    const own = agentDeployment({ ...base, agentToken: 'runner-own-token-0123456789' }).spec!.template.spec!.containers[0]!.env!;
    expect(own.find((e) => e.name === 'SWARMBENCH_AGENT_TOKEN')).toEqual({ name: 'SWARMBENCH_AGENT_TOKEN', value: 'runner-own-token-0123456789' });
  });

  it('gives the agent container the resources asked for (spec.agents.resources), none when none are asked', () => {
    const resources = { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } };
    expect(agentDeployment({ ...base, scheduling: { resources } }).spec!.template.spec!.containers[0]!.resources).toEqual(resources);
    expect(agentDeployment(base).spec!.template.spec!.containers[0]!.resources).toBeUndefined();
  });

  it('selects and labels its pods by the run\'s uid (the NetworkPolicy\'s selector; an earlier run\'s pods are not the pool\'s)', () => {
    const d = agentDeployment(base);
    expect(d.spec!.selector.matchLabels).toMatchObject({ 'swarmbench.io/run-uid': 'uid-1' });
    expect(d.spec!.template.metadata!.labels).toMatchObject({ 'swarmbench.io/run-uid': 'uid-1', 'swarmbench.io/component': 'agent' });
    const other = agentDeployment({ ...base, ctx: { ...ctx, run: { ...ctx.run, uid: 'uid-2' } } });
    expect(other.spec!.selector.matchLabels).not.toEqual(d.spec!.selector.matchLabels);
  });
});

describe('agent Deployment', () => {
  const d = agentDeployment({
    ctx,
    pool: { name: 'integ', capacity: 64, gossipIntervalMs: 100, failureTimeoutMs: 1500 },
    replicas: 1,
    image: 'ghcr.io/swarmbench/swarmbench:dev',
    ownImage: true,
    scheduling: { nodeSelector: { 'kubernetes.io/os': 'linux' }, resources: { requests: { cpu: '100m' } } },
  });
  const pod = d.spec!.template.spec!;
  const c = pod.containers[0]!;

  it('is owned by the run and labelled', () => {
    expect(d.metadata!.name).toBe('nightly-a2-integration-integ');
    expect(d.metadata!.namespace).toBe('bench');
    expect(d.metadata!.ownerReferences).toEqual([
      { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', name: 'nightly', uid: 'uid-1', controller: true, blockOwnerDeletion: true },
    ]);
    expect(d.metadata!.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'swarmbench',
      'swarmbench.io/run': 'nightly',
      'swarmbench.io/attempt': '2',
      'swarmbench.io/category': 'integration',
      'swarmbench.io/pool': 'integ',
      'swarmbench.io/step': 'integration',
    });
    expect(d.spec!.template.metadata!.labels).toEqual(poolLabels(ctx, 'integ'));
    // The selector is a subset of the pod labels.
    for (const [k, v] of Object.entries(d.spec!.selector.matchLabels!)) expect(d.spec!.template.metadata!.labels![k]).toBe(v);
    expect(selectorString(poolSelector(ctx, 'integ'))).toContain('swarmbench.io/pool=integ');
  });

  it('runs the agent on the pod IP with the pod name as id and seeds from the ConfigMap', () => {
    expect(d.spec!.replicas).toBe(1);
    expect(c.command).toEqual(['swarmbench']);
    expect(c.args).toEqual(['agent', '--host', '$(POD_IP)', '--port', '8080', '--id', '$(POD_NAME)', '--capacity', '64', '--name', 'integ']);
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e]));
    expect(env.POD_IP!.valueFrom!.fieldRef!.fieldPath).toBe('status.podIP');
    expect(env.POD_NAME!.valueFrom!.fieldRef!.fieldPath).toBe('metadata.name');
    expect(env.SWARMBENCH_AGENT_ID!.valueFrom!.fieldRef!.fieldPath).toBe('metadata.name');
    expect(env.SWARMBENCH_SEEDS!.valueFrom!.configMapKeyRef).toEqual({ name: 'nightly-a2-integration-seeds', key: 'integ' });
    expect(env.SWARMBENCH_GOSSIP_INTERVAL_MS!.value).toBe('100');
  });

  it('is ready on /readyz, scraped, spread over nodes, with the scheduling asked for', () => {
    expect(c.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 8080 });
    expect(d.spec!.template.metadata!.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' });
    expect(pod.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: poolSelector(ctx, 'integ') } },
    ]);
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.tolerations).toBeUndefined();
    expect(c.resources).toEqual({ requests: { cpu: '100m' } });
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('configures a user image by the environment only', () => {
    const u = agentDeployment({ ctx, pool: { name: 'p', capacity: 8 }, replicas: 3, image: 'acme/agent:1', ownImage: false });
    const uc = u.spec!.template.spec!.containers[0]!;
    expect(uc.command).toBeUndefined();
    expect(uc.args).toBeUndefined();
    expect(uc.env!.find((e) => e.name === 'SWARMBENCH_CAPACITY')!.value).toBe('8');
    expect(uc.env!.find((e) => e.name === 'PORT')!.value).toBe('8080');
  });
});

describe('ConfigMaps', () => {
  it('seeds list at most three URLs, in one ConfigMap per step', () => {
    expect(seedsValue(['http://a:1', 'http://b:1', 'http://c:1', 'http://d:1'])).toBe('http://a:1,http://b:1,http://c:1');
    expect(seedsValue([])).toBe('');
    const cm = stepSeedsConfigMap({ run: ctx.run, attempt: ctx.attempt, step: ctx.step, category: ctx.category });
    expect(cm.metadata!.name).toBe('nightly-a2-integration-seeds');
    expect(cm.data).toEqual({});
    expect(cm.metadata!.labels!['swarmbench.io/component']).toBe('agent-seeds');
    expect(cm.metadata!.ownerReferences![0]!.uid).toBe(ctx.run.uid);
  });

  it('step result: labels, owner, key', () => {
    const cm = stepResultConfigMap({ name: 'nightly-a2-integration-result', run: ctx.run, attempt: ctx.attempt, step: 'integration', category: 'integration', json: '{}' });
    expect(cm.data).toEqual({ 'result.json': '{}' });
    expect(cm.metadata!.labels).toEqual({
      'app.kubernetes.io/managed-by': 'swarmbench',
      'swarmbench.io/run': 'nightly',
      'swarmbench.io/run-uid': 'uid-1',
      'swarmbench.io/attempt': '2',
      'swarmbench.io/category': 'integration',
      'swarmbench.io/step': 'integration',
      'swarmbench.io/component': 'step-result',
    });
    expect(cm.metadata!.ownerReferences).toEqual([ownerReference(ctx.run)]);
  });
});

describe('reading pods and metrics', () => {
  const pod = (over: Partial<V1Pod['status']> = {}, meta: Partial<V1Pod['metadata']> = {}): V1Pod => ({
    metadata: { name: 'p-1', creationTimestamp: new Date(0), ...meta },
    spec: { nodeName: 'swarmbench-cpu-1', containers: [] },
    status: {
      phase: 'Running',
      podIP: '10.244.0.7',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'agent', containerID: `containerd://${'a'.repeat(64)}`, image: '', imageID: '', ready: true, restartCount: 0 }],
      ...over,
    },
  });

  it('ready pods become agent handles', () => {
    expect(isPodReady(pod())).toBe(true);
    expect(isPodReady(pod({ conditions: [{ type: 'Ready', status: 'False' }] }))).toBe(false);
    expect(isPodReady(pod({}, { deletionTimestamp: new Date() }))).toBe(false);
    expect(isPodReady(pod({ podIP: undefined }))).toBe(false);
    // The host pid is not the platform's to know (the container runtime does not report it): 0.
    expect(agentHandleOf(pod())).toEqual({ id: 'p-1', url: 'http://10.244.0.7:8080', pid: 0, node: 'swarmbench-cpu-1' });
    expect(agentHandleOf(pod({ podIP: 'fd00::7', containerStatuses: undefined }))).toEqual({ id: 'p-1', url: 'http://[fd00::7]:8080', pid: 0, node: 'swarmbench-cpu-1' });
  });

  it('parses process metrics', () => {
    const text = [
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      'process_resident_memory_bytes 52428800',
      'process_cpu_seconds_total_extra 9',
      'process_cpu_seconds_total 1.5',
      'nodejs_heap_size_used_bytes{agent="a"} 1000 1700000000',
    ].join('\n');
    expect(metricValue(text, 'process_cpu_seconds_total')).toBe(1.5);
    expect(metricValue(text, 'missing')).toBeUndefined();
    expect(statsFromMetrics(7, text)).toEqual({ pid: 7, agents: 1, rssBytes: 52428800, heapUsedBytes: 1000, cpuSeconds: 1.5 });
  });
});

describe('isOwnImage', () => {
  it('recognises the project image in any registry, tag or digest', () => {
    expect(isOwnImage('swarmbench:dev')).toBe(true);
    expect(isOwnImage('ghcr.io/swarmbench/swarmbench:dev')).toBe(true);
    expect(isOwnImage('registry:5000/x/swarmbench-gpu@sha256:abc')).toBe(true);
    expect(isOwnImage('registry:5000/swarmbench')).toBe(true);
    expect(isOwnImage('acme/agent:1')).toBe(false);
    expect(isOwnImage('swarmbench/other:1')).toBe(false);
  });
});

describe('manifests/runner-rbac.yaml', () => {
  it('is what RUNNER_ROLE_RULES generate (run `npm run gen:rbac` after changing them)', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { REPO_ROOT } = await import('../../src/paths.ts');
    const { renderRunnerRbac } = await import('../../src/platform/kubernetes/rbac.ts');
    expect(readFileSync(join(REPO_ROOT, 'manifests', 'runner-rbac.yaml'), 'utf8')).toBe(renderRunnerRbac());
  });
});
