/**
 * Recommendation rules: each one fires on its pattern and stays quiet just short of it, and a
 * healthy run gets no recommendation at all.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResultDocument, type ResultDocument as Doc, type TestResult } from '../../src/api/schema.ts';
import { recommend, RULES } from '../../src/report/recommend.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const quick = (): Doc => ResultDocument.parse(JSON.parse(readFileSync(join(FIXTURES, 'results-quick.json'), 'utf8')));

type D = Record<string, unknown>;
function t(doc: Doc, id: string): TestResult {
  const x = doc.tests.find((y) => y.id === id);
  if (!x) throw new Error(`no test ${id}`);
  return x;
}
function d(doc: Doc, id: string): D {
  const x = t(doc, id);
  x.details ??= {};
  return x.details;
}
const rulesOf = (doc: Doc) => recommend(doc).map((r) => r.rule);

/** The real quick run with every finding removed: what a healthy run looks like. */
function healthy(): Doc {
  const doc = quick();
  for (const x of doc.tests) {
    if (x.distribution) {
      x.distribution.p95 = Math.min(x.distribution.p95, x.distribution.p50 * 2);
      x.distribution.p99 = Math.min(x.distribution.p99, x.distribution.p50 * 3);
    }
    if (x.result === 'Failed') {
      x.result = 'Passed';
      delete x.reason;
    }
  }
  // 2.1 measured on a GPU that beats the CPU from batch 1.
  Object.assign(t(doc, '2.1'), { result: 'Passed', value: 6.1, samples: 40 });
  delete t(doc, '2.1').reason;
  Object.assign(d(doc, '2.1'), {
    gpuInUse: true,
    backend: 'tensorflow-gpu',
    perBatch: [
      { batch: 1, gpuP50Ms: 0.2, cpuP50Ms: 0.3, speedup: 1.5 },
      { batch: 32, gpuP50Ms: 0.5, cpuP50Ms: 2, speedup: 4 },
      { batch: 128, gpuP50Ms: 1, cpuP50Ms: 6.1, speedup: 6.1 },
    ],
  });
  doc.environment.inference = { backend: 'tensorflow-gpu', gpuInUse: true };
  // 3.2: fast scrapes.
  Object.assign(t(doc, '3.2'), { value: 4 });
  t(doc, '3.2').distribution!.max = 9;
  // 4.x: efficiency >= 95 %, flat memory per agent, no generator lag.
  for (const id of ['4.1', '4.2', '4.3', '4.4', '4.5']) {
    const det = d(doc, id);
    const agents = det.agents as number;
    Object.assign(t(doc, id), { value: 97 });
    Object.assign(det, {
      throughput: agents * 9.7,
      offeredRate: agents * 10,
      memoryPerAgentMB: 14,
      latencyMs: { p50: 22, p95: 30, p99: 40 },
      generatorLagMs: { p50: 0.6, p99: 12, max: 20 },
    });
    delete det.warning;
  }
  // 6.1: no drift; 6.2: no lag.
  Object.assign(d(doc, '6.1'), {
    driftPct: 4,
    windows: [20, 21, 20.5, 21.5, 20.8].map((p95, i) => ({ t: i * 4000, p95 })),
    latencyMs: { n: 4000, p50: 22, p95: 30, p99: 60 },
  });
  for (const trial of d(doc, '6.2').trials as D[]) {
    trial.generatorLagMs = { p50: 1, p99: 20, max: 30 };
    delete trial.warning;
  }
  return ResultDocument.parse(doc);
}

describe('a healthy run', () => {
  it('gets no recommendation', () => {
    expect(recommend(healthy())).toEqual([]);
  });

  it('the real quick run of the fixture gets the ones its figures call for, HIGH first', () => {
    const recs = recommend(quick());
    expect(recs.map((r) => `${r.priority} ${r.rule} ${r.tests.join(',')}`)).toEqual([
      'HIGH latency-tail 3.1,3.2',
      'HIGH scaling-knee 4.5',
      'HIGH p95-drift 6.1',
      'MEDIUM latency-tail 1.3',
      'MEDIUM runner-saturated 4.5,6.2',
      'INFO gpu-not-used 2.1',
    ]);
    for (const r of recs) {
      expect(r.evidence.length).toBeGreaterThan(0);
      expect(r.suggestion.length).toBeGreaterThan(20);
    }
  });

  it('every rule has a unique name and a description', () => {
    expect(new Set(RULES.map((r) => r.name)).size).toBe(RULES.length);
    for (const r of RULES) expect(r.description.length).toBeGreaterThan(10);
  });
});

describe('scaling-knee', () => {
  it('names the first pool size under the target, with the figures', () => {
    const doc = healthy();
    Object.assign(t(doc, '4.4'), { value: 80 });
    Object.assign(t(doc, '4.5'), { value: 60 });
    Object.assign(d(doc, '4.4'), { throughput: 256, offeredRate: 320, latencyMs: { p50: 30, p95: 400, p99: 500 } });
    const [r] = recommend(doc).filter((x) => x.rule === 'scaling-knee');
    expect(r).toMatchObject({ priority: 'HIGH', category: 'scalability', tests: ['4.4', '4.5'] });
    expect(r!.message).toBe('Scaling efficiency falls under 90 % at 32 agents (97 % at 16)');
    expect(r!.evidence).toContain('throughput 256 of 320 tasks/s offered at 32 agents');
    expect(r!.evidence).toContain('latency p95 400 ms at 32 agents (30 ms at 16)');
    expect(r!.suggestion).toMatch(/at most 16 agents/);
  });

  it('stays quiet at exactly the target', () => {
    const doc = healthy();
    Object.assign(t(doc, '4.5'), { value: 90 });
    expect(rulesOf(doc)).not.toContain('scaling-knee');
  });
});

describe('gpu-batch-crossover', () => {
  it('fires (INFO) when the GPU wins only from a larger batch, naming it', () => {
    const doc = healthy();
    (d(doc, '2.1').perBatch as D[])[0]!.speedup = 0.6;
    const [r] = recommend(doc).filter((x) => x.rule === 'gpu-batch-crossover');
    expect(r).toMatchObject({ priority: 'INFO', tests: ['2.1'] });
    expect(r!.message).toMatch(/from batch 32/);
    expect(r!.suggestion).toMatch(/at least 32/);
  });

  it('fires (HIGH) when the GPU never wins', () => {
    const doc = healthy();
    for (const row of d(doc, '2.1').perBatch as D[]) row.speedup = 0.8;
    const [r] = recommend(doc).filter((x) => x.rule === 'gpu-batch-crossover');
    expect(r).toMatchObject({ priority: 'HIGH' });
    expect(r!.message).toMatch(/never beats the CPU backend \(best 0\.800× at batch 1\)/);
  });

  it('stays quiet when the GPU wins at every batch, or when 2.1 was skipped', () => {
    expect(rulesOf(healthy())).not.toContain('gpu-batch-crossover');
    expect(rulesOf(quick())).not.toContain('gpu-batch-crossover');
  });
});

describe('latency-tail', () => {
  it('fires when p99 is 10× p50 over enough samples and the tail matters against the target', () => {
    const doc = healthy();
    Object.assign(t(doc, '1.3').distribution!, { n: 320, p50: 0.1, p95: 0.5, p99: 6 });
    const [r] = recommend(doc).filter((x) => x.rule === 'latency-tail');
    expect(r).toMatchObject({ priority: 'MEDIUM', category: 'distributed', tests: ['1.3'] });
    expect(r!.evidence[0]).toBe('1.3 Cross-node latency: p50 0.100 ms, p99 6 ms (60× p50, n=320)');
  });

  it('is HIGH when the p99 misses the target', () => {
    const doc = healthy();
    Object.assign(t(doc, '3.1').distribution!, { n: 200, p50: 0.4, p99: 60 });
    expect(recommend(doc).find((x) => x.rule === 'latency-tail')).toMatchObject({ priority: 'HIGH', tests: ['3.1'] });
  });

  it('fires on the task latency of a scaling step', () => {
    const doc = healthy();
    d(doc, '4.3').latencyMs = { p50: 20, p95: 90, p99: 400 };
    expect(recommend(doc).find((x) => x.rule === 'latency-tail')).toMatchObject({ category: 'scalability', tests: ['4.3'] });
  });

  it('stays quiet under 10×, with too few samples, or with a tail negligible against the target', () => {
    const doc = healthy();
    Object.assign(t(doc, '1.3').distribution!, { n: 320, p50: 0.1, p95: 0.5, p99: 0.95 }); // 9.5×
    Object.assign(t(doc, '1.4').distribution!, { n: 10, p50: 10, p95: 300, p99: 900 }); // n < 20
    Object.assign(t(doc, '5.1').distribution!, { n: 20, p50: 3.5, p95: 90, p99: 98 }); // 94 ms of a 5000 ms target
    expect(rulesOf(doc)).not.toContain('latency-tail');
  });
});

describe('p95-drift', () => {
  it('fires when 6.1 drifted past its target, and tells a trend from variance', () => {
    const doc = healthy();
    Object.assign(d(doc, '6.1'), { driftPct: 60, windows: [20, 24, 26, 29, 32].map((p95) => ({ p95 })) });
    const [r] = recommend(doc).filter((x) => x.rule === 'p95-drift');
    expect(r).toMatchObject({ priority: 'HIGH', category: 'stress', tests: ['6.1'] });
    expect(r!.message).toMatch(/rising in every window/);
    expect(r!.evidence[1]).toBe('p95 per 4 s window: 20, 24, 26, 29, 32 ms');
    expect(r!.suggestion).toMatch(/accumulates/);
    expect(recommend(quick()).find((x) => x.rule === 'p95-drift')!.suggestion).toMatch(/variance/);
  });

  it('stays quiet at or under the target, and for a p95 that got better', () => {
    const doc = healthy();
    d(doc, '6.1').driftPct = 20;
    expect(rulesOf(doc)).not.toContain('p95-drift');
    d(doc, '6.1').driftPct = -50;
    expect(rulesOf(doc)).not.toContain('p95-drift');
  });
});

describe('memory-per-agent', () => {
  const withMemory = (mb: number[]) => {
    const doc = healthy();
    ['4.1', '4.2', '4.3', '4.4', '4.5'].forEach((id, i) => (d(doc, id).memoryPerAgentMB = mb[i]));
    return doc;
  };

  it('fires when memory per agent grows with the pool', () => {
    const [r] = recommend(withMemory([27, 13.8, 15, 17, 19])).filter((x) => x.rule === 'memory-per-agent');
    expect(r).toMatchObject({ priority: 'MEDIUM', tests: ['4.2', '4.3', '4.4', '4.5'] });
    expect(r!.message).toBe('Memory per agent grows with the pool: 13.80 MB at 8 agents, 19 MB at 64');
    expect(r!.evidence[1]).toMatch(/^\+95\.09 KB per agent for each agent added/);
    expect(recommend(withMemory([10, 12, 15, 18, 25])).find((x) => x.rule === 'memory-per-agent')!.priority).toBe('HIGH');
  });

  it('stays quiet for the fixture (+11 %) and when per-agent memory falls', () => {
    expect(rulesOf(quick())).not.toContain('memory-per-agent');
    expect(rulesOf(withMemory([30, 20, 16, 15, 14]))).not.toContain('memory-per-agent');
    expect(rulesOf(withMemory([1, 1.1, 1.2, 1.3, 1.4]))).not.toContain('memory-per-agent'); // +0.4 MB
  });
});

describe('early-shedding', () => {
  it('fires when a step sized to be served answers 429', () => {
    const doc = healthy();
    Object.assign(d(doc, '6.1').counts as D, { offered: 4400, rejected: 120 });
    const r = recommend(doc).find((x) => x.rule === 'early-shedding');
    expect(r).toMatchObject({ priority: 'HIGH', category: 'stress', tests: ['6.1'] });
    expect(r!.evidence[0]).toBe('6.1: 120 of 4400 tasks (2.73 %) answered 429 at 200 tasks/s offered');
  });

  it('fires when under overload the pool accepts well under its capacity', () => {
    const doc = healthy();
    Object.assign(d(doc, '6.3').counts as D, { accepted: 200, rejected: 1848 });
    const r = recommend(doc).find((x) => x.rule === 'early-shedding');
    expect(r).toMatchObject({ priority: 'HIGH', tests: ['6.3'] });
    expect(r!.message).toMatch(/accepted 39\.06 tasks\/s of a capacity of 100 tasks\/s/);
  });

  it('stays quiet for a few 429s (< 1 %) and for the fixture, whose pool filled before shedding', () => {
    const doc = healthy();
    Object.assign(d(doc, '4.5').counts as D, { offered: 3200, rejected: 20 });
    expect(rulesOf(doc)).not.toContain('early-shedding');
    expect(rulesOf(quick())).not.toContain('early-shedding');
  });
});

describe('scrape-near-interval', () => {
  it('fires when the p95 scrape takes half the interval; HIGH from 80 % or when a scrape overran', () => {
    const doc = healthy();
    Object.assign(t(doc, '3.2'), { value: 600 });
    t(doc, '3.2').distribution!.max = 700;
    const [r] = recommend(doc).filter((x) => x.rule === 'scrape-near-interval');
    expect(r).toMatchObject({ priority: 'MEDIUM', category: 'monitoring', tests: ['3.2'] });
    expect(r!.suggestion).toMatch(/at least 1\.2 s/);
    t(doc, '3.2').distribution!.max = 1200;
    expect(recommend(doc).find((x) => x.rule === 'scrape-near-interval')!.priority).toBe('HIGH');
  });

  it('stays quiet under half the interval (the fixture: 153 ms of 1000 ms)', () => {
    expect(rulesOf(quick())).not.toContain('scrape-near-interval');
    const doc = healthy();
    Object.assign(t(doc, '3.2'), { value: 499 });
    expect(rulesOf(doc)).not.toContain('scrape-near-interval');
  });
});

describe('gpu-not-used', () => {
  it('is INFO when no GPU library is installed (the fixture)', () => {
    const r = recommend(quick()).find((x) => x.rule === 'gpu-not-used');
    expect(r).toMatchObject({ priority: 'INFO', tests: ['2.1'] });
  });

  it('is HIGH when the GPU backend loaded but inference fell back to the CPU', () => {
    const doc = quick();
    const attempts = d(doc, '2.1').backendAttempts as D[];
    attempts[0] = { name: 'tensorflow-gpu', ok: true, detail: 'tfjs-node-gpu 4.22.0' };
    t(doc, '2.1').reason = 'no GPU in use: tfjs-node-gpu loaded but isUsingGpuDevice() is false';
    const r = recommend(doc).find((x) => x.rule === 'gpu-not-used');
    expect(r).toMatchObject({ priority: 'HIGH' });
    expect(r!.evidence).toContain('backend tensorflow-gpu: loaded');
  });

  it('stays quiet when 2.1 ran on a GPU', () => {
    expect(rulesOf(healthy())).not.toContain('gpu-not-used');
  });
});

describe('runner-saturated', () => {
  it('fires when the load generator lagged, naming the tests', () => {
    const doc = healthy();
    d(doc, '4.5').generatorLagMs = { p50: 70, p99: 960, max: 1010 };
    const r = recommend(doc).find((x) => x.rule === 'runner-saturated');
    expect(r).toMatchObject({ priority: 'MEDIUM', tests: ['4.5'] });
    expect(r!.evidence).toEqual(['4.5: generator lag p50 70 ms, p99 960 ms']);
  });

  it('stays quiet at the bench\'s own thresholds (p50 10 ms, p99 100 ms)', () => {
    const doc = healthy();
    d(doc, '4.5').generatorLagMs = { p50: 10, p99: 100, max: 150 };
    expect(rulesOf(doc)).not.toContain('runner-saturated');
  });
});
