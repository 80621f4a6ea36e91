/**
 * Several agents per pod on the Kubernetes platform (`spec.agents.agentsPerPod`; parts.ts, the
 * part Deployments of manifests.ts, the pool of index.ts): the plan of part changes, when a wait
 * has settled, the Deployment of a part, pod → agent handles, the spec field, the platform's
 * refusals, and a pool scaled 1 → 12 → 7 → 10 with 5 agents per pod against a stand-in API server
 * (test/support/pool-api-stub.ts) with the agents' /readyz mocked.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import { BenchmarkRunSpec } from '../../src/api/schema.ts';
import { poolDeploymentName } from '../../src/kube/names.ts';
import { parseParams, resolveParams } from '../../src/plan/params.ts';
import { KubernetesPlatform } from '../../src/platform/kubernetes/index.ts';
import { main as runnerMain } from '../../src/runner/cli.ts';
import {
  agentDeployment, agentHandleOf, agentHandlesOf, agentsPerPodOf, partDeploymentName, poolSelector, stepSeedsConfigMap, type PoolContext,
} from '../../src/platform/kubernetes/manifests.ts';
import {
  afterSteps, agentsOfPods, partsSettled, partsTarget, planParts, seedUrls, type PartStep, type PartsState,
} from '../../src/platform/kubernetes/parts.ts';
import { PoolApiStub } from '../support/pool-api-stub.ts';

const ctx: PoolContext = { run: { namespace: 'bench', name: 'nightly', uid: 'uid-1' }, attempt: 2, step: 'scalability', category: 'scalability' };
const IMAGE = 'ghcr.io/swarmbench/swarmbench:dev';

/** The plans of a pool walked through `sizes` (each change assumed to succeed: the pool then has n agents). */
function walk(sizes: number[], k: number, from: PartsState = { full: 0, rests: [] }): { n: number; steps: PartStep[]; state: PartsState }[] {
  let state = from;
  let agents = 0;
  return sizes.map((n) => {
    const steps = planParts(state, n, k, agents > 0);
    state = afterSteps(state, steps);
    agents = n;
    return { n, steps, state };
  });
}

const wait = (full: number, rest: number, k: number, besides: number[] = []) => ({ kind: 'wait', full, rest, besides, agents: full * k + rest });

describe('the parts of a pool', () => {
  it('F = floor(n/K) pods of K and one pod of the rest', () => {
    expect(partsTarget(0, 25)).toEqual({ full: 0, rest: 0 });
    expect(partsTarget(1000, 25)).toEqual({ full: 40, rest: 0 });
    expect(partsTarget(12, 5)).toEqual({ full: 2, rest: 2 });
    expect(partsTarget(7, 1)).toEqual({ full: 7, rest: 0 });
    expect(() => partsTarget(-1, 5)).toThrow(/bad pool size/);
    expect(() => partsTarget(5, 0)).toThrow(/bad agents per pod/);
  });

  it('0 → 1 → 10 → 50 → 100 → 500 → 1000 with K = 25 (the full scalability steps)', () => {
    const w = walk([1, 10, 50, 100, 500, 1000], 25);
    expect(w.map((x) => x.state)).toEqual([
      { full: 0, rests: [1] },
      { full: 0, rests: [10] },
      { full: 2, rests: [] },
      { full: 4, rests: [] },
      { full: 20, rests: [] },
      { full: 40, rests: [] },
    ]);
    // An empty pool is founded by its one rest pod (no full part yet), with no seeds.
    expect(w[0]!.steps).toEqual([{ kind: 'seeds', found: true }, { kind: 'create-rest', agents: 1 }, wait(0, 1, 25), { kind: 'seeds', found: false }, wait(0, 1, 25)]);
    // The new rest is created first; the old one, the only agents and so the seeds, goes once it is up.
    expect(w[1]!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'create-rest', agents: 10 }, wait(0, 10, 25, [1]), { kind: 'delete-rest', agents: 1 }, wait(0, 10, 25)]);
    expect(w[2]!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'full', replicas: 2 }, wait(2, 0, 25, [10]), { kind: 'delete-rest', agents: 10 }, wait(2, 0, 25)]);
    expect(w[3]!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'full', replicas: 4 }, wait(4, 0, 25)]);
    expect(w[5]!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'full', replicas: 40 }, wait(40, 0, 25)]);
    for (const x of w) expect(x.steps.at(-1)).toMatchObject({ kind: 'wait', agents: x.n, besides: [] });
  });

  it('the spawn batch 50 → 60 → 50 (K = 25) adds and removes only the rest pod', () => {
    const [, up, down] = walk([50, 60, 50], 25);
    expect(up!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'create-rest', agents: 10 }, wait(2, 10, 25)]);
    expect(up!.state).toEqual({ full: 2, rests: [10] });
    // Nothing starts: the rest goes at once.
    expect(down!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'delete-rest', agents: 10 }, wait(2, 0, 25)]);
    expect(down!.state).toEqual({ full: 2, rests: [] });
  });

  it('1 → 12 → 7 → 10 with K = 5 (grow, shrink, regrow)', () => {
    const w = walk([1, 12, 7, 10], 5);
    expect(w.map((x) => x.state)).toEqual([{ full: 0, rests: [1] }, { full: 2, rests: [2] }, { full: 1, rests: [2] }, { full: 2, rests: [] }]);
    expect(w[1]!.steps).toEqual([
      { kind: 'seeds', found: false }, { kind: 'full', replicas: 2 }, { kind: 'create-rest', agents: 2 }, wait(2, 2, 5, [1]), { kind: 'delete-rest', agents: 1 }, wait(2, 2, 5),
    ]);
    expect(w[2]!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'full', replicas: 1 }, wait(1, 2, 5)]);
    expect(w[3]!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'full', replicas: 2 }, wait(2, 0, 5, [2]), { kind: 'delete-rest', agents: 2 }, wait(2, 0, 5)]);
    expect(walk([1, 12, 0], 5)[2]!.steps).toEqual([{ kind: 'full', replicas: 0 }, { kind: 'delete-rest', agents: 2 }, wait(0, 0, 5)]);
  });

  it('K = 1 is the plan one agent per pod always had: seeds "", 1 replica, wait; seeds, n replicas, wait; never a rest', () => {
    const w = walk([5, 2, 0, 3], 1);
    expect(w[0]!.steps).toEqual([{ kind: 'seeds', found: true }, { kind: 'full', replicas: 1 }, wait(1, 0, 1), { kind: 'seeds', found: false }, { kind: 'full', replicas: 5 }, wait(5, 0, 1)]);
    expect(w[1]!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'full', replicas: 2 }, wait(2, 0, 1)]);
    expect(w[2]!.steps).toEqual([{ kind: 'full', replicas: 0 }, wait(0, 0, 1)]);
    expect(w[3]!.steps[0]).toEqual({ kind: 'seeds', found: true });
    for (const n of [1, 7, 99, 1000]) expect(planParts({ full: 3, rests: [] }, n, 1, true).some((s) => s.kind === 'create-rest' || s.kind === 'delete-rest')).toBe(false);
  });

  it('a pool without a ready agent is founded again; rest pods that are not the founder go first', () => {
    expect(planParts({ full: 0, rests: [3] }, 12, 5, false)).toEqual([
      { kind: 'seeds', found: true }, { kind: 'delete-rest', agents: 3 }, { kind: 'full', replicas: 1 }, wait(1, 0, 5),
      { kind: 'seeds', found: false }, { kind: 'full', replicas: 2 }, { kind: 'create-rest', agents: 2 }, wait(2, 2, 5),
    ]);
  });

  it('100 → 10 with K = 25 (6.2 between its trials): the new pod of 10 is up before the full pods it joins through go', () => {
    const w = walk([100, 10], 25);
    expect(w[1]!.steps).toEqual([{ kind: 'seeds', found: false }, { kind: 'create-rest', agents: 10 }, wait(4, 10, 25), { kind: 'full', replicas: 0 }, wait(0, 10, 25)]);
  });

  it('any walk ends in the target parts, creates before it deletes, and waits for new pods before deleting a rest', () => {
    let seed = 7;
    const rnd = (m: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % m);
    for (let t = 0; t < 200; t++) {
      const k = 1 + rnd(30);
      const sizes = Array.from({ length: 6 }, () => rnd(120));
      let prev: PartsState = { full: 0, rests: [] };
      for (const x of walk(sizes, k)) {
        // When a resize of a pool with agents starts pods, nothing that may be their seed goes (a
        // rest deleted, the full part shrunk) before a wait after the start saw them up.
        let full = prev.full;
        const started: number[] = [];
        const removals: number[] = [];
        x.steps.forEach((s, i) => {
          if (s.kind === 'create-rest' || (s.kind === 'full' && s.replicas > full)) started.push(i);
          if (s.kind === 'delete-rest' || (s.kind === 'full' && s.replicas < full)) removals.push(i);
          if (s.kind === 'full') full = s.replicas;
        });
        if (started.length > 0 && prev.full + prev.rests.length > 0) {
          for (const i of removals) {
            const waited = x.steps.some((w, j) => w.kind === 'wait' && j > started[0]! && j < i);
            expect(waited, `${JSON.stringify(prev)} -> ${x.n} (K ${k}): ${JSON.stringify(x.steps)}`).toBe(true);
          }
        }
        prev = x.state;
        const want = partsTarget(x.n, k);
        expect(x.state).toEqual({ full: want.full, rests: want.rest > 0 ? [want.rest] : [] });
        const created = x.steps.findIndex((s) => s.kind === 'create-rest');
        const deleted = x.steps.findIndex((s) => s.kind === 'delete-rest');
        const starts = x.steps.some((s) => s.kind === 'create-rest') || x.steps.some((s, i) => s.kind === 'full' && i > 0 && x.n > 0);
        if (created >= 0 && deleted >= 0) expect(created).toBeLessThan(deleted);
        if (deleted >= 0 && x.n > 0 && starts && created >= 0) expect(x.steps.slice(0, deleted).some((s) => s.kind === 'wait' && s.besides.length > 0)).toBe(true);
        expect(x.steps.at(-1)).toEqual(wait(want.full, want.rest, k));
      }
    }
  });
});

/** A pod of a part: `c` agents (annotation), Ready unless told. */
function pod(name: string, part: string | undefined, c: number | undefined, o: { age?: number; ready?: boolean; ip?: string; deleting?: boolean } = {}): V1Pod {
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      creationTimestamp: new Date(o.age ?? 0),
      labels: part ? { 'swarmbench.io/pool-part': part } : {},
      annotations: c !== undefined ? { 'swarmbench.io/agents-per-pod': String(c) } : {},
      ...(o.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: { nodeName: 'n1', containers: [] },
    status: { phase: 'Running', podIP: o.ip ?? '10.0.0.5', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

describe('when a wait has settled', () => {
  it('one agent per pod: exactly n pods, all ready, none being deleted', () => {
    const three = [pod('a', undefined, undefined), pod('b', undefined, undefined), pod('c', undefined, undefined)];
    expect(partsSettled(three, { full: 3, rest: 0, besides: [] })).toMatchObject({ done: true, readyAgents: 3, pods: 3 });
    expect(partsSettled(three, { full: 2, rest: 0, besides: [] }).done).toBe(false);
    expect(partsSettled([...three.slice(0, 2), pod('c', undefined, undefined, { deleting: true })], { full: 2, rest: 0, besides: [] }).done).toBe(false);
    expect(partsSettled([...three.slice(0, 2), pod('c', undefined, undefined, { ready: false })], { full: 3, rest: 0, besides: [] }).done).toBe(false);
  });

  it('parts: F full pods and the one rest pod; the old rest only where the wait allows it', () => {
    const now = [pod('f1', 'full', 5), pod('f2', 'full', 5), pod('r2', 'r2', 2), pod('r1', 'r1', 1)];
    expect(partsSettled(now, { full: 2, rest: 2, besides: [1] })).toMatchObject({ done: true, readyAgents: 12, pods: 3 });
    expect(partsSettled(now, { full: 2, rest: 2, besides: [] }).done).toBe(false);
    expect(partsSettled(now.slice(0, 3), { full: 2, rest: 2, besides: [] }).done).toBe(true);
    expect(partsSettled(now.slice(0, 2), { full: 2, rest: 2, besides: [] }).done).toBe(false);
    expect(partsSettled([now[0]!, now[2]!], { full: 2, rest: 2, besides: [] }).done).toBe(false);
  });
});

describe('the Deployment of a part', () => {
  const base = { ctx, pool: { name: 'scal', capacity: 64 }, image: IMAGE, ownImage: true };
  const full = agentDeployment({ ...base, replicas: 4, part: { key: 'full', agents: 25 } });
  const rest = agentDeployment({ ...base, replicas: 1, part: { key: 'r7', agents: 7 } });
  const one = agentDeployment({ ...base, replicas: 4 });

  it('names: the full part is the pool\'s Deployment, the rest `<pool>-r<r>`', () => {
    expect(full.metadata!.name).toBe(poolDeploymentName('nightly', 2, 'scalability', 'scal'));
    expect(rest.metadata!.name).toBe(poolDeploymentName('nightly', 2, 'scalability', 'scal-r7'));
    expect(rest.metadata!.name).toBe(partDeploymentName(ctx, 'scal', 'r7'));
    expect(one.metadata!.name).toBe(full.metadata!.name);
  });

  it('runs `swarmbench agent --count c` and lists the c ports; readiness and scrape stay on 8080', () => {
    const c = full.spec!.template.spec!.containers[0]!;
    expect(c.args).toEqual(['agent', '--host', '$(POD_IP)', '--port', '8080', '--id', '$(POD_NAME)', '--capacity', '64', '--name', 'scal', '--count', '25']);
    expect(c.ports!.map((p) => p.containerPort)).toEqual(Array.from({ length: 25 }, (_, i) => 8080 + i));
    expect(new Set(c.ports!.map((p) => p.name)).size).toBe(25);
    for (const p of c.ports!) expect(p.name).toMatch(/^[a-z]([-a-z0-9]{0,13}[a-z0-9])?$/);
    expect(rest.spec!.template.spec!.containers[0]!.args!.slice(-2)).toEqual(['--count', '7']);
    expect(c.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 8080 });
    expect(full.spec!.template.metadata!.annotations).toEqual({
      'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics', 'swarmbench.io/agents-per-pod': '25',
    });
    expect(rest.spec!.template.metadata!.annotations!['swarmbench.io/agents-per-pod']).toBe('7');
    expect(full.spec!.replicas).toBe(4);
    expect(rest.spec!.replicas).toBe(1);
  });

  it('selectors: the part label makes them disjoint; the pool\'s selector (informer, spread) still selects both', () => {
    const fs = full.spec!.selector.matchLabels!;
    const rs = rest.spec!.selector.matchLabels!;
    expect(fs['swarmbench.io/pool-part']).toBe('full');
    expect(rs['swarmbench.io/pool-part']).toBe('r7');
    // Disjoint: no pod can carry both selectors' labels.
    expect(Object.keys(fs).some((k) => k in rs && rs[k] !== fs[k])).toBe(true);
    for (const d of [full, rest]) {
      const labels = d.spec!.template.metadata!.labels!;
      for (const [k, v] of Object.entries(d.spec!.selector.matchLabels!)) expect(labels[k]).toBe(v);
      for (const [k, v] of Object.entries(poolSelector(ctx, 'scal'))) expect(labels[k]).toBe(v);
      expect(d.spec!.template.spec!.topologySpreadConstraints![0]!.labelSelector).toEqual({ matchLabels: poolSelector(ctx, 'scal') });
    }
  });

  it('one agent per pod: no part label, no annotation, no --count, one port (the Deployment as it was)', () => {
    expect(one.spec!.selector.matchLabels).toEqual(poolSelector(ctx, 'scal'));
    expect(one.spec!.template.metadata!.labels!['swarmbench.io/pool-part']).toBeUndefined();
    expect(one.spec!.template.metadata!.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics' });
    expect(one.spec!.template.spec!.containers[0]!.args).not.toContain('--count');
    expect(one.spec!.template.spec!.containers[0]!.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
  });

  it('refuses a user image and a count out of 1..100', () => {
    expect(() => agentDeployment({ ...base, ownImage: false, image: 'acme/agent:1', replicas: 1, part: { key: 'full', agents: 5 } })).toThrow(/project's image/);
    expect(() => agentDeployment({ ...base, replicas: 1, part: { key: 'full', agents: 0 } })).toThrow(/from 1 to 100, not 0/);
    expect(() => agentDeployment({ ...base, replicas: 1, part: { key: 'full', agents: 101 } })).toThrow(/from 1 to 100, not 101/);
  });
});

describe('pods → agents', () => {
  it('agent i of a pod of c agents: `<pod>-<i>` on port 8080 + i, the pod\'s pid and node', () => {
    const p = pod('scal-abc', 'full', 3, { ip: '10.244.1.9' });
    expect(agentsPerPodOf(p)).toBe(3);
    expect(agentHandlesOf(p)).toEqual([
      { id: 'scal-abc-0', url: 'http://10.244.1.9:8080', pid: 0, node: 'n1' },
      { id: 'scal-abc-1', url: 'http://10.244.1.9:8081', pid: 0, node: 'n1' },
      { id: 'scal-abc-2', url: 'http://10.244.1.9:8082', pid: 0, node: 'n1' },
    ]);
  });

  it('one agent (no annotation, or a rest pod of 1): the pod name, as the agent CLI names a lone agent', () => {
    const plain = pod('p-1', undefined, undefined);
    expect(agentHandlesOf(plain)).toEqual([agentHandleOf(plain)]);
    expect(agentHandlesOf(pod('p-2', 'r1', 1)).map((a) => a.id)).toEqual(['p-2']);
    expect(agentsPerPodOf(pod('p-3', 'full', undefined))).toBe(1);
    const bad = pod('p-4', 'full', 1);
    bad.metadata!.annotations!['swarmbench.io/agents-per-pod'] = 'lots';
    expect(agentsPerPodOf(bad)).toBe(1);
    bad.metadata!.annotations!['swarmbench.io/agents-per-pod'] = '5000';
    expect(agentsPerPodOf(bad)).toBe(1);
  });

  it('agents(): pods oldest first, each pod\'s agents in index order', () => {
    const pods = [pod('new', 'full', 2, { age: 30, ip: '10.0.0.3' }), pod('old', 'r1', 1, { age: 10, ip: '10.0.0.1' }), pod('mid', 'full', 2, { age: 20, ip: '10.0.0.2' })];
    expect(agentsOfPods(pods).map((a) => a.id)).toEqual(['old', 'mid-0', 'mid-1', 'new-0', 'new-1']);
  });

  it('seeds: agents that stay first (the full part), spread over pods', () => {
    const pods = [pod('r', 'r2', 2, { age: 1, ip: '10.0.0.9' }), pod('a', 'full', 5, { age: 2, ip: '10.0.0.1' }), pod('b', 'full', 5, { age: 3, ip: '10.0.0.2' })];
    expect(seedUrls(pods)).toEqual(['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.1:8081']);
    expect(seedUrls([pods[0]!])).toEqual(['http://10.0.0.9:8080', 'http://10.0.0.9:8081']);
    const singles = [pod('z', undefined, undefined, { age: 3, ip: '10.0.1.3' }), pod('x', undefined, undefined, { age: 1, ip: '10.0.1.1' }), pod('y', undefined, undefined, { age: 2, ip: '10.0.1.2' }), pod('w', undefined, undefined, { age: 4, ip: '10.0.1.4' })];
    expect(seedUrls(singles)).toEqual(['http://10.0.1.1:8080', 'http://10.0.1.2:8080', 'http://10.0.1.3:8080']);
  });
});

describe('spec.agents.agentsPerPod', () => {
  it('is an integer from 1 to 100, refused naming the field', () => {
    for (const bad of [0, 101, 2.5]) {
      const r = BenchmarkRunSpec.safeParse({ agents: { agentsPerPod: bad } });
      expect(r.success).toBe(false);
      expect(r.error!.issues.map((i) => i.path.join('.'))).toContain('agents.agentsPerPod');
    }
    expect(BenchmarkRunSpec.safeParse({ agents: { agentsPerPod: 100 } }).success).toBe(true);
  });

  it('resolves to 1 in both modes when absent, and to what the spec says', () => {
    expect(resolveParams({ mode: 'quick' }).agents.agentsPerPod).toBe(1);
    expect(resolveParams({ mode: 'full' }).agents.agentsPerPod).toBe(1);
    expect(resolveParams({ mode: 'full', agents: { agentsPerPod: 25 } }).agents.agentsPerPod).toBe(25);
  });

  it('params frozen without it (an older operator) still parse, as 1; a bad value names the field', () => {
    const p = JSON.parse(JSON.stringify(resolveParams({ mode: 'quick' }))) as { agents: Record<string, unknown> };
    delete p.agents.agentsPerPod;
    expect(parseParams(JSON.stringify(p), 'cm').agents.agentsPerPod).toBe(1);
    p.agents.agentsPerPod = 101;
    expect(() => parseParams(JSON.stringify(p), 'cm')).toThrow(/agents\.agentsPerPod/);
  });
});

describe('KubernetesPlatform with several agents per pod', () => {
  const run = { namespace: 'bench', name: 'nightly', uid: 'uid-1' };
  const stub = new PoolApiStub(stepSeedsConfigMap({ run, attempt: 1, step: 'scalability', category: 'scalability' }));
  const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
  let platform: KubernetesPlatform;
  const readyz: string[] = [];

  beforeAll(async () => {
    await stub.start();
    vi.spyOn(AgentClient.prototype, 'readyz').mockImplementation(async (url: string) => {
      readyz.push(url);
      return { status: stub.agentAlive(url) ? 200 : 503, body: { ready: stub.agentAlive(url) } };
    });
    vi.spyOn(AgentClient.prototype, 'metrics').mockImplementation(async (url: string) => ({
      status: stub.agentAlive(url) ? 200 : 503,
      body: `process_resident_memory_bytes 52428800\nprocess_cpu_seconds_total 1.5\nnodejs_heap_size_used_bytes 1000\n# ${url}\n`,
    }));
    platform = new KubernetesPlatform({ kc: stub.kc, run, attempt: 1, step: 'scalability', agentImage: IMAGE, agentsPerPod: 5, log: quiet, readyTimeoutMs: 15_000, closeTimeoutMs: 15_000 });
  });

  afterAll(async () => {
    await platform?.close().catch(() => undefined);
    vi.restoreAllMocks();
    await stub.stop();
  });

  it('refuses agentsPerPod out of 1..100 and a user image with more than 1, naming the field', () => {
    const o = { kc: stub.kc, run, attempt: 1, step: 's', agentImage: IMAGE };
    expect(() => new KubernetesPlatform({ ...o, agentsPerPod: 0 })).toThrow(/spec\.agents\.agentsPerPod must be an integer from 1 to 100, not 0/);
    expect(() => new KubernetesPlatform({ ...o, agentsPerPod: 101 })).toThrow(/spec\.agents\.agentsPerPod/);
    expect(() => new KubernetesPlatform({ ...o, agentImage: 'acme/agent:1', agentsPerPod: 5 })).toThrow(/spec\.agents\.agentsPerPod 5 needs the project's image/);
    expect(new KubernetesPlatform({ ...o, agentImage: 'acme/agent:1' }).agentsPerPod).toBe(1);
    expect(new KubernetesPlatform({ ...o, agentImage: 'acme/agent:1', agentsPerPod: 1 }).agentsPerPod).toBe(1);
  });

  it('a pool scaled 1 → 12 → 7 → 10: parts, ids, ports, seeds through live agents, kill refused, stats per pod, close', async () => {
    const full = poolDeploymentName('nightly', 1, 'scalability', 'scal');
    const rest = (r: number) => poolDeploymentName('nightly', 1, 'scalability', `scal-r${r}`);
    const pool = await platform.createPool({ name: 'scal', size: 1, capacity: 8, agentsPerProcess: 25 });
    let list = pool.agents();
    expect(list).toHaveLength(1);
    expect(stub.livePodsOf(rest(1))).toHaveLength(1);
    expect(list[0]!.id).toBe(stub.livePodsOf(rest(1))[0]!.metadata!.name);

    const check = (n: number, want: Record<string, number>) => {
      expect(list).toHaveLength(n);
      expect(new Set(list.map((a) => a.id)).size).toBe(n);
      expect(new Set(list.map((a) => a.url)).size).toBe(n);
      const live = [...stub.pods.values()];
      expect(live).toHaveLength(Math.ceil(n / 5));
      for (const [dep, pods] of Object.entries(want)) expect(stub.livePodsOf(dep), dep).toHaveLength(pods);
      expect([...stub.deployments.keys()].sort()).toEqual(Object.keys(want).sort());
      // Every agent listed answered /readyz.
      for (const a of list) expect(readyz).toContain(a.url);
    };

    list = await pool.scaleTo(12);
    check(12, { [full]: 2, [rest(2)]: 1 });
    const fullPod = stub.livePodsOf(full)[0]!.metadata!.name!;
    expect(list.filter((a) => a.id.startsWith(`${fullPod}-`)).map((a) => a.id)).toEqual([0, 1, 2, 3, 4].map((i) => `${fullPod}-${i}`));
    expect(list.filter((a) => a.id.startsWith(`${fullPod}-`)).map((a) => new URL(a.url).port)).toEqual(['8080', '8081', '8082', '8083', '8084']);
    // The new rest was created before the old one (the founder, the only agent) was deleted.
    expect(stub.ops.indexOf(`create ${rest(2)} 1`)).toBeLessThan(stub.ops.indexOf(`delete ${rest(1)}`));

    list = await pool.scaleTo(7);
    check(7, { [full]: 1, [rest(2)]: 1 });
    list = await pool.scaleTo(10);
    check(10, { [full]: 2 });
    expect(stub.ops.indexOf(`scale ${full} 2`, stub.ops.indexOf(`scale ${full} 1`))).toBeLessThan(stub.ops.indexOf(`delete ${rest(2)}`));

    // Seeds: only the founder started without; every other pod found a live agent among its seeds.
    expect(stub.started.filter((s) => s.seeds === '').map((s) => s.deployment)).toEqual([rest(1)]);
    expect(stub.violations).toEqual([]);

    await expect(pool.kill(list[0]!.id)).rejects.toThrow(`pool scal hosts 5 agents per pod: killing one agent needs one agent per pod (agentsPerProcess 1)`);
    const st = await pool.stats();
    expect(st).toHaveLength(2);
    expect(st.map((s) => s.agents)).toEqual([5, 5]);
    expect(st[0]!.rssBytes).toBe(52428800);

    await pool.close();
    expect(stub.deployments.size).toBe(0);
    expect(stub.pods.size).toBe(0);
    expect(stub.seedsValue()).not.toHaveProperty('scal');
    expect(stub.ops.filter((o) => o.startsWith('unexpected'))).toEqual([]);
  }, 30_000);

  it('a pool that asks for one agent per process gets one per pod: the Deployment as it was, and kill works', async () => {
    const name = poolDeploymentName('nightly', 1, 'scalability', 'failover');
    const pool = await platform.createPool({ name: 'failover', size: 3, capacity: 8, agentsPerProcess: 1 });
    const d = stub.deployments.get(name)!;
    expect(d.spec!.selector.matchLabels!['swarmbench.io/pool-part']).toBeUndefined();
    expect(d.spec!.template.spec!.containers[0]!.args).not.toContain('--count');
    const list = pool.agents();
    expect(list.map((a) => a.id).sort()).toEqual(stub.livePodsOf(name).map((p) => p.metadata!.name).sort());
    await pool.kill(list[0]!.id);
    expect(stub.ops).toContain(`delete pod ${list[0]!.id}`);
    expect(pool.agents().map((a) => a.id)).not.toContain(list[0]!.id);
    await pool.close();
    expect(stub.pods.size).toBe(0);
  }, 30_000);
});


describe('the runner with spec.agents.agentsPerPod', () => {
  it('exits 2 naming the field when the agents run a user\'s image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-perpod-'));
    const env = { ...process.env };
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (err.push(String(c)), true));
    try {
      writeFileSync(join(dir, 'kubeconfig'), [
        'apiVersion: v1', 'kind: Config', 'current-context: x',
        'clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]', 'users: [{name: u, user: {token: t}}]', 'contexts: [{name: x, context: {cluster: c, user: u}}]',
      ].join('\n'));
      const params = (image: string, perPod: number) => {
        const f = join(dir, `p-${perPod}-${image.length}.json`);
        writeFileSync(f, JSON.stringify(resolveParams({ mode: 'quick', categories: ['integration'], agents: { image, agentsPerPod: perPod } })));
        return f;
      };
      Object.assign(process.env, { KUBECONFIG: join(dir, 'kubeconfig'), SWARMBENCH_NAMESPACE: 'bench', SWARMBENCH_RUN_NAME: 'nightly', SWARMBENCH_RUN_UID: 'uid-1' });
      delete process.env.SWARMBENCH_AGENT_TOKEN;
      delete process.env.SWARMBENCH_AGENT_TOKEN_SECRET;
      const args = (f: string) => ['--step', 'integration', '--platform', 'kubernetes', '--result-configmap', 'nightly-a1-integration-result', '--params', f];
      expect(await runnerMain(args(params('acme/agent:1', 5)))).toBe(2);
      expect(err.join('')).toMatch(/spec\.agents\.agentsPerPod 5 needs the project's image: a user's agent image is configured by the environment, one agent per container/);
    } finally {
      spy.mockRestore();
      process.env = env;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
