/**
 * `POST /v1/ping`: this agent times round trips to a peer (an agent id or a URL) over its
 * coordination channel, the same keep-alive connections gossip uses, and reports them. The
 * `slow-peers` defect (in the agent's client) delays every echo, so it shows in each round trip.
 */
import type { Agent } from './agent.ts';
import type { Outcome } from './http.ts';
import { errorMessage } from '../errors.ts';

export async function handlePing(agent: Agent, body: unknown): Promise<Outcome> {
  const b = body as { peer?: unknown; count?: unknown };
  if (typeof b.peer !== 'string' || b.peer.length === 0) return { status: 400, body: { error: 'peer must be an agent id or URL' } };
  const count = b.count === undefined ? 10 : b.count;
  if (!Number.isInteger(count) || (count as number) < 1 || (count as number) > 1000) {
    return { status: 400, body: { error: 'count must be 1..1000' } };
  }
  const url = /^https?:\/\//.test(b.peer) ? b.peer : agent.membership.urlOf(b.peer);
  if (!url) return { status: 404, body: { error: 'unknown peer', peer: b.peer } };
  const rttMs: number[] = [];
  try {
    // One unmeasured echo opens (or reuses) the keep-alive connection: the RTT is the
    // coordination channel's round trip, not a TCP handshake.
    await agent.coord.request('POST', url, '/v1/cluster/echo', '{}', 10_000);
    for (let i = 0; i < (count as number); i++) {
      const t0 = performance.now();
      const r = await agent.coord.request('POST', url, '/v1/cluster/echo', '{}', 10_000);
      const dt = performance.now() - t0;
      if (r.status !== 200) return { status: 502, body: { error: `peer answered ${r.status}`, peer: b.peer } };
      rttMs.push(dt);
    }
  } catch (err) {
    return { status: 502, body: { error: errorMessage(err), peer: b.peer } };
  }
  return { status: 200, body: { peer: b.peer, rttMs } };
}
