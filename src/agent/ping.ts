/**
 * `POST /v1/ping`: this agent times round trips to a peer over its coordination channel, the same
 * keep-alive connections gossip uses, and reports them. The `slow-peers` defect (in the agent's
 * client) delays every echo, so it shows in each round trip.
 *
 * Bounded (issue 12, src/agent/limits.ts): the peer must be a current alive member of this
 * agent's cluster, named by its id or by the URL the membership table holds for it, and the echo
 * goes to the URL from the table, never to one taken from the request (so the agent cannot be made
 * to send requests anywhere else); `count` is 1..MAX_PING_COUNT (413 above); at most
 * MAX_CONCURRENT_PINGS pings run at once (429 beyond).
 */
import type { Agent } from './agent.ts';
import type { Outcome } from './http.ts';
import { LimitExceeded, MAX_CONCURRENT_PINGS, MAX_PING_COUNT } from './limits.ts';
import { errorMessage } from '../errors.ts';

/** Pings running now, per agent. */
const running = new WeakMap<Agent, number>();

/** The URL of the alive member `peer` names (its id, or its URL as the table holds it). */
function aliveMemberUrl(agent: Agent, peer: string): string | undefined {
  const m = agent.membership;
  const byId = m.get(peer);
  if (byId) return byId.status === 'alive' ? byId.url : undefined;
  if (!/^https?:\/\//.test(peer)) return undefined;
  const want = peer.replace(/\/+$/, '');
  for (const id of m.aliveIds()) {
    const url = m.urlOf(id);
    if (url !== undefined && url.replace(/\/+$/, '') === want) return url;
  }
  return undefined;
}

export async function handlePing(agent: Agent, body: unknown): Promise<Outcome> {
  const b = body as { peer?: unknown; count?: unknown };
  if (typeof b.peer !== 'string' || b.peer.length === 0 || b.peer.length > 1024) {
    return { status: 400, body: { error: 'peer must be the id or URL of an alive member' } };
  }
  const count = b.count === undefined ? 10 : b.count;
  if (!Number.isInteger(count) || (count as number) < 1) return { status: 400, body: { error: `count must be an integer 1..${MAX_PING_COUNT}` } };
  if ((count as number) > MAX_PING_COUNT) return new LimitExceeded(413, 'pingCount', count as number, MAX_PING_COUNT, 'ping count').outcome();
  const url = aliveMemberUrl(agent, b.peer);
  if (!url) return { status: 404, body: { error: 'peer is not an alive member of this cluster', peer: b.peer } };
  const now = running.get(agent) ?? 0;
  if (now >= MAX_CONCURRENT_PINGS) return new LimitExceeded(429, 'concurrentPings', now + 1, MAX_CONCURRENT_PINGS, 'pings at once').outcome();
  running.set(agent, now + 1);
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
  } finally {
    running.set(agent, (running.get(agent) ?? 1) - 1);
  }
  return { status: 200, body: { peer: b.peer, rttMs } };
}
