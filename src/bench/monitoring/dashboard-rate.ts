/**
 * Test 3.3, dashboard update rate (updates/s): a WebSocket subscriber of the live dashboard counts,
 * over `observeSeconds`, the updates that carry live data (every agent's stream open with a recent
 * event) while a light task load runs; the dashboard's task counter must account for every task
 * the load completed.
 */
import type { AgentClient } from '../../agent/client.ts';
import type { Measurement } from '../../api/schema.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { median, round } from '../../stats.ts';
import { checkAbort, failed, measured } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { subscribeDashboard, type Dashboard, type DashboardUpdate } from './dashboard.ts';
import { EVENT_DEADLINE_MS, now, waitUntil } from './wait.ts';

/** Runs 3.3 against the category's dashboard, with a light round-robin task load on `agents`. */
export async function measureDashboardRate(
  ctx: BenchContext,
  client: AgentClient,
  dash: Dashboard,
  agents: AgentHandle[],
): Promise<Measurement> {
  const observeMs = ctx.params.monitoring.observeSeconds * 1000;
  const expected = agents.length;
  const got: { u: DashboardUpdate; recv: number }[] = [];
  const sub = await subscribeDashboard(dash.url, (m, recv) => {
    if (m.type === 'update') got.push({ u: m, recv });
  });
  let ok = 0;
  let notOk = 0;
  try {
    // A first update shows the subscription works and gives the task counter to start from.
    if (!(await waitUntil(() => got.length > 0, EVENT_DEADLINE_MS, ctx.signal))) throw new Error('the dashboard sent nothing to a new subscriber');
    const tasksBefore = dash.snapshot('tick', false).tasks.total;
    const t0 = now();
    const t1 = t0 + observeMs;
    // Light load so the dashboard has changing data: one short I/O task at a time, round robin.
    let i = 0;
    const load = (async () => {
      while (now() < t1 && !ctx.signal.aborted) {
        const a = agents[i % agents.length]!;
        i++;
        const r = await client.task(a.url, { id: `mon-dash-${i}`, kind: 'io', ioMs: 10 });
        if (r.status === 200) ok++;
        else notOk++;
      }
    })();
    await waitUntil(() => now() >= t1, observeMs + 1000, ctx.signal, 50);
    await load;
    checkAbort(ctx.signal);
    const window = got.filter((g) => g.recv >= t0 && g.recv < t1);
    const isLive = (u: DashboardUpdate): boolean => u.agents.total === expected && u.agents.live === expected;
    const live = window.filter((g) => isLive(g.u));
    // Per-second buckets of live updates: the distribution of the rate.
    const buckets = Math.max(1, Math.floor(observeMs / 1000));
    const perSec = new Array<number>(buckets).fill(0);
    for (const g of live) {
      const b = Math.floor((g.recv - t0) / 1000);
      if (b < buckets) perSec[b]!++;
    }
    const rate = live.length / (observeMs / 1000);
    const gaps = window.slice(1).map((g, k) => g.recv - window[k]!.recv);
    // Every task the load completed must reach the dashboard's counter (events can trail the answers a little).
    const counted = await waitUntil(() => dash.snapshot('tick', false).tasks.total - tasksBefore >= ok, 3000, ctx.signal);
    const seen = dash.snapshot('tick', false).tasks.total - tasksBefore;
    const withTasks = window.filter((g) => g.u.tasks.perSec > 0).length;
    const details = {
      updates: window.length,
      liveUpdates: live.length,
      allUpdatesPerSec: round(window.length / (observeMs / 1000), 3),
      cadenceMs: dash.updateIntervalMs,
      gapP50Ms: gaps.length ? round(median(gaps), 2) : null,
      gapMaxMs: gaps.length ? round(Math.max(...gaps), 2) : null,
      observeSeconds: observeMs / 1000,
      agents: expected,
      loadTasksCompleted: ok,
      loadTasksNotCompleted: notOk,
      dashboardTasksCounted: seen,
      updatesShowingTaskRate: withTasks,
      lastUpdate: window.length ? { agents: window.at(-1)!.u.agents, tasks: window.at(-1)!.u.tasks } : null,
      droppedSends: dash.dropped,
    };
    if (live.length === 0) return failed('3.3', `no update carried live data (${window.length} updates, none with all ${expected} agents live)`, details);
    let fail: string | undefined;
    if (ok === 0) fail = 'the task load completed no task, so the dashboard had nothing live to show';
    else if (!counted) fail = `the dashboard counted ${seen} task events but the load completed ${ok} tasks`;
    else if (withTasks === 0) fail = 'no update showed a task rate while tasks ran';
    // Samples: the live updates counted (the distribution is over per-second buckets).
    return measured('3.3', perSec, rate, { samples: live.length, details, ...(fail ? { fail } : {}) });
  } finally {
    sub.close();
  }
}
