/**
 * The route table of one reference agent (agent contract v1, docs/agent-contract.md): which
 * handler answers each path, the latency fault applied to the service routes, and the small
 * routes answered here (health, readiness, info, time, members, dispatch views, replicated state,
 * faults, event marks, metrics, and the WebSocket upgrade of `/v1/events`). The larger handlers
 * are in `tasks.ts`, `coordinator.ts`, `gossip.ts`, `ping.ts` and `workflows.ts`.
 * Defect hooks (src/agent/defects.ts): `slow-metrics` delays `/metrics`; `stale-reads` answers
 * some state reads with the key's previous version.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Agent } from './agent.ts';
import { parseFaults } from './faults.ts';
import { OPEN_PATHS } from './auth.ts';
import { drain, expect, HttpError, readJson, refuseUpgrade, unauthorized, type Outcome } from './http.ts';
import { LimitExceeded, MAX_MARK_TOKEN_CHARS, MAX_QUERY_IDS } from './limits.ts';
import { handlePing } from './ping.ts';
import { MAX_KEY_LENGTH, type WireState } from './state.ts';
import { validTask } from './tasks.ts';
import type { StateEntry } from './types.ts';
import { epochMs, sleep } from './util.ts';
import { handleStep, handleWorkflow } from './workflows.ts';

/** Answer one request: an Outcome to send as JSON, or null when the route wrote `res` itself. */
export async function route(agent: Agent, req: http.IncomingMessage, res: http.ServerResponse, receivedAt: number): Promise<Outcome | null> {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const m = req.method ?? 'GET';
  // Every route but the two probes needs the run's bearer token (src/agent/auth.ts); `GET /metrics`
  // also takes the optional read-only scrape token (SWARMBENCH_METRICS_TOKEN), no other route does.
  if (!OPEN_PATHS.has(path)) {
    const h = req.headers.authorization;
    if (!(path === '/metrics' && m === 'GET' ? agent.mayScrape(h) : agent.authorized(h))) return unauthorized();
  }

  // Health and faults are never delayed; the internal gossip/join/sync/state channel neither
  // (the latency fault slows the agent's service and its coordination echo, not its membership).
  switch (path) {
    case '/healthz':
      return { status: 200, body: { ok: true } };
    case '/readyz':
      return agent.ready ? { status: 200, body: { ready: true } } : { status: 503, body: { ready: false, error: 'not joined' } };
    case '/v1/faults':
      return handleFaults(agent, m, req);
    case '/v1/cluster/join':
      return agent.gossip.handleJoin(expect(m, 'POST') && (await readJson(req)));
    case '/v1/cluster/gossip':
      return agent.gossip.handleGossip(expect(m, 'POST') && (await readJson(req)));
    case '/v1/cluster/sync':
      return agent.gossip.handleSync(expect(m, 'POST') && (await readJson(req)));
    case '/v1/cluster/state':
      return agent.gossip.handleStatePush(expect(m, 'POST') && (await readJson(req)));
  }

  if (agent.faults.latencyMs > 0) await sleep(agent.faults.latencyMs);

  switch (path) {
    case '/v1/cluster/echo':
      expect(m, 'POST');
      await drain(req);
      return { status: 200, body: { id: agent.id } };
    case '/v1/cluster/step':
      return handleStep(agent, expect(m, 'POST') && (await readJson(req)));
    case '/v1/info':
      expect(m, 'GET');
      return { status: 200, body: agent.info() };
    case '/v1/time':
      return { status: 200, body: { now: epochMs() } };
    case '/v1/tasks': {
      const t = validTask(expect(m, 'POST') && (await readJson(req)));
      if (typeof t === 'string') return { status: 400, body: { error: t } };
      return agent.runTask(t, receivedAt);
    }
    case '/v1/dispatch': {
      const b = expect(m, 'POST') && (await readJson(req));
      try {
        return agent.coordinator.dispatch(b);
      } catch (err) {
        // The ledger is full of pending tasks (src/agent/dispatch.ts): 429 naming the cap.
        if (err instanceof LimitExceeded) return err.outcome();
        throw err;
      }
    }
    case '/v1/dispatch/query': {
      const b = expect(m, 'POST') && ((await readJson(req)) as { ids?: unknown });
      if (Array.isArray(b.ids) && b.ids.length > MAX_QUERY_IDS) {
        return new LimitExceeded(413, 'queryIds', b.ids.length, MAX_QUERY_IDS, 'ids in one dispatch query').outcome();
      }
      if (!Array.isArray(b.ids) || !b.ids.every((x) => typeof x === 'string')) {
        return { status: 400, body: { error: `ids must be an array of strings (<= ${MAX_QUERY_IDS})` } };
      }
      return { status: 200, body: { tasks: (b.ids as string[]).map((id) => agent.ledger.view(id)) } };
    }
    case '/v1/members':
      expect(m, 'GET');
      return { status: 200, body: { self: agent.id, members: agent.membership.list(), alive: agent.membership.aliveCount() } };
    case '/v1/ping':
      return handlePing(agent, expect(m, 'POST') && (await readJson(req)));
    case '/v1/workflows':
      return handleWorkflow(agent, expect(m, 'POST') && (await readJson(req)));
    case '/v1/events/mark': {
      const b = expect(m, 'POST') && ((await readJson(req)) as { token?: unknown });
      if (typeof b.token !== 'string') return { status: 400, body: { error: 'token must be a string' } };
      if (b.token.length > MAX_MARK_TOKEN_CHARS) {
        return new LimitExceeded(413, 'markTokenChars', b.token.length, MAX_MARK_TOKEN_CHARS, 'token length in characters').outcome();
      }
      const ts = epochMs();
      agent.events.emit('mark', { token: b.token });
      return { status: 200, body: { token: b.token, ts } };
    }
    case '/metrics': {
      expect(m, 'GET');
      if (agent.defects.metricsDelayMs > 0) await sleep(agent.defects.metricsDelayMs);
      const text = await agent.metrics.text();
      res.writeHead(200, { 'content-type': agent.metrics.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return null;
    }
  }
  if (path.startsWith('/v1/dispatch/')) {
    expect(m, 'GET');
    return { status: 200, body: agent.ledger.view(decodeURIComponent(path.slice('/v1/dispatch/'.length))) };
  }
  if (path.startsWith('/v1/state/')) return handleState(agent, m, path, req);
  return { status: 404, body: { error: 'not found', path } };
}

/** The WebSocket upgrade of `GET /v1/events[?heartbeatMs=N]` (401 without the token); any other upgrade is dropped. */
export function upgrade(agent: Agent, req: http.IncomingMessage, socket: Socket, head: Buffer): void {
  if (!agent.authorized(req.headers.authorization)) {
    refuseUpgrade(socket);
    return;
  }
  const u = new URL(req.url ?? '/', 'http://x');
  if (u.pathname !== '/v1/events' || agent.stopped) {
    socket.destroy();
    return;
  }
  const hb = Number(u.searchParams.get('heartbeatMs') ?? 1000);
  agent.events.handleUpgrade(req, socket, head, Number.isFinite(hb) ? Math.min(60_000, Math.max(50, hb)) : 1000);
}

/** `GET|PUT /v1/state/{key}`: read this agent's copy, or write here and push to every member. */
async function handleState(agent: Agent, m: string, path: string, req: http.IncomingMessage): Promise<Outcome> {
  let key: string;
  try {
    key = decodeURIComponent(path.slice('/v1/state/'.length));
  } catch {
    return { status: 400, body: { error: 'bad key encoding' } };
  }
  if (key.length === 0) return { status: 400, body: { error: `key must be 1..${MAX_KEY_LENGTH} chars` } };
  if (key.length > MAX_KEY_LENGTH) return new LimitExceeded(413, 'stateKeyChars', key.length, MAX_KEY_LENGTH, 'state key length in characters').outcome();
  if (m === 'GET') {
    const e = (agent.defects.staleReads && agent.defects.staleRead() && agent.state.previous(key)) || agent.state.get(key);
    return e ? { status: 200, body: e } : { status: 404, body: { error: 'no such key', key } };
  }
  if (m === 'PUT') {
    const b = await readJson(req);
    if (typeof b !== 'object' || b === null || !('value' in b)) return { status: 400, body: { error: 'body must be {"value": ...}' } };
    let e: StateEntry;
    try {
      e = agent.state.write(key, (b as { value: unknown }).value);
    } catch (err) {
      // A cap (src/agent/limits.ts): 413 or 429 naming it, nothing stored, nothing pushed.
      if (err instanceof LimitExceeded) return err.outcome();
      throw err;
    }
    const st: WireState[] = [[e.key, e.version, e.writer, e.value]];
    agent.gossip.replicate(st);
    return { status: 200, body: e };
  }
  throw new HttpError(405, 'method not allowed');
}

/** `GET|PUT|DELETE /v1/faults`: read, set or clear the injected faults (and the health score). */
async function handleFaults(agent: Agent, m: string, req: http.IncomingMessage): Promise<Outcome> {
  if (m === 'GET') return { status: 200, body: agent.faults.toJSON() };
  if (m === 'DELETE') {
    agent.faults.clear();
    agent.setHealth(1);
    return { status: 200, body: agent.faults.toJSON() };
  }
  if (m !== 'PUT') throw new HttpError(405, 'method not allowed');
  const f = parseFaults(await readJson(req));
  if (typeof f === 'string') return { status: 400, body: { error: f } };
  agent.faults.set(f);
  agent.setHealth(f.breach?.healthScore ?? 1);
  return { status: 200, body: agent.faults.toJSON() };
}
