/**
 * The plan: an ordered list of steps, each a fixture (what must exist: an agent pool of some
 * sizes, a GPU or not) and a workload (which tests it measures). Pure data from a pure function.
 *
 * One step per category: a category's tests share a fixture and a runner process, which keeps
 * their pool warm between tests and their results together. The order puts the cheap, broad
 * categories first so a run that is cancelled early has said the most.
 */
import type { Category } from '../api/schema.ts';
import { testsOf } from './catalogue.ts';
import type { Params } from './params.ts';

export interface Step {
  /** Stable step name, e.g. `distributed`; also the runner's result name. */
  name: string;
  category: Category;
  fixture: {
    /** Agent pool sizes the step goes through, in order (empty: no pool). */
    poolSizes: number[];
    gpu: boolean;
    /** Faults the step injects (documented for the operator; the runner injects them). */
    faults: string[];
  };
  tests: string[];
  /** Upper bound for the step's duration, for timeouts (ms). */
  timeoutMs: number;
}

const ORDER: Category[] = ['distributed', 'integration', 'monitoring', 'gpu', 'scalability', 'stress'];

export function buildPlan(p: Params): Step[] {
  const steps: Step[] = [];
  for (const category of ORDER) {
    if (!p.categories.includes(category)) continue;
    steps.push({
      name: category,
      category,
      fixture: fixtureOf(category, p),
      tests: testsOf(category).map((t) => t.id),
      timeoutMs: timeoutOf(category, p),
    });
  }
  return steps;
}

function fixtureOf(c: Category, p: Params): Step['fixture'] {
  switch (c) {
    case 'distributed':
      return { poolSizes: [p.agents.poolSize, p.agents.poolSize + p.agents.spawnBatch], gpu: false, faults: ['kill-agent'] };
    case 'gpu':
      return { poolSizes: [], gpu: true, faults: ['backend-unavailable'] };
    case 'monitoring':
      return { poolSizes: [3], gpu: false, faults: ['threshold-breach'] };
    case 'scalability':
      return { poolSizes: [1, ...p.agents.steps], gpu: false, faults: [] };
    case 'integration':
      return { poolSizes: [Math.max(3, p.integration.workflowSteps)], gpu: false, faults: [] };
    case 'stress':
      return { poolSizes: [p.stress.sustainedAgents, p.stress.spikeFrom, p.stress.spikeTo], gpu: false, faults: ['overload'] };
  }
}

function timeoutOf(c: Category, p: Params): number {
  const base = 180_000;
  switch (c) {
    case 'scalability':
      return base + p.agents.steps.length * (p.agents.stepSeconds * 2_000 + 60_000);
    case 'stress':
      return base + p.stress.sustainedMs * 1.5 + 120_000;
    case 'gpu':
      // 2.5 may extend an inconclusive trend fit to 3× its duration (bench/gpu/sustained.ts).
      return base + p.gpu.sustainedSeconds * 4_000;
    case 'integration':
      // 5.1's and 5.2's workflows, each allowed 15 s (a hand-off slower than that is a finding to
      // report, not a step to time out: slow-handoff's default makes a workflow take 12 s).
      return base + (Math.max(p.trials * 4, 10) + p.trials) * 15_000;
    default:
      return base + p.agents.poolSize * 200;
  }
}
