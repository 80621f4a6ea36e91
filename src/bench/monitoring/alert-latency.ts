/**
 * Test 3.4, alert latency (p50, ms): `PUT /v1/faults {breach:{healthScore:0.1}}` on a probe agent
 * until the dashboard's alert evaluator raises `AgentUnhealthy` for that agent, on the runner's
 * clock; the fault is cleared and the alert must resolve between trials.
 *
 * Its waits, held by plan/deadlines.ts for the step's deadline: a breach becomes an alert within
 * ALERT_DEADLINE_MS (6x the default target), a raised one reaches the subscriber within
 * ALERT_DELIVERY_WAIT_MS, a cleared one resolves within ALERT_RESOLVE_DEADLINE_MS.
 */
import type { AgentClient } from '../../agent/client.ts';
import type { Faults } from '../../agent/types.ts';
import type { Measurement } from '../../api/schema.ts';
import { errorMessage } from '../../errors.ts';
import { ALERT_DEADLINE_MS, ALERT_DELIVERY_WAIT_MS, ALERT_RESOLVE_DEADLINE_MS } from '../../plan/deadlines.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { median, round } from '../../stats.ts';
import { checkAbort, failed, measured } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { subscribeDashboard, type Dashboard } from './dashboard.ts';
import { deferred, now, waitUntil } from './wait.ts';

/** The health score a breach sets, and the rule's threshold below which the alert fires. */
export const BREACH_HEALTH_SCORE = 0.1;
export const ALERT_THRESHOLD = 0.5;

/** Trials without an alert after which the test stops: the failure is shown, the rest would only wait. */
const MAX_MISSED = 2;

/** The agent's active faults other than a breach (`GET /v1/faults`; none when it does not answer 200). */
async function otherFaults(client: AgentClient, url: string): Promise<Faults> {
  const r = await client.request<Faults>('GET', url, '/v1/faults').catch(() => null);
  if (!r || r.status !== 200 || typeof r.body !== 'object' || r.body === null) return {};
  const { breach: _breach, loseAccepted: _lose, ...rest } = r.body;
  return rest;
}

/** Runs 3.4 on the probe agents (one breach per trial, round robin). */
export async function measureAlertLatency(ctx: BenchContext, client: AgentClient, dash: Dashboard, probes: AgentHandle[]): Promise<Measurement> {
  const trials = ctx.params.trials;
  const lat: number[] = [];
  const delivered: number[] = [];
  const problems: string[] = [];
  const received = new Map<string, number>();
  const sub = await subscribeDashboard(dash.url, (m, recv) => {
    if (m.type === 'alert' && m.alert.state === 'firing' && !received.has(m.alert.id)) received.set(m.alert.id, recv);
  });
  try {
    const pre = dash.evaluator.active();
    if (pre.length > 0) problems.push(`alerts firing before any breach: ${pre.map((a) => a.id).join(', ')}`);
    let missed = 0;
    let run = 0;
    for (let t = 0; t < trials && missed < MAX_MISSED; t++) {
      checkAbort(ctx.signal);
      run++;
      const a = probes[t % probes.length]!;
      const id = `AgentUnhealthy/${a.id}`;
      if (dash.evaluator.active().some((x) => x.id === id)) {
        problems.push(`trial ${t + 1}: alert for ${a.id} still firing before the breach`);
        continue;
      }
      received.delete(id);
      const raised = deferred<number>(ALERT_DEADLINE_MS, `alert for ${a.id}`);
      const onAlert = (al: { id: string; state: string; raisedAtMono: number }): void => {
        if (al.id === id && al.state === 'firing') raised.resolve(al.raisedAtMono);
      };
      dash.on('alert', onAlert);
      // Faults already set on the agent (a latency fault, say) stay as they are around the breach.
      const others = await otherFaults(client, a.url);
      const t0 = now();
      try {
        const r = await client.putFaults(a.url, { ...others, breach: { healthScore: BREACH_HEALTH_SCORE } });
        if (r.status !== 200) throw new Error(`PUT ${a.url}/v1/faults answered ${r.status}: ${JSON.stringify(r.body)}`);
        const at = await raised.promise;
        lat.push(at - t0);
        if (await waitUntil(() => received.has(id), ALERT_DELIVERY_WAIT_MS, ctx.signal, 5)) delivered.push(received.get(id)! - t0);
      } catch (e) {
        missed++;
        problems.push(`trial ${t + 1} (${a.id}): ${errorMessage(e)}`);
      } finally {
        dash.off('alert', onAlert);
      }
      // Clear the breach; the agent reports its health back and the alert must resolve.
      const cleared = Object.keys(others).length ? await client.putFaults(a.url, others) : await client.clearFaults(a.url);
      if (cleared.status !== 200) problems.push(`clearing the breach on ${a.url} answered ${cleared.status}`);
      const resolved = () => !dash.evaluator.active().some((x) => x.id === id);
      if (!(await waitUntil(resolved, ALERT_RESOLVE_DEADLINE_MS, ctx.signal, 5))) {
        problems.push(`trial ${t + 1}: the alert for ${a.id} did not resolve after the fault was cleared`);
        await client.putFaults(a.url, { ...others, breach: { healthScore: 1 } });
        await waitUntil(resolved, ALERT_RESOLVE_DEADLINE_MS, ctx.signal, 5);
        if (Object.keys(others).length) await client.putFaults(a.url, others);
        else await client.clearFaults(a.url);
      }
    }
    const details = {
      method: 'PUT /v1/faults {breach:{healthScore:0.1}} until the dashboard evaluator raises AgentUnhealthy (health < 0.5), one clock',
      rule: { metric: 'swarmbench_agent_health_score', op: '<', threshold: ALERT_THRESHOLD },
      trials: run,
      ...(run < trials ? { stoppedAfter: `${missed} trials without an alert` } : {}),
      alertDeadlineMs: ALERT_DEADLINE_MS,
      raised: lat.length,
      deliveredToSubscriberP50Ms: delivered.length ? round(median(delivered), 3) : null,
      problems,
    };
    if (lat.length === 0) return failed('3.4', `no alert raised in ${run} trials: ${problems.join('; ') || 'unknown'}`, details);
    const fail = lat.length < run || problems.length > 0 ? `${run - lat.length} of ${run} trials without an alert; ${problems.join('; ')}` : undefined;
    return measured('3.4', lat, median(lat), { sampleUnit: 'alerts', details, ...(fail ? { fail } : {}) });
  } finally {
    sub.close();
  }
}
