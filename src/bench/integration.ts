/**
 * Category 5, integration: workflows across agents, and cleanup.
 *
 * - 5.1 End-to-end workflow: a workflow of `integration.workflowSteps` steps entered at one
 *   agent, each step run by another agent (the agents chain the hops), output checked against
 *   an independent computation here; p50 of the end-to-end latency over trials. A wrong output
 *   or a workflow that touched fewer than two agents fails the test.
 * - 5.2 Concurrent workflows: W workflows at once (entered round robin), all outputs checked;
 *   the wall time of the whole batch, max over trials.
 * - 5.3 Resource cleanup: agent host memory (RSS) before the workloads and after them, once the
 *   agents have had a moment to collect garbage, max growth per host process in MB; then the pool
 *   is closed and every process it started must be gone and every agent port closed (a leftover
 *   fails the test: on Kubernetes the same test checks that no object of the run is left). A port
 *   that accepts but no longer answers as its agent (`GET /v1/info` with another id, or no answer)
 *   was taken by another process after the agent's ended: counted in `portsTakenByOthers`, not
 *   failed.
 *
 * Its bounds (the client's timeout per workflow, 5.3's pause, wait for the processes to end and
 * port probe timeout) are held by plan/deadlines.ts, which counts them in the step's deadline.
 */
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { AgentClient } from '../agent/client.ts';
import type { WorkflowResult, WorkflowStep } from '../agent/types.ts';
import { CLEANUP_EXIT_WAIT_MS, CLEANUP_PAUSE_MS, PORT_PROBE_TIMEOUT_MS, WORKFLOW_TIMEOUT_MS } from '../plan/deadlines.ts';
import { describe } from '../stats.ts';
import type { BenchContext } from './types.ts';
import type { Measurement } from '../api/schema.ts';
import { checkAbort, elapsed, sameProcess } from './measure.ts';

const OPS: WorkflowStep['op'][] = ['upper', 'reverse', 'sha256', 'append'];

/** The expected output, computed here independently of the agents' implementation. */
export function expectedOutput(input: string, steps: readonly WorkflowStep[]): string {
  let v = input;
  for (const s of steps) {
    if (s.op === 'upper') v = v.toUpperCase();
    else if (s.op === 'reverse') v = [...v].reverse().join('');
    else if (s.op === 'sha256') v = createHash('sha256').update(v, 'utf8').digest('hex');
    else v = v + (s.arg ?? '');
  }
  return v;
}

export function workflowFor(index: number, steps: number): { input: string; steps: WorkflowStep[] } {
  return {
    input: `workflow-${index}-input`,
    steps: Array.from({ length: steps }, (_, i) => {
      const op = OPS[(index + i) % OPS.length]!;
      return op === 'append' ? { op, arg: `-s${i}` } : { op };
    }),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port) });
    // A deleted pod's address may drop packets rather than refuse them: no answer in 2 s is closed.
    s.setTimeout(PORT_PROBE_TIMEOUT_MS, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function run(ctx: BenchContext): Promise<Measurement[]> {
  const p = ctx.params;
  const size = Math.max(3, p.integration.workflowSteps);
  const client = new AgentClient({ maxSockets: 64, timeoutMs: WORKFLOW_TIMEOUT_MS });
  const pool = await ctx.platform.createPool({
    name: 'integ',
    size: 0,
    capacity: p.agents.capacity,
    agentsPerProcess: p.agents.agentsPerProcess,
    gossipIntervalMs: p.agents.gossipIntervalMs,
    failureTimeoutMs: p.agents.failureTimeoutMs,
    defects: p.agents.defects,
  });
  let closed = false;
  try {
    await pool.scaleTo(size);
    const agents = pool.agents();
    const before = await pool.stats();
    let seq = 0;
    const runOne = async (entry: string): Promise<{ ms: number; ok: boolean; agents: number; error?: string }> => {
      const i = seq++;
      const wf = workflowFor(i, p.integration.workflowSteps);
      const t0 = performance.now();
      const r = await client.workflow(entry, { id: `wf-${Date.now().toString(36)}-${i}`, ...wf });
      const ms = elapsed(t0);
      if (r.status !== 200 || !('output' in r.body)) return { ms, ok: false, agents: 0, error: `answered ${r.status}` };
      const body = r.body as WorkflowResult;
      const distinct = new Set(body.hops.map((h) => h.agent)).size;
      const ok = body.output === expectedOutput(wf.input, wf.steps) && body.hops.length === wf.steps.length;
      return { ms, ok, agents: distinct, ...(ok ? {} : { error: 'wrong output' }) };
    };

    // 5.1
    const t51 = performance.now();
    const latencies: number[] = [];
    let wrong = 0;
    let minAgents = Infinity;
    const trials = Math.max(p.trials * 4, 10);
    for (let t = 0; t < trials; t++) {
      checkAbort(ctx.signal);
      ctx.progress('5.1 end-to-end workflow', `${t + 1}/${trials}`);
      const r = await runOne(agents[t % agents.length]!.url);
      latencies.push(r.ms);
      if (!r.ok) wrong++;
      minAgents = Math.min(minAgents, r.agents);
    }
    const d1 = describe(latencies);
    const m51: Measurement = {
      id: '5.1',
      value: d1.p50,
      samples: latencies.length,
      sampleUnit: 'workflows',
      raw: latencies,
      distribution: d1,
      durationMs: elapsed(t51),
      details: { steps: p.integration.workflowSteps, agents: agents.length, wrongOutputs: wrong, minDistinctAgentsPerWorkflow: minAgents },
      ...(wrong > 0
        ? { fail: `${wrong} of ${trials} workflows returned a wrong output` }
        : minAgents < 2
          ? { fail: 'a workflow ran on a single agent: it did not cross agents' }
          : {}),
    };

    ctx.finished?.(m51);

    // 5.2
    const t52 = performance.now();
    const w = p.integration.concurrentWorkflows;
    const batches: number[] = [];
    let wrong2 = 0;
    const rounds = p.trials;
    for (let t = 0; t < rounds; t++) {
      checkAbort(ctx.signal);
      ctx.progress('5.2 concurrent workflows', `round ${t + 1}/${rounds}: ${w} at once`);
      const t0 = performance.now();
      const res = await Promise.all(Array.from({ length: w }, (_, j) => runOne(agents[j % agents.length]!.url)));
      batches.push(elapsed(t0));
      wrong2 += res.filter((r) => !r.ok).length;
    }
    const d2 = describe(batches);
    const m52: Measurement = {
      id: '5.2',
      value: d2.max,
      samples: batches.length,
      sampleUnit: 'rounds',
      raw: batches,
      distribution: d2,
      durationMs: elapsed(t52),
      details: { workflowsPerRound: w, rounds, wrongOutputs: wrong2 },
      ...(wrong2 > 0 ? { fail: `${wrong2} of ${w * rounds} concurrent workflows returned a wrong output` } : {}),
    };

    ctx.finished?.(m52);

    // 5.3
    ctx.progress('5.3 resource cleanup');
    const t53 = performance.now();
    // Give the agents' event loops a moment to release what the workload held, then compare.
    await new Promise((r) => setTimeout(r, CLEANUP_PAUSE_MS));
    const after = await pool.stats();
    // Host processes are matched by pid, or where the platform knows none (pid 0) by their key:
    // a pod's uid, an external agent's URL.
    const growth = before.map((b) => {
      const a = sameProcess(after, b);
      return a ? (a.rssBytes - b.rssBytes) / 2 ** 20 : Number.NaN;
    });
    const pids = [...new Set(agents.map((a) => a.pid))].filter((pid) => pid > 0);
    const ids = new Map(agents.map((a) => [a.url, a.id]));
    await pool.close();
    closed = true;
    const deadline = performance.now() + CLEANUP_EXIT_WAIT_MS;
    let leftPids = pids.filter(alive);
    while (leftPids.length > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      leftPids = pids.filter(alive);
    }
    // A port that still accepts is a leftover only when it still answers as its agent: once the
    // agent's process has ended, another process may take the freed port (ephemeral ports are
    // reused on a busy machine), and that one is not the system's. Those are counted apart.
    const stillOpen = (await Promise.all([...ids.keys()].map(async (u) => ((await portOpen(u)) ? u : null)))).filter((u): u is string => u !== null);
    const open: string[] = [];
    const takenByOthers: string[] = [];
    for (const u of stillOpen) {
      const r = await client.info(u).catch(() => null);
      if (r?.status === 200 && (r.body as { id?: unknown }).id === ids.get(u)) open.push(u);
      else takenByOthers.push(u);
    }
    const valid = growth.filter((g) => Number.isFinite(g));
    const problems = [
      leftPids.length ? `${leftPids.length} agent process(es) still running after cleanup` : '',
      open.length ? `${open.length} agent port(s) still open after cleanup, still answering as their agents` : '',
      valid.length === 0 ? 'no memory reading' : '',
    ].filter(Boolean);
    const m53: Measurement = {
      id: '5.3',
      value: valid.length ? Math.max(...valid) : null,
      samples: valid.length,
      sampleUnit: 'agent host processes',
      raw: valid,
      durationMs: elapsed(t53),
      details: {
        processes: before.length,
        rssBeforeMB: before.map((b) => Math.round(b.rssBytes / 2 ** 20)),
        rssAfterMB: after.map((b) => Math.round(b.rssBytes / 2 ** 20)),
        leftoverProcesses: leftPids.length,
        leftoverPorts: open.length,
        portsTakenByOthers: takenByOthers.length,
      },
      ...(problems.length ? { fail: problems.join('; ') } : {}),
    };
    return [m51, m52, m53];
  } finally {
    if (!closed) await pool.close();
    client.close();
  }
}
