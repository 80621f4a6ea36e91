/**
 * Sizing the pool for test 3.5, metrics volume (samples/s), before the window starts. The 3.5
 * figure itself comes from the scrape source (`scrape.ts`).
 */
import type { AgentClient } from '../../agent/client.ts';
import type { Pool } from '../../platform/types.ts';
import { round } from '../../stats.ts';
import type { BenchContext } from '../types.ts';
import { countExpositionSamples } from './exposition.ts';

/**
 * 3.5 is a throughput target: the pool must offer at least the target volume, or the test could
 * only fail for want of load. The pool grows until agents x samples per scrape / interval reaches
 * the target with this headroom, up to MAX_VOLUME_AGENTS.
 */
const VOLUME_HEADROOM = 1.25;
export const MAX_VOLUME_AGENTS = 256;

export interface VolumeSizing {
  samplesPerAgent: number;
  targetSamplesPerSec: number;
  offeredSamplesPerSec: number;
  agentsNeeded: number;
  agents: number;
  capped: boolean;
}

/** Grows the pool so that it offers the 3.5 target volume (see VOLUME_HEADROOM). */
export async function sizeForVolume(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<VolumeSizing> {
  const p = ctx.params;
  const first = pool.agents()[0];
  if (!first) throw new Error('the pool has no agent');
  const r = await client.metrics(first.url);
  if (r.status !== 200 || typeof r.body !== 'string') throw new Error(`GET ${first.url}/metrics answered ${r.status}`);
  const samplesPerAgent = countExpositionSamples(r.body);
  if (samplesPerAgent === 0) throw new Error(`${first.url}/metrics exposes no samples`);
  const intervalS = p.monitoring.scrapeIntervalMs / 1000;
  const target = p.targets.metricsSamplesPerSec;
  const agentsNeeded = Math.ceil((VOLUME_HEADROOM * target * intervalS) / samplesPerAgent);
  const have = pool.agents().length;
  const n = Math.min(MAX_VOLUME_AGENTS, Math.max(have, agentsNeeded));
  if (n > have) {
    ctx.progress('monitoring', `growing the pool to ${n} agents to offer ${target} samples/s`);
    await pool.scaleTo(n);
  }
  const agents = pool.agents().length;
  return {
    samplesPerAgent,
    targetSamplesPerSec: target,
    offeredSamplesPerSec: round((agents * samplesPerAgent) / intervalS, 1),
    agentsNeeded,
    agents,
    capped: agentsNeeded > MAX_VOLUME_AGENTS,
  };
}
