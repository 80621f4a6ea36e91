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
import { stepDeadline } from './deadlines.ts';
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
  /**
   * Upper bound for the step's duration (ms): the runner Job's activeDeadlineSeconds, the local
   * executor's timeout. `stepDeadline(category, params).totalMs` (deadlines.ts: the sum of the
   * tests' worst cases, the pools, the runner and a margin; its `parts` say what each covers).
   */
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
      timeoutMs: stepDeadline(category, p).totalMs,
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
      // bench/monitoring/index.ts: a pool of max(2, agents.poolSize), never grown.
      return { poolSizes: [Math.max(2, p.agents.poolSize)], gpu: false, faults: ['threshold-breach'] };
    case 'scalability':
      return { poolSizes: [1, ...p.agents.steps], gpu: false, faults: [] };
    case 'integration':
      return { poolSizes: [Math.max(3, p.integration.workflowSteps)], gpu: false, faults: [] };
    case 'stress':
      return { poolSizes: [p.stress.sustainedAgents, p.stress.spikeFrom, p.stress.spikeTo], gpu: false, faults: ['overload'] };
  }
}
