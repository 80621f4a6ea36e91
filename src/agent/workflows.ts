/**
 * Workflows: `POST /v1/workflows` runs a chain of steps across the cluster (step i on the i-th
 * alive member after this one, or on the next ones if that fails) and reports each hop;
 * `POST /v1/cluster/step` is one step run here for a peer. The step operations are in `work.ts`.
 * A hop's time (`hops[].ms`) runs from handing the step over to its answer, so it includes the
 * `slow-handoff` defect's wait (and the `slow-peers` one, in the client). The `memory-leak`
 * defect keeps its buffer for every step run here, as for every task.
 *
 * Bounded (src/agent/limits.ts): at most MAX_WORKFLOW_STEPS steps (413), an id of 1..256
 * characters, and inputs, args and the value between steps of at most MAX_WORKFLOW_VALUE_CHARS
 * characters (413 naming the field; a chain whose value grows past it stops with 413 at that
 * step), so a workflow's memory and its number of hops stay bounded.
 */
import type { Agent } from './agent.ts';
import { AgentClientError } from './client.ts';
import type { Outcome } from './http.ts';
import { LimitExceeded, MAX_WORKFLOW_ID_CHARS, MAX_WORKFLOW_STEPS, MAX_WORKFLOW_VALUE_CHARS } from './limits.ts';
import type { WorkflowOp, WorkflowStep } from './types.ts';
import { sleep } from './util.ts';
import { applyStep, WORKFLOW_OPS } from './work.ts';

/** `POST /v1/cluster/step`: one workflow step, run here. */
export function handleStep(agent: Agent, body: unknown): Outcome {
  const b = body as { op?: unknown; arg?: unknown; input?: unknown };
  if (!WORKFLOW_OPS.includes(b.op as WorkflowOp) || typeof b.input !== 'string') {
    return { status: 400, body: { error: 'op and input required' } };
  }
  if (b.arg !== undefined && typeof b.arg !== 'string') return { status: 400, body: { error: 'arg must be a string' } };
  const big = tooLong('input', b.input) ?? tooLong('arg', b.arg);
  if (big) return big;
  const output = applyStep(b.op as WorkflowOp, b.input, b.arg);
  if (agent.defects.leakBytesPerTask > 0) agent.defects.leak(); // the memory-leak defect: a step is work done too
  return { status: 200, body: { agent: agent.id, output } };
}

/** 413 when a workflow string is longer than MAX_WORKFLOW_VALUE_CHARS; null otherwise. */
function tooLong(field: string, v: unknown): Outcome | null {
  if (typeof v !== 'string' || v.length <= MAX_WORKFLOW_VALUE_CHARS) return null;
  return new LimitExceeded(413, 'workflowValueChars', v.length, MAX_WORKFLOW_VALUE_CHARS, `${field} length in characters`).outcome();
}

/** `POST /v1/workflows`: the whole chain, coordinated by this agent. */
export async function handleWorkflow(agent: Agent, body: unknown): Promise<Outcome> {
  const b = body as { id?: unknown; input?: unknown; steps?: unknown };
  if (Array.isArray(b.steps) && b.steps.length > MAX_WORKFLOW_STEPS) {
    return new LimitExceeded(413, 'workflowSteps', b.steps.length, MAX_WORKFLOW_STEPS, 'steps in one workflow').outcome();
  }
  if (typeof b.id !== 'string' || b.id.length === 0 || b.id.length > MAX_WORKFLOW_ID_CHARS || typeof b.input !== 'string' || !Array.isArray(b.steps)) {
    return { status: 400, body: { error: `id (1..${MAX_WORKFLOW_ID_CHARS} chars), input and steps (<= ${MAX_WORKFLOW_STEPS}) required` } };
  }
  const bigInput = tooLong('input', b.input);
  if (bigInput) return bigInput;
  const steps: WorkflowStep[] = [];
  for (const s of b.steps as unknown[]) {
    const st = s as { op?: unknown; arg?: unknown };
    if (typeof s !== 'object' || s === null || !WORKFLOW_OPS.includes(st.op as WorkflowOp)) {
      return { status: 400, body: { error: `steps[].op must be one of ${WORKFLOW_OPS.join(', ')}` } };
    }
    if (st.arg !== undefined && typeof st.arg !== 'string') return { status: 400, body: { error: 'steps[].arg must be a string' } };
    const bigArg = tooLong('steps[].arg', st.arg);
    if (bigArg) return bigArg;
    steps.push(st.arg === undefined ? { op: st.op as WorkflowOp } : { op: st.op as WorkflowOp, arg: st.arg });
  }
  const alive = agent.membership.aliveIds();
  const self = Math.max(0, alive.indexOf(agent.id));
  const hops: { step: number; agent: string; ms: number }[] = [];
  let value = b.input;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    let done = false;
    let lastErr = '';
    // Step i runs on the i-th member after this one; if it fails, on the next ones.
    for (let k = 0; k < alive.length && !done; k++) {
      const agentId = alive[(self + 1 + i + k) % alive.length]!;
      const t0 = performance.now();
      if (agentId === agent.id) {
        value = applyStep(step.op, value, step.arg);
        if (agent.defects.leakBytesPerTask > 0) agent.defects.leak();
        done = true;
      } else {
        const url = agent.membership.urlOf(agentId);
        if (!url) continue;
        try {
          // The `slow-handoff` defect: the hop reaches the next agent this much later.
          if (agent.defects.handoffDelayMs > 0) await sleep(agent.defects.handoffDelayMs);
          const r = await agent.data.request<{ output?: unknown }>('POST', url, '/v1/cluster/step', { ...step, input: value }, 10_000);
          if (r.status === 200 && typeof r.body.output === 'string') {
            value = r.body.output;
            done = true;
          } else lastErr = `${agentId}: HTTP ${r.status}`;
        } catch (err) {
          lastErr = `${agentId}: ${err instanceof AgentClientError ? err.code : String(err)}`;
        }
      }
      if (done) hops.push({ step: i, agent: agentId, ms: performance.now() - t0 });
    }
    if (!done) return { status: 502, body: { error: `step ${i} failed: ${lastErr}`, id: b.id, step: i } };
    const grown = tooLong(`the value after step ${i}`, value);
    if (grown) return grown;
  }
  return { status: 200, body: { id: b.id, output: value, hops } };
}
