/**
 * Defect profiles: the catalogue and its parser, their checks at every boundary (the spec, the
 * run's parameters, the agent's flags and environment), their documentation, and how they travel
 * to the agents (the local platform's flags, the pods' environment). What each profile does to a
 * running agent is in agent-defects-behaviour.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs, resolveConfig } from '../../src/agent/cli.ts';
import {
  AgentDefects,
  DEFECTS,
  defectNames,
  defectSeed,
  parseDefect,
  parseDefectList,
  Spread,
} from '../../src/agent/defects.ts';
import { validateSpec } from '../../src/api/validate.ts';
import { parseParams, resolveParams } from '../../src/plan/params.ts';
import { agentDeployment } from '../../src/platform/kubernetes/manifests.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { mulberry32 } from '../../src/prng.ts';

describe('the catalogue', () => {
  it('names every profile the issue asks for, each once, with a site and what it imitates', () => {
    const names = DEFECTS.map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of [
      'no-balancing', 'slow-gossip', 'slow-failure-detection', 'no-failure-detection', 'lost-tasks', 'wrong-digests',
      'stale-reads', 'global-lock', 'slow-startup', 'event-lag', 'event-drops', 'slow-metrics', 'memory-leak',
      'no-load-shedding', 'tensor-leak', 'throughput-decay', 'no-batching', 'no-fallback', 'slow-peers', 'slow-handoff',
    ]) {
      expect(names).toContain(n);
    }
    expect(defectNames('inference')).toEqual(['tensor-leak', 'throughput-decay', 'no-batching', 'no-fallback']);
    for (const d of DEFECTS) {
      expect(d.imitates.length).toBeGreaterThan(20);
      expect(d.breaks.length).toBeGreaterThan(0);
      if (d.param) {
        expect(d.param.default).toBeGreaterThanOrEqual(d.param.min);
        expect(d.param.default).toBeLessThanOrEqual(d.param.max);
      }
    }
  });

  it('is documented: docs/defects.md has a section and a table row for every profile', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/defects.md'), 'utf8');
    for (const d of DEFECTS) {
      expect(doc, d.name).toContain(`### ${d.name}\n`);
      expect(doc, d.name).toMatch(new RegExp(`^\\| \`${d.name}\` \\|`, 'm'));
    }
  });
});

describe('parseDefect', () => {
  it('takes NAME (the default parameter) or NAME:VALUE', () => {
    expect(parseDefect('lost-tasks')).toEqual({ name: 'lost-tasks', value: 0.01 });
    expect(parseDefect('lost-tasks:0.05')).toEqual({ name: 'lost-tasks', value: 0.05 });
    expect(parseDefect(' stale-reads:3 ')).toEqual({ name: 'stale-reads', value: 3 });
    expect(parseDefect('global-lock')).toEqual({ name: 'global-lock', value: null });
  });

  it('slow-peers and slow-handoff: a delay in ms, with their defaults and bounds', () => {
    expect(parseDefect('slow-peers')).toEqual({ name: 'slow-peers', value: 25 });
    expect(parseDefect('slow-handoff')).toEqual({ name: 'slow-handoff', value: 3000 });
    expect(parseDefect('slow-handoff:500')).toEqual({ name: 'slow-handoff', value: 500 });
    expect(parseDefect('slow-peers:0')).toBe('defect "slow-peers": ms (ms per agent-to-agent request) must be 1..60000, got 0');
    expect(parseDefect('slow-handoff:600001')).toBe('defect "slow-handoff": ms (ms per workflow hop to another agent) must be 1..600000, got 600001');
    expect(parseDefect('slow-peers', 'inference')).toBe('"slow-peers" is an agent defect, not an inference defect (it belongs in agents.defects)');
    const d = new AgentDefects([{ name: 'slow-peers', value: 40 }, { name: 'slow-handoff', value: 700 }], 'a');
    expect([d.peerDelayMs, d.handoffDelayMs]).toEqual([40, 700]);
    expect(DEFECTS.find((x) => x.name === 'slow-peers')!.breaks).toEqual(['1.3']);
    expect(DEFECTS.find((x) => x.name === 'slow-handoff')!.breaks).toEqual(['5.1', '5.2']);
  });

  it('names what is wrong', () => {
    expect(parseDefect('lost-task')).toMatch(/^unknown defect "lost-task" \(known: no-balancing, /);
    expect(parseDefect('lost-tasks:2')).toBe('defect "lost-tasks": rate (fraction of accepted tasks) must be 0.0001..1, got 2');
    expect(parseDefect('lost-tasks:x')).toBe('defect "lost-tasks": rate must be a number, got "x"');
    expect(parseDefect('lost-tasks:')).toBe('defect "lost-tasks": rate must be a number, got ""');
    expect(parseDefect('stale-reads:2.5')).toBe('defect "stale-reads": period must be an integer, got 2.5');
    expect(parseDefect('global-lock:3')).toBe('defect "global-lock" takes no parameter (got "3")');
    expect(parseDefect('no-batching', 'agent')).toBe('"no-batching" is an inference defect, not an agent defect (it belongs in gpu.defects)');
    expect(parseDefect('lost-tasks', 'inference')).toBe('"lost-tasks" is an agent defect, not an inference defect (it belongs in agents.defects)');
    expect(parseDefect('')).toMatch(/NAME or NAME:VALUE/);
    expect(parseDefectList(['lost-tasks', 'stale-reads', 'lost-tasks:0.1']).errors).toEqual([
      { index: 2, message: 'defect "lost-tasks" is listed twice' },
    ]);
  });
});

describe('reproducible hits', () => {
  it('a rate of 1/100 hits exactly one call in every 100, from a phase seeded by the agent id', () => {
    const hits = (id: string): number[] => {
      const s = new Spread(0.01, mulberry32(defectSeed(id, 'lost-tasks')));
      return Array.from({ length: 1000 }, (_, i) => (s.next() ? i : -1)).filter((i) => i >= 0);
    };
    const a = hits('pool-1');
    expect(a).toHaveLength(10);
    for (let k = 1; k < a.length; k++) expect(a[k]! - a[k - 1]!).toBe(100);
    expect(hits('pool-1')).toEqual(a); // the same agent id loses the same tasks
    expect(hits('pool-2')).not.toEqual(a); // another agent has its own phase
  });

  it('an agent with no profile has every switch off', () => {
    const d = new AgentDefects([], 'a');
    expect(d.any).toBe(false);
    expect([d.noBalancing, d.noLoadShedding, d.staleReads, d.eventDrops, d.globalLock]).toEqual([false, false, false, false, null]);
    expect([d.gossipSlowdown, d.failureTimeoutFactor, d.failureDetection]).toEqual([1, 1, true]);
    expect([d.startupDelayMs, d.eventLagMs, d.metricsDelayMs, d.leakBytesPerTask]).toEqual([0, 0, 0, 0]);
    expect([d.peerDelayMs, d.handoffDelayMs]).toEqual([0, 0]);
    expect([d.loseAccepted(), d.skipWork(), d.staleRead(), d.dropEvent()]).toEqual([false, false, false, false]);
  });
});

describe('the spec and the run parameters', () => {
  it('accepts profiles under agents.defects and gpu.defects and resolves them into Params', () => {
    const v = validateSpec({ agents: { defects: ['lost-tasks', 'stale-reads:3'] }, gpu: { defects: ['no-batching'] } });
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    const p = resolveParams(v.value);
    expect(p.agents.defects).toEqual(['lost-tasks', 'stale-reads:3']);
    expect(p.gpu.defects).toEqual(['no-batching']);
    expect(parseParams(JSON.stringify(p), 'test').agents.defects).toEqual(['lost-tasks', 'stale-reads:3']);
    expect(resolveParams({}).agents.defects).toEqual([]);
    expect(resolveParams({}).gpu.defects).toEqual([]);
  });

  it('refuses a bad profile naming the entry', () => {
    const v = validateSpec({ agents: { defects: ['lost-tasks', 'lost-task'] }, gpu: { defects: ['global-lock'] } });
    expect(v.ok).toBe(false);
    if (v.ok) return;
    const text = v.errors.map((e) => `${e.path}: ${e.message}`).join('\n');
    expect(text).toContain('spec.agents.defects[1]: unknown defect "lost-task"');
    expect(text).toContain('spec.gpu.defects[0]: "global-lock" is an agent defect, not an inference defect');
    const shape = validateSpec({ agents: { defects: ['Lost Tasks'] } });
    expect(shape.ok).toBe(false);
  });

  it('refuses a params document with a bad profile, naming the field', () => {
    const p = resolveParams({});
    const bad = { ...p, agents: { ...p.agents, defects: ['nonsense'] } };
    expect(() => parseParams(JSON.stringify(bad), 'SWARMBENCH_PARAMS')).toThrow(/agents\.defects\[0\].*unknown defect "nonsense"/s);
  });
});

describe('the agent CLI', () => {
  it('takes --defect (repeatable, comma lists) and SWARMBENCH_DEFECTS; flags win', () => {
    const cfg = resolveConfig(parseArgs(['--defect', 'lost-tasks', '--defect=stale-reads:3,global-lock']), { SWARMBENCH_DEFECTS: 'slow-metrics' });
    expect(cfg.defects).toEqual([
      { name: 'lost-tasks', value: 0.01 },
      { name: 'stale-reads', value: 3 },
      { name: 'global-lock', value: null },
    ]);
    expect(resolveConfig(parseArgs([]), { SWARMBENCH_DEFECTS: 'slow-metrics:50' }).defects).toEqual([{ name: 'slow-metrics', value: 50 }]);
    expect(resolveConfig(parseArgs([]), {}).defects).toEqual([]);
  });

  it('refuses an unknown or misplaced profile, naming where it came from', () => {
    expect(() => resolveConfig(parseArgs(['--defect', 'nope']), {})).toThrow(/^--defect: unknown defect "nope"/);
    expect(() => resolveConfig(parseArgs([]), { SWARMBENCH_DEFECTS: 'no-batching' })).toThrow(/^SWARMBENCH_DEFECTS: "no-batching" is an inference defect/);
  });
});

describe('wiring to the agents', () => {
  const ctx = { run: { name: 'r', namespace: 'ns', uid: 'u' }, attempt: 1, step: 'distributed', category: 'distributed' };

  it('pods of the project\'s own image get SWARMBENCH_DEFECTS; a user\'s image does not', () => {
    const pool = { name: 'p', capacity: 8, defects: ['lost-tasks', 'stale-reads:3'] };
    const env = (own: boolean) => agentDeployment({ ctx, pool, replicas: 1, image: 'img', ownImage: own }).spec!.template.spec!.containers[0]!.env!;
    expect(env(true).find((e) => e.name === 'SWARMBENCH_DEFECTS')?.value).toBe('lost-tasks,stale-reads:3');
    expect(env(false).find((e) => e.name === 'SWARMBENCH_DEFECTS')).toBeUndefined();
    const clean = agentDeployment({ ctx, pool: { name: 'p', capacity: 8 }, replicas: 1, image: 'img', ownImage: true });
    expect(clean.spec!.template.spec!.containers[0]!.env!.find((e) => e.name === 'SWARMBENCH_DEFECTS')).toBeUndefined();
  });
});
