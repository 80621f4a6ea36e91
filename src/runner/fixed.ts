/**
 * Fixed agents (`swarmbench run --agent-url`): the agents the user started, which SwarmBench
 * cannot start, stop or kill. A test that needs that is Skipped with the reason, never Passed and
 * never Failed on the system's account:
 *
 * - always: the tests in `FIXED_AGENT_SKIPS`, whose figure is the platform's work on the pool
 *   (starting, growing, killing, cleaning up), so fixed agents would make it meaningless even
 *   when it could be taken (1.1 would time an adoption of agents already formed);
 * - when asked: any test whose pool the fixed agents could not be (another size than the number
 *   of URLs, two pools at once, a kill): the pool throws `FixedAgentsError`, and the failure that
 *   carries its message (`FIXED_AGENTS_MARK`), or the category's error that does, becomes Skipped.
 *
 * The other tests run on the fixed agents as they are (docs/agent-contract.md, "Running your own
 * agent locally").
 */
import type { Measurement } from '../api/schema.ts';
import { FIXED_AGENTS_MARK } from '../platform/types.ts';

const SCALING = 'scaling efficiency compares a pool of 1 agent with a pool of each step size, which fixed agents cannot be';

/** Tests Skipped with fixed agents whatever the pool size, and why. */
export const FIXED_AGENT_SKIPS: Readonly<Record<string, string>> = {
  '1.1': 'cluster formation times SwarmBench starting N agents until every view holds them; fixed agents were started by the user, so there is no formation to time',
  '1.2': 'spawn latency grows the pool by new agents; SwarmBench cannot start agents beside fixed ones',
  '1.6': 'failure recovery kills an agent and times its replacement; SwarmBench cannot kill or replace fixed agents',
  '4.1': SCALING,
  '4.2': SCALING,
  '4.3': SCALING,
  '4.4': SCALING,
  '4.5': SCALING,
  '5.3': 'resource cleanup checks that stopping the pool leaves no process or port behind; SwarmBench does not stop fixed agents',
  '6.2': 'the spike test grows the pool under load (stress.spikeFrom to stress.spikeTo); fixed agents cannot grow',
};

/** The refusal a text carries (from the mark on), or null. */
function refusal(text: string | undefined): string | null {
  if (!text) return null;
  const i = text.indexOf(FIXED_AGENTS_MARK);
  return i < 0 ? null : text.slice(i).trim();
}

function skip(id: string, reason: string, durationMs?: number): Measurement {
  return { id, value: null, samples: 0, skip: `Skipped with fixed agents (--agent-url): ${reason}`, ...(durationMs !== undefined ? { durationMs } : {}) };
}

/**
 * A step's measurements on fixed agents, with what fixed agents cannot show Skipped. `tests` are
 * the step's test ids; `error` the step's own error, if it had one. The error is dropped when it
 * was a refusal (every test it left without a measurement is then Skipped with it).
 */
export function applyFixedAgents(
  measurements: readonly Measurement[],
  tests: readonly string[],
  error: string | undefined,
): { measurements: Measurement[]; error: string | undefined } {
  const byId = new Map(measurements.map((m) => [m.id, m]));
  const stepRefusal = refusal(error);
  const out: Measurement[] = [];
  for (const id of tests) {
    const m = byId.get(id);
    const always = FIXED_AGENT_SKIPS[id];
    if (always) out.push(skip(id, always, m?.durationMs));
    else if (m) {
      const r = refusal(m.fail);
      out.push(r ? skip(id, r, m.durationMs) : m);
    } else if (stepRefusal) out.push(skip(id, stepRefusal));
  }
  return { measurements: out, error: stepRefusal ? undefined : error };
}
