/**
 * The fingerprint of a result (issue 16, src/api/fingerprint.ts, src/report/fingerprint.ts) and
 * the refusal of a baseline comparison (src/report/baseline.ts `compareRuns`) between results not
 * measured alike: refused naming every difference, accepted with `force` and then warned about;
 * names and times never count; documents written before the fingerprint compare on their
 * environment; a hostile document gives a bounded fingerprint.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FINGERPRINT_MAX_NODES, FINGERPRINT_MAX_STRING, Fingerprint } from '../../src/api/fingerprint.ts';
import { ResultDocument, type Environment, type ResultDocument as Doc, type RunnerEnvironment } from '../../src/api/schema.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { compareRuns } from '../../src/report/baseline.ts';
import { completeDocument } from '../../src/report/document.ts';
import { ComparisonRefusedError, comparisonRefusal, fingerprintDiff, fingerprintFor, fingerprintOf } from '../../src/report/fingerprint.ts';

const load = (f: string): Doc => ResultDocument.parse(JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', f), 'utf8')));
const current = load('results-quick.json');
const baseline = load('results-baseline.json');
const withEnv = (doc: Doc, env: Partial<Environment>): Doc => ({ ...doc, environment: { ...doc.environment, ...env } });
const params = resolveParams({ mode: 'quick' });

/** The error compareRuns threw, or fails the test. */
function refusalOf(fn: () => unknown): ComparisonRefusedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ComparisonRefusedError) return err;
    throw err;
  }
  throw new Error('the comparison was not refused');
}

describe('a baseline measured on another machine', () => {
  const xeon = withEnv(baseline, { cpuModel: 'Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz' });

  it('is refused, and the message names cpuModel with both values and how to force', () => {
    const e = refusalOf(() => compareRuns(current, xeon));
    expect(e.differences).toEqual([{ field: 'cpuModel', baseline: '"Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"', current: '"AMD EPYC"' }]);
    expect(e.message).toMatch(/cpuModel: baseline "Intel\(R\) Xeon\(R\) Gold 6338 CPU @ 2\.00GHz", this run "AMD EPYC"/);
    expect(e.message).toMatch(/--force-compare/);
    // completeDocument (swarmbench report --baseline) refuses it the same way.
    expect(() => completeDocument(current, { baseline: xeon })).toThrow(ComparisonRefusedError);
  });

  it('is compared with force, and the first warnings say what differs', () => {
    const c = compareRuns(current, xeon, { force: true });
    expect(c.regressed).toEqual(['1.3']); // the fixture's planted changes, as with the same machine
    expect(c.improved).toEqual(['3.1']);
    expect(c.warnings[0]).toBe('compared although not measured alike (--force-compare): cpuModel: baseline "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", this run "AMD EPYC"');
    // conditionWarnings stays: its own line follows.
    expect(c.warnings.slice(1).join('\n')).toMatch(/machine differs: baseline 2 × Intel/);
  });

  it('names every difference that matters, and only those', () => {
    const other = withEnv(baseline, {
      cpus: 16,
      arch: 'arm64',
      os: 'linux 6.8.0-45-generic',
      node: 'v22.11.0',
      swarmbenchVersion: '0.2.0',
      memoryBytes: 64 * 2 ** 30,
      inference: { backend: 'tensorflow', gpuInUse: true },
      // Not differences that matter: names, the agents' image (the system under test).
      hostname: 'elsewhere',
      agentImage: 'registry.example/agent:2',
    });
    const d = fingerprintDiff(fingerprintFor(current), fingerprintFor(other));
    expect(d.map((x) => x.field).sort()).toEqual(['arch', 'cpus', 'inference', 'memoryBytes', 'node', 'os', 'swarmbenchVersion'].sort());
    expect(d.find((x) => x.field === 'inference')).toEqual({ field: 'inference', baseline: '"tensorflow (GPU)"', current: '"wasm (no GPU)"' });
    expect(d.find((x) => x.field === 'memoryBytes')).toEqual({ field: 'memoryBytes', baseline: '64 GiB', current: '23.5 GiB' });
    const e = refusalOf(() => compareRuns(current, other));
    for (const x of d) expect(e.message).toContain(`${x.field}: baseline ${x.baseline}, this run ${x.current}`);
  });

  it('a kernel patch, a Node minor or a SwarmBench patch release is no difference; their series is', () => {
    const patch = withEnv(baseline, { os: 'linux 6.18.51-fc-v700', node: 'v24.99.1', swarmbenchVersion: '0.1.7' });
    expect(fingerprintDiff(fingerprintFor(current), fingerprintFor(patch))).toEqual([]);
    const series = withEnv(baseline, { os: 'linux 6.19.0', node: 'v25.0.0', swarmbenchVersion: '1.1.0' });
    expect(fingerprintDiff(fingerprintFor(current), fingerprintFor(series)).map((x) => x.field)).toEqual(['swarmbenchVersion', 'os', 'node']);
  });
});

describe('what does not count', () => {
  it('the same machine with another hostname, run name and time compares as before', () => {
    const renamed: Doc = {
      ...withEnv(baseline, { hostname: 'another-host', hostLoad: undefined }),
      run: { ...baseline.run, name: 'yesterday', startedAt: '2020-01-01T00:00:00.000Z', finishedAt: '2020-01-01T00:05:00.000Z' },
    };
    expect(fingerprintDiff(fingerprintFor(current), fingerprintFor(renamed))).toEqual([]);
    expect(fingerprintFor(renamed).id).toBe(fingerprintFor(current).id);
    const c = compareRuns(current, renamed);
    expect(c.regressed).toEqual(['1.3']);
    expect(c.warnings).toEqual([]);
  });

  it('targets, trials, categories and the agents compare (with conditionWarnings), as the system under test', () => {
    const run = (spec: Parameters<typeof resolveParams>[0]) => fingerprintOf(current, { params: resolveParams(spec) });
    const base = run({ mode: 'quick' });
    expect(fingerprintDiff(run({ mode: 'quick', trials: 40, targets: { successRate: 50 }, categories: ['gpu'], agents: { image: 'reg/agent:2', defects: ['memory-leak'] } }), base)).toEqual([]);
    const other: Doc = { ...withEnv(baseline, { agentImage: 'reg/agent:1' }), targets: { ...baseline.targets, successRate: 50 } };
    const c = compareRuns(current, other);
    expect(c.warnings.join('\n')).toMatch(/agent image differs/);
    expect(c.warnings.join('\n')).toMatch(/targets differ: successRate/);
  });

  it('a value unknown on one side (a cluster run whose steps did not report their machine) is no difference', () => {
    const unknown = withEnv(baseline, { cpuModel: 'unknown (the steps did not report their environment)', cpus: 0, memoryBytes: 0, node: 'unknown', os: 'unknown', arch: 'unknown', inference: undefined });
    expect(fingerprintDiff(fingerprintFor(current), fingerprintFor(unknown))).toEqual([]);
  });
});

describe('the workload', () => {
  it('a different mode, or a different size of the workload, is refused naming the size', () => {
    const a = fingerprintOf(current, { params });
    const b = fingerprintOf(current, { params: resolveParams({ mode: 'quick', agents: { poolSize: 3 }, stress: { sustainedDuration: '1m' } }) });
    expect(a.spec.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.spec.hash).not.toBe(b.spec.hash);
    expect(fingerprintDiff(b, a)).toEqual([
      { field: 'spec.sizes.agents.poolSize', baseline: '8', current: '3' },
      { field: 'spec.sizes.stress.sustainedMs', baseline: '20000', current: '60000' },
      { field: 'spec.sizes.stress.windowMs', baseline: '4000', current: '12000' }, // follows the duration
    ]);
    const full = fingerprintOf({ ...current, run: { ...current.run, mode: 'full' } }, { params: resolveParams({ mode: 'full' }) });
    expect(fingerprintDiff(full, a).map((x) => x.field)).toContain('spec.mode');
  });
});

describe('documents written before the fingerprint', () => {
  it('still validate, and get one from their environment that compares with a new one of the same machine', () => {
    const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'results-baseline.json'), 'utf8')) as Record<string, unknown>;
    expect(raw.fingerprint).toBeUndefined();
    const old = ResultDocument.parse(raw);
    const fp = fingerprintFor(old);
    expect(Fingerprint.parse(fp)).toEqual(fp);
    expect(fp).toMatchObject({ platform: 'local', cpuModel: 'AMD EPYC', cpus: 2, spec: { mode: 'quick' }, nodes: [{ name: 'vm' }], nodeCount: 1 });
    expect(fp.spec.sizes).toBeUndefined(); // the old document does not hold the sizes: they do not count
    // A new document of the same machine, with its sizes, against the old one.
    const fresh: Doc = { ...current, fingerprint: fingerprintOf(current, { params }) };
    expect(ResultDocument.parse(JSON.parse(JSON.stringify(fresh))).fingerprint).toEqual(fresh.fingerprint);
    expect(comparisonRefusal(fresh, old)).toBeUndefined();
    expect(compareRuns(fresh, old).regressed).toEqual(['1.3']);
  });

  it('a stored fingerprint is used as it is (it may know more than the environment: the node labels)', () => {
    const stored: Doc = { ...baseline, fingerprint: { ...fingerprintFor(baseline), cpuModel: 'Recorded CPU' } };
    expect(comparisonRefusal(current, stored)?.differences.map((d) => d.field)).toEqual(['cpuModel']);
  });

  it('a fingerprint over its bounds is an invalid document', () => {
    const fp = fingerprintFor(baseline);
    expect(ResultDocument.safeParse({ ...baseline, fingerprint: { ...fp, cpuModel: 'x'.repeat(FINGERPRINT_MAX_STRING + 1) } }).success).toBe(false);
    expect(ResultDocument.safeParse({ ...baseline, fingerprint: { ...fp, nodes: Array.from({ length: FINGERPRINT_MAX_NODES + 1 }, (_, i) => ({ name: `n${i}` })) } }).success).toBe(false);
    expect(ResultDocument.safeParse({ ...baseline, fingerprint: { ...fp, id: 'not-hex' } }).success).toBe(false);
  });
});

describe('cluster runs: the machine of each step, and node labels where known', () => {
  const runner = (nodeName: string, steps: string[], cpuModel = 'EPYC 9654', cpus = 16): RunnerEnvironment & { steps: string[] } => ({
    nodeName,
    hostname: `pod-${nodeName}`,
    node: 'v24.1.0',
    os: 'linux 6.8.0-45-generic',
    arch: 'x64',
    cpus,
    cpuModel,
    memoryBytes: 64 * 2 ** 30,
    cpuSet: { availableParallelism: cpus, effectiveCpus: 4 },
    steps,
  });
  const cluster = (runners: ReturnType<typeof runner>[]): Doc => {
    const { node, os, arch, cpus, cpuModel, memoryBytes } = runners[0]!;
    return withEnv(current, { platform: 'kubernetes', hostname: runners.map((r) => r.nodeName).join(','), runners, node, os, arch, cpus, cpuModel, memoryBytes, cpuSet: undefined });
  };

  it('another node of the same kind is no difference; another kind of machine for a step is named with the step', () => {
    const a = cluster([runner('node-a', ['distributed', 'stress']), runner('gpu-1', ['gpu'], 'Xeon 8480', 32)]);
    const sameKind = cluster([runner('node-z', ['distributed', 'stress']), runner('gpu-9', ['gpu'], 'Xeon 8480', 32)]);
    expect(fingerprintDiff(fingerprintFor(a), fingerprintFor(sameKind))).toEqual([]);
    const otherGpuHost = cluster([runner('node-a', ['distributed', 'stress']), runner('gpu-1', ['gpu'], 'Xeon 6338', 32)]);
    const d = fingerprintDiff(fingerprintFor(a), fingerprintFor(otherGpuHost));
    expect(d.map((x) => x.field)).toEqual(['nodes[gpu]']);
    expect(d[0]!.current).toMatch(/^"gpu-1 \(32 × Xeon 8480, 4 effective CPUs, 64 GiB, x64, linux 6\.8\.0-45-generic, Node v24\.1\.0\)"$/);
    expect(d[0]!.baseline).toMatch(/32 × Xeon 6338/);
  });

  it('keeps only the labels that matter; a different GPU product of a step is refused', () => {
    const doc = cluster([runner('node-a', ['distributed']), runner('gpu-1', ['gpu'])]);
    const labels = (product: string) => ({
      'gpu-1': { 'nvidia.com/gpu.product': product, 'nvidia.com/cuda.driver.major': '550', 'node.kubernetes.io/instance-type': 'p5.48xlarge', 'kubernetes.io/hostname': 'gpu-1', 'team': 'x' },
    });
    const h100 = fingerprintOf(doc, { params, nodeLabels: labels('NVIDIA-H100-80GB-HBM3') });
    expect(h100.nodes.find((n) => n.name === 'gpu-1')!.labels).toEqual({ 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3', 'nvidia.com/cuda.driver.major': '550', 'node.kubernetes.io/instance-type': 'p5.48xlarge' });
    expect(h100.nodes.find((n) => n.name === 'node-a')!.labels).toBeUndefined();
    const a100 = fingerprintOf(doc, { params, nodeLabels: labels('NVIDIA-A100-SXM4-80GB') });
    expect(fingerprintDiff(h100, a100)).toEqual([{ field: 'nodes[gpu].labels', current: expect.stringContaining('NVIDIA-H100-80GB-HBM3'), baseline: expect.stringContaining('NVIDIA-A100-SXM4-80GB') }]);
    expect(h100.id).not.toBe(a100.id);
    // Labels unknown on one side (a runner does not see its node's labels): no difference.
    expect(fingerprintDiff(h100, fingerprintOf(doc, { params }))).toEqual([]);
  });
});

describe('bounded', () => {
  it('a document with 10 000 runners and long strings gives a fingerprint of at most 64 nodes, strings cut', () => {
    const long = 'x'.repeat(100_000);
    const runners = Array.from({ length: 10_000 }, (_, i) => ({
      nodeName: `node-${i}-${'y'.repeat(300)}`,
      hostname: `pod-${i}`,
      node: 'v24.1.0',
      os: 'linux 6.8.0',
      arch: 'x64',
      cpus: 8,
      cpuModel: long,
      memoryBytes: 2 ** 34,
      steps: Array.from({ length: 40 }, (_, j) => `step-${j}`),
    }));
    const doc = ResultDocument.parse({ ...current, environment: { ...current.environment, platform: 'kubernetes', hostname: runners.map((r) => r.nodeName.slice(0, 12)).join(','), runners } });
    const t0 = performance.now();
    const fp = fingerprintFor(doc);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(fp.nodes).toHaveLength(FINGERPRINT_MAX_NODES);
    expect(fp.nodeCount).toBe(10_000);
    for (const n of fp.nodes) {
      expect(n.name.length).toBeLessThanOrEqual(FINGERPRINT_MAX_STRING);
      expect(n.cpuModel!.length).toBeLessThanOrEqual(FINGERPRINT_MAX_STRING);
      expect(n.steps!.length).toBeLessThanOrEqual(32);
    }
    expect(JSON.stringify(fp).length).toBeLessThan(1_000_000);
    expect(Fingerprint.safeParse(fp).success).toBe(true);
    // Compared with itself and with a small one, in bounded time and with a bounded message.
    expect(fingerprintDiff(fp, fp)).toEqual([]);
    const e = refusalOf(() => compareRuns(current, doc));
    expect(e.message.length).toBeLessThan(100_000);
    expect(e.message).toMatch(/platform: baseline "kubernetes", this run "local"/);
  });

  it('a cluster document without runner environments lists at most 64 node names and counts them all', () => {
    const hostname = Array.from({ length: 5000 }, (_, i) => `n${i}`).join(',');
    const fp = fingerprintFor(withEnv(current, { platform: 'kubernetes', hostname }));
    expect(fp.nodes.map((n) => n.name)).toEqual(Array.from({ length: 64 }, (_, i) => `n${i}`));
    expect(fp.nodeCount).toBe(5000);
  });
});
