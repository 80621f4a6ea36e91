/**
 * Test 3.3, dashboard update rate (updates/s): the highest rate of updates that the dashboard path
 * (the agents' event streams → the live dashboard → a WebSocket subscriber of the dashboard)
 * delivers completely and in time, raised until it falls behind (ladder.ts).
 *
 * An update is one change of the system that the dashboard must show: here a `mark` event, which
 * an agent emits on `POST /v1/events/mark {token}`. At each step the runner triggers marks at the
 * step's rate (open loop, paced, round robin over the pool's agents, at most MAX_IN_FLIGHT
 * requests at once) for a step's length (ladder.ts: 1 s quick, 5 s full) and at least
 * MIN_UPDATES marks, and a subscriber of the
 * dashboard records when each token first arrives in an update (the dashboard pushes every tick
 * the marks it received since the previous one).
 *
 * - **Completely**: every mark the agents accepted (answered 200) reaches the subscriber. A mark
 *   still missing LATE_GRACE_MS after the in-time deadline is lost; a step with a lost update
 *   ends the ladder, since a path that loses updates is not complete at any rate.
 * - **In time**: at least IN_TIME_FRACTION of the step's marks reach the subscriber within
 *   IN_TIME_MS of the runner sending their trigger (one clock, the runner's), every trigger is
 *   accepted, and every update received in the step was live (every agent's stream open with an
 *   event in the last 2.5 s).
 * - **Driven**: the runner kept the step's pace (its last trigger at most PACE_LAG_MS late; a
 *   step ABANDON_LAG_MS behind is given up). A step that was complete and in time but could not
 *   be driven at its rate, or that ran with the runner saturated, is the harness's ceiling.
 *
 * The value is the rate delivered in time at the highest step that met both (updates/s over the
 * step's send span); its samples are that step's updates. The step that fell behind, and why, is
 * in `details.fellBehind`; a ladder that ended at the harness's ceiling (the runner saturated, or
 * the ladder's top) says so in `details.lowerBound`, and the value is then a lower bound.
 */
import { AgentClient } from '../../agent/client.ts';
import type { Measurement } from '../../api/schema.ts';
import { DASHBOARD_IN_TIME_MS, DASHBOARD_LATE_GRACE_MS, DASHBOARD_MIN_RATE, DASHBOARD_MIN_UPDATES } from '../../plan/deadlines.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { percentile, round } from '../../stats.ts';
import { failed } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { subscribeDashboard, type Dashboard, type DashboardUpdate } from './dashboard.ts';
import { climb, RUNNER_SATURATED, runnerLoad, saturated, stepLengthMs, type RunnerLoad, type StepOutcome } from './ladder.ts';
import { EVENT_DEADLINE_MS, now, waitUntil } from './wait.ts';

/**
 * The ladder: the first rate (updates/s), its top (the harness's ceiling) and its floor. The floor,
 * MIN_UPDATES, IN_TIME_MS and LATE_GRACE_MS are held by plan/deadlines.ts, for the step's deadline.
 */
export const START_RATE = 16;
export const MAX_RATE = 16_384;
const MIN_RATE = DASHBOARD_MIN_RATE;
/** A step sends at least this many marks (at low rates it lasts longer than its length). */
const MIN_UPDATES = DASHBOARD_MIN_UPDATES;
/** An update is in time when the subscriber has it this soon after its trigger was sent. */
export const IN_TIME_MS = DASHBOARD_IN_TIME_MS;
/** Share of a step's updates that must be in time. */
const IN_TIME_FRACTION = 0.99;
/** After the in-time deadline, how long a missing update is waited for before it counts as lost. */
const LATE_GRACE_MS = DASHBOARD_LATE_GRACE_MS;
/** Triggers in flight at most (the open-loop driver falls behind its pace beyond this). */
const MAX_IN_FLIGHT = 256;
/** The driver keeps pace when its last trigger goes out at most this late; it gives up the step past ABANDON_LAG_MS. */
const PACE_LAG_MS = 100;
const ABANDON_LAG_MS = 500;

interface Sent {
  at: number;
  agent: string;
  status?: number | string;
}

export interface RateStep extends StepOutcome {
  updates: number;
  /** Updates of the step never triggered: the driver gave up ABANDON_LAG_MS behind its pace. */
  unsent: number;
  accepted: number;
  notAccepted: number;
  delivered: number;
  inTime: number;
  late: number;
  lost: number;
  latency: { n: number; p50Ms: number | null; p95Ms: number | null; maxMs: number | null };
  /** How far the last trigger was sent behind its scheduled time (the driver's pace). */
  sendLagMs: number;
  /** Round trip of the trigger requests (p50). */
  triggerP50Ms: number | null;
  seqGaps: number;
  dashboardUpdates: number;
  notLiveUpdates: number;
  runner: RunnerLoad;
  durationMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function gaps(dash: Dashboard): number {
  return Object.values(dash.streamStats()).reduce((s, x) => s + x.seqGaps, 0);
}

/** Runs 3.3 against the category's dashboard, triggering marks on `agents`. */
export async function measureDashboardRate(ctx: BenchContext, dash: Dashboard, agents: AgentHandle[]): Promise<Measurement> {
  // Its own connections, enough for every trigger in flight to have one (no queueing in the client).
  const client = new AgentClient({ maxSockets: Math.ceil(MAX_IN_FLIGHT / Math.max(1, agents.length)), maxFreeSockets: 64, timeoutMs: 10_000 });
  const expected = agents.length;
  const stepMs = stepLengthMs(ctx.params.monitoring.observeSeconds);
  const arrived = new Map<string, number>();
  const updates: { recv: number; live: boolean }[] = [];
  const sub = await subscribeDashboard(dash.url, (m, recv) => {
    if (m.type !== 'update') return;
    const u: DashboardUpdate = m;
    updates.push({ recv, live: u.agents.total === expected && u.agents.live === expected });
    for (const k of u.marks ?? []) if (!arrived.has(k.token)) arrived.set(k.token, recv);
  });
  let stepNo = 0;
  try {
    if (!(await waitUntil(() => updates.length > 0, EVENT_DEADLINE_MS, ctx.signal))) throw new Error('the dashboard sent nothing to a new subscriber');

    const step = async (rate: number): Promise<RateStep> => {
      const n = stepNo++;
      const period = 1000 / rate;
      const count = Math.max(MIN_UPDATES, Math.round((rate * stepMs) / 1000));
      const sent = new Map<string, Sent>();
      const gaps0 = gaps(dash);
      const firstUpdate = updates.length;
      let inFlight = 0;
      const replies: Promise<void>[] = [];
      const replyMs: number[] = [];
      const load = runnerLoad();
      const t0 = now();
      let lastSent = t0;
      let i = 0;
      while (i < count) {
        if (ctx.signal.aborted) throw new Error('cancelled');
        const due = t0 + i * period;
        const t = now();
        // Already far behind its pace: the step has fallen behind, the rest would only add time.
        if (t - due > ABANDON_LAG_MS) break;
        if (t < due) {
          await sleep(Math.max(1, Math.floor(due - t)));
          continue;
        }
        if (inFlight >= MAX_IN_FLIGHT) {
          await sleep(1);
          continue;
        }
        const a = agents[i % agents.length]!;
        const token = `dash-${n}-${i}`;
        const s: Sent = { at: now(), agent: a.id };
        lastSent = s.at;
        sent.set(token, s);
        inFlight++;
        replies.push(
          client
            .mark(a.url, token)
            .then((r) => {
              s.status = r.status;
              replyMs.push(now() - s.at);
            })
            .catch((e: unknown) => void (s.status = e instanceof Error ? e.message.slice(0, 80) : 'error'))
            .finally(() => void inFlight--),
        );
        i++;
      }
      const runner = load();
      const unsent = count - i;
      await Promise.all(replies);
      const spanS = (lastSent - t0) / 1000 + period / 1000;
      const accepted = [...sent].filter(([, s]) => s.status === 200);
      const all = () => accepted.every(([tok]) => arrived.has(tok));
      // In time: by IN_TIME_MS after the last trigger; then a grace before a missing one counts as lost.
      await waitUntil(all, Math.max(0, lastSent + IN_TIME_MS - now()), ctx.signal, 10);
      if (!all()) await waitUntil(all, LATE_GRACE_MS, ctx.signal, 20);
      const lat: number[] = [];
      let lost = 0;
      for (const [tok, s] of accepted) {
        const at = arrived.get(tok);
        if (at === undefined) lost++;
        else lat.push(at - s.at);
      }
      const inTime = lat.filter((x) => x <= IN_TIME_MS).length;
      const sorted = [...lat].sort((x, y) => x - y);
      const stepUpdates = updates.slice(firstUpdate);
      const notLive = stepUpdates.filter((u) => !u.live).length;
      const notAccepted = sent.size - accepted.length;
      const sendLagMs = round(unsent > 0 ? now() - (t0 + (count - 1) * period) : lastSent - (t0 + (count - 1) * period), 1);
      const paceKept = unsent === 0 && sendLagMs <= PACE_LAG_MS;
      const seqGaps = gaps(dash) - gaps0;
      const inTimeOk = inTime >= IN_TIME_FRACTION * sent.size;
      const kept = notAccepted === 0 && lost === 0 && inTimeOk && paceKept && notLive === 0;
      const pace = `triggers fell ${sendLagMs} ms behind their pace (${MAX_IN_FLIGHT} in flight${unsent ? `; ${unsent} of ${count} not sent, the step given up ${ABANDON_LAG_MS} ms behind` : ''})`;
      const replySorted = [...replyMs].sort((x, y) => x - y);
      const out: RateStep = {
        level: rate,
        rate: round(inTime / spanS, 2),
        kept,
        updates: count,
        unsent,
        accepted: accepted.length,
        notAccepted,
        delivered: lat.length,
        inTime,
        late: lat.length - inTime,
        lost,
        latency: {
          n: lat.length,
          p50Ms: lat.length ? round(percentile(sorted, 50), 2) : null,
          // A p95 only with the samples it needs (20).
          p95Ms: lat.length >= 20 ? round(percentile(sorted, 95), 2) : null,
          maxMs: lat.length ? round(sorted.at(-1)!, 2) : null,
        },
        sendLagMs,
        triggerP50Ms: replySorted.length ? round(percentile(replySorted, 50), 2) : null,
        seqGaps,
        dashboardUpdates: stepUpdates.length,
        notLiveUpdates: notLive,
        runner,
        durationMs: Math.round(now() - t0),
      };
      if (!kept) {
        const firstBad = [...sent.values()].find((s) => s.status !== 200);
        if (lost > 0) {
          out.behind = 'lost';
          out.why = `${lost} of ${accepted.length} accepted updates never reached the subscriber (not within ${IN_TIME_MS + LATE_GRACE_MS} ms; ${seqGaps} sequence gaps on the agents' streams)`;
        } else if (runner.elu >= RUNNER_SATURATED) {
          out.behind = 'harness';
          out.why = saturated(runner);
        } else if (notAccepted === 0 && inTimeOk && notLive === 0) {
          // Everything sent arrived in time: the dashboard path kept up, the driving did not.
          out.behind = 'harness';
          out.why = `the runner could not trigger faster: ${pace} (triggers answered in p50 ${out.triggerP50Ms} ms); every update sent arrived in time`;
        } else {
          out.behind = 'late';
          const parts: string[] = [];
          if (notAccepted) parts.push(`${notAccepted} triggers not accepted (first: ${firstBad?.agent} ${String(firstBad?.status)})`);
          if (!inTimeOk) parts.push(`${sent.size - inTime} of ${sent.size} updates not within ${IN_TIME_MS} ms (max ${out.latency.maxMs} ms)`);
          if (!paceKept) parts.push(pace);
          if (notLive) parts.push(`${notLive} dashboard updates not live`);
          out.why = parts.join('; ');
        }
      }
      ctx.progress('monitoring', `3.3 ${rate} updates/s: ${kept ? 'kept' : `behind (${out.why})`}`);
      return out;
    };

    const r = await climb({ start: START_RATE, max: MAX_RATE, min: MIN_RATE, step, signal: ctx.signal });
    const steps = r.steps.map((s) => ({
      askedPerSec: s.level,
      deliveredInTimePerSec: s.rate,
      kept: s.kept,
      ...(s.behind ? { behind: s.behind, why: s.why } : {}),
      updates: s.updates,
      unsent: s.unsent,
      accepted: s.accepted,
      delivered: s.delivered,
      inTime: s.inTime,
      late: s.late,
      lost: s.lost,
      latency: s.latency,
      sendLagMs: s.sendLagMs,
      triggerP50Ms: s.triggerP50Ms,
      seqGaps: s.seqGaps,
      dashboardUpdates: s.dashboardUpdates,
      notLiveUpdates: s.notLiveUpdates,
      runner: s.runner,
      durationMs: s.durationMs,
    }));
    const details = {
      method:
        'marks triggered on the agents (POST /v1/events/mark, paced, round robin) at rates raised ×4 (then ×2 between) until the dashboard path falls behind; each must reach a dashboard subscriber',
      inTimeMs: IN_TIME_MS,
      inTimeFraction: IN_TIME_FRACTION,
      lostAfterMs: IN_TIME_MS + LATE_GRACE_MS,
      ladder: {
        startPerSec: START_RATE,
        maxPerSec: MAX_RATE,
        stepMs,
        minUpdates: MIN_UPDATES,
        maxInFlight: MAX_IN_FLIGHT,
        paceLagMs: PACE_LAG_MS,
        abandonLagMs: ABANDON_LAG_MS,
      },
      agents: expected,
      dashboardPushIntervalMs: dash.updateIntervalMs,
      steps,
      fellBehind: r.fellBehind ? { askedPerSec: r.fellBehind.level, behind: r.fellBehind.behind, why: r.fellBehind.why } : null,
      lowerBound: r.lowerBound,
      droppedSends: dash.dropped,
      marksDiscarded: dash.marksDiscarded,
    };
    const best = r.best;
    if (!best) {
      const f = r.fellBehind!;
      const why =
        f.behind === 'lost'
          ? `the dashboard path lost updates, so it delivers completely at no rate: at ${f.level} updates/s ${f.why}`
          : `the dashboard path fell behind at every rate tried, down to ${f.level} updates/s: ${f.why}`;
      return { ...failed('3.3', why, details), samples: f.updates, sampleUnit: 'updates' };
    }
    return { id: '3.3', value: best.rate, samples: best.updates, sampleUnit: 'updates', details };
  } finally {
    sub.close();
    client.close();
  }
}
