/**
 * The runner's own environment (issue 13): each StepResult carries the machine of the process
 * that ran it (src/report/machine.ts, src/runner/step.ts), and a result assembled in a cluster
 * (src/report/assemble.ts `environmentOf`, src/operator/finish.ts) describes the runner nodes,
 * never the operator's process. Step results written before the field existed still parse.
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { API_VERSION_FULL, ResultDocument, StepResult, type Measurement, type RunnerEnvironment } from '../../src/api/schema.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import type { Platform } from '../../src/platform/types.ts';
import { environmentOf } from '../../src/report/assemble.ts';
import { cgroupMemoryLimit, memoryLimitOf, runnerText, thisMachine } from '../../src/report/machine.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { renderReport } from '../../src/report/terminal.ts';
import { completeDocument } from '../../src/report/document.ts';
import { runStep } from '../../src/runner/step.ts';
import { NAME, NS, stepResult, World } from '../support/reconcile-world.ts';

let fakeRun: (ctx: BenchContext) => Promise<Measurement[]> = async () => [];
vi.mock('../../src/bench/index.ts', () => ({
  CATEGORY_MODULES: new Proxy({}, { get: () => async () => ({ run: (ctx: BenchContext) => fakeRun(ctx) }) }),
}));

const fakeFs = (files: Record<string, string>) => (p: string) => files[p] ?? null;

const NODE_B: RunnerEnvironment = {
  nodeName: 'node-b',
  hostname: 'nightly-a1-stress-abcde',
  node: 'v24.0.0-runner',
  os: 'linux 6.1.0-runner',
  arch: 'arm64',
  cpus: 96,
  cpuModel: 'Runner CPU',
  memoryBytes: 256 * 2 ** 30,
  memoryLimitBytes: 2 * 2 ** 30,
  cpuSet: { availableParallelism: 96, quotaCpus: 2, quotaSource: '/sys/fs/cgroup/cpu.max', effectiveCpus: 2 },
};
const NODE_C: RunnerEnvironment = { ...NODE_B, nodeName: 'node-c', hostname: 'nightly-a1-gpu-fghij', cpus: 8, cpuModel: 'GPU host CPU', memoryBytes: 64 * 2 ** 30 };

describe('thisMachine (report/machine.ts)', () => {
  it('names the node it is given, else the hostname; reads the cgroup memory limit', () => {
    const fs = fakeFs({ '/proc/self/cgroup': '0::/kubepods/pod1/c1\n', '/sys/fs/cgroup/kubepods/pod1/c1/memory.max': '536870912\n', '/sys/fs/cgroup/kubepods/memory.max': '1073741824\n' });
    const m = thisMachine('node-7', fs);
    expect(m.nodeName).toBe('node-7');
    expect(m.hostname).toBe(hostname());
    expect(m.node).toBe(process.version);
    expect(m.cpus).toBeGreaterThan(0);
    expect(m.memoryLimitBytes).toBe(536870912);
    expect(m.cpuSet?.availableParallelism).toBeGreaterThan(0);
    expect(thisMachine(undefined, fakeFs({})).nodeName).toBe(hostname());
    expect(thisMachine('', fakeFs({})).memoryLimitBytes).toBeUndefined();
  });

  it('an unlimited or unreadable limit is absent, never 0 or 2^63; v1 reads memory.limit_in_bytes', () => {
    expect(memoryLimitOf('max\n')).toBeNull();
    expect(memoryLimitOf('9223372036854771712')).toBeNull();
    expect(memoryLimitOf('0')).toBeNull();
    expect(memoryLimitOf('12 MB')).toBeNull();
    expect(memoryLimitOf('1048576')).toBe(1048576);
    expect(cgroupMemoryLimit(fakeFs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/memory.max': 'max' }))).toBeNull();
    expect(cgroupMemoryLimit(fakeFs({}))).toBeNull();
    const v1 = fakeFs({ '/proc/self/cgroup': '5:cpu,cpuacct:/a\n4:memory:/docker/x\n', '/sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes': '9223372036854771712', '/sys/fs/cgroup/memory/docker/memory.limit_in_bytes': '268435456' });
    expect(cgroupMemoryLimit(v1)).toBe(268435456);
  });
});

describe('runStep writes the environment of its process', () => {
  const params = resolveParams({ mode: 'quick', trials: 1, agents: { poolSize: 3 } }, ['distributed']);
  const step = buildPlan(params).find((s) => s.category === 'distributed')!;
  const platform = { close: async () => {} } as unknown as Platform;
  const opts = (node?: string) => ({ platform, log: { info() {}, warn() {}, debug() {} }, progress() {}, signal: new AbortController().signal, attempt: 1, ...(node ? { node } : {}) });

  it('with NODE_NAME: that node, and this process\'s figures; the result parses', async () => {
    fakeRun = async () => [{ id: '1.3', value: 1, samples: 3 }];
    const r = await runStep(step, params, opts('worker-3'));
    expect(r.node).toBe('worker-3');
    expect(r.environment).toMatchObject({ nodeName: 'worker-3', hostname: hostname(), node: process.version, arch: process.arch });
    expect(r.environment!.cpus).toBeGreaterThan(0);
    expect(StepResult.parse(JSON.parse(JSON.stringify(r))).environment).toEqual(r.environment);
  });

  it('a failed step carries it too; without a node name, the hostname', async () => {
    fakeRun = async () => {
      throw new Error('boom');
    };
    const r = await runStep(step, params, opts());
    expect(r.error).toMatch(/boom/);
    expect(r.environment?.nodeName).toBe(hostname());
    expect(r.node).toBe(hostname());
  });

  it('a step result written before the field existed still parses', () => {
    const old = { apiVersion: API_VERSION_FULL, kind: 'StepResult', step: 'stress', category: 'stress', attempt: 1, startedAt: 'a', finishedAt: 'b', node: 'n', measurements: [] };
    expect(StepResult.parse(old).environment).toBeUndefined();
    expect(() => StepResult.parse({ ...old, environment: { ...NODE_B, cpus: 'many' } })).toThrow(/cpus/);
  });
});

describe('environmentOf in a cluster: the runners, never the operator', () => {
  const params = resolveParams({ mode: 'quick' });
  const steps = buildPlan(params).map((s) => ({ ...stepResult({ mode: 'quick' }, s, 1), node: s.name === 'gpu' ? 'node-c' : 'node-b', environment: s.name === 'gpu' ? NODE_C : { ...NODE_B, hostname: `pod-${s.name}` } }));

  it('names the steps\' nodes, takes the figures of the environment most steps ran in, lists every runner', () => {
    const env = environmentOf('kubernetes', { params, steps, version: '1', ownAgentImage: 'reg/x:1' });
    expect(env.hostname).toBe('node-b,node-c');
    expect(env).toMatchObject({ node: NODE_B.node, os: NODE_B.os, arch: 'arm64', cpus: 96, cpuModel: 'Runner CPU', memoryBytes: NODE_B.memoryBytes });
    expect(env.node).not.toBe(process.version);
    expect(env.cpuSet).toBeUndefined();
    expect(env.runners).toHaveLength(2);
    expect(env.runners![0]).toMatchObject({ nodeName: 'node-b', steps: steps.filter((s) => s.step !== 'gpu').map((s) => s.step), hostname: `pod-${steps[0]!.step}` });
    expect(env.runners![1]).toMatchObject({ nodeName: 'node-c', steps: ['gpu'], cpus: 8 });
    const doc = completeDocument(ResultDocument.parse({ ...JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results-quick.json'), 'utf8')), environment: env }));
    const md = renderMarkdown(doc);
    expect(md).toMatch(/- runner node node-b: 96 × Runner CPU, 256 GiB, limit 2 GiB, 2 effective CPUs, Node v24\.0\.0-runner, linux 6\.1\.0-runner arm64; steps distributed, /);
    expect(md).toContain('- runner node node-c: 8 × GPU host CPU, 64 GiB, limit 2 GiB, 2 effective CPUs, Node v24.0.0-runner, linux 6.1.0-runner arm64; step gpu\n');
    const txt = renderReport(doc, { color: false });
    expect(runnerText(env.runners![1]!)).toMatch(/^node-c: 8 × GPU host CPU, 64 GiB.*; step gpu$/);
    expect(txt).toContain('runner node-c: 8 × GPU host CPU, 64 GiB, limit 2 GiB, 2 effective CPUs; step gpu\n');
    expect(txt).toMatch(/^kubernetes · node v24\.0\.0-runner · 96 × Runner CPU · 256 GiB/m);
  });

  it('on a tie, the first step\'s environment', () => {
    const two = [steps[0]!, { ...steps[1]!, environment: NODE_C }];
    expect(environmentOf('kubernetes', { params, steps: two, version: '1' }).cpus).toBe(NODE_B.cpus);
  });

  it('old step results without an environment: the nodes they name, figures unknown (not the operator\'s)', () => {
    const old = steps.map(({ environment: _e, ...s }) => s);
    const env = environmentOf('kubernetes', { params, steps: old, version: '1' });
    expect(env.hostname).toBe('node-b,node-c');
    expect(env).toMatchObject({ node: 'unknown', os: 'unknown', arch: 'unknown', cpus: 0, memoryBytes: 0 });
    expect(env.runners).toBeUndefined();
  });

  it('locally: this machine, no runners list', () => {
    const env = environmentOf('local', { params, steps, version: '1' });
    expect(env.hostname).toBe(hostname());
    expect(env.node).toBe(process.version);
    expect(env.runners).toBeUndefined();
  });
});

describe('the operator assembles the runners\' environment (finish.ts)', () => {
  it('a step that ran on another node makes the exported result name that node, with its figures', async () => {
    const spec = { mode: 'quick' as const, categories: ['distributed' as const, 'integration' as const] };
    const w = new World(spec);
    await w.settle();
    for (const name of ['distributed', 'integration']) {
      w.writeResult(name, { ...stepResult(spec, w.step(name), w.attempt), node: 'node-b', environment: { ...NODE_B, hostname: `pod-${name}` } });
      w.endJob(name, 'Complete');
      await w.settle();
    }
    expect(w.status.phase).toBe('Succeeded');
    const doc = ResultDocument.parse(JSON.parse(w.fake.get('ConfigMap', NS, `${NAME}-results`)!.data!['results.json']!));
    expect(doc.environment).toMatchObject({ platform: 'kubernetes', hostname: 'node-b', node: NODE_B.node, cpus: 96, cpuModel: 'Runner CPU', arch: 'arm64' });
    expect(doc.environment.runners).toEqual([{ ...NODE_B, hostname: 'pod-distributed', steps: ['distributed', 'integration'] }]);
  });
});
