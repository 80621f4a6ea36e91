/**
 * The reference agent's caps (issue 12 "agents are bounded", src/agent/limits.ts), against real
 * agents in this process over HTTP and WebSocket on loopback: each oversized or excessive request
 * is answered 413 or 429 naming the limit and the value, and the agent keeps serving afterwards
 * (the next normal request answers 200). Fills that would take thousands of requests (10 000 state
 * keys) are made in process, then the capped request goes over HTTP. Every request carries the
 * process's agent token (src/agent/auth.ts), as the in-process agents expect.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Agent, type AgentOptions } from '../../src/agent/agent.ts';
import { agentToken, bearer } from '../../src/agent/auth.ts';
import { AgentClient } from '../../src/agent/client.ts';
import { Ledger } from '../../src/agent/dispatch.ts';
import {
  MAX_EVENT_CLIENTS,
  MAX_MEMBERS,
  MAX_MEMBERS_PER_MESSAGE,
  MAX_PING_COUNT,
  MAX_QUERY_IDS,
  MAX_STATE_KEYS,
  MAX_STATE_VALUE_BYTES,
  MAX_WORKFLOW_STEPS,
} from '../../src/agent/limits.ts';
import type { MembersResult, StateEntry } from '../../src/agent/types.ts';

const client = new AgentClient({ timeoutMs: 20_000, maxSockets: 64 });
const started: Agent[] = [];
const sockets: WebSocket[] = [];
let seq = 0;

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(started.splice(0).map((a) => a.close()));
});

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function agent(over: Partial<AgentOptions> = {}): Promise<Agent> {
  const a = new Agent({ id: `l${++seq}`, host: '127.0.0.1', port: 0, seeds: [], capacity: 64, gossipIntervalMs: 50, failureTimeoutMs: 1000, ...over });
  started.push(a);
  await a.start();
  await until('ready', 5000, () => a.ready);
  return a;
}

/** A raw JSON request (the body sent as given), for bodies the typed client would not build. */
function raw(url: string, method: string, path: string, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ hostname: u.hostname, port: u.port, method, path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: bearer(agentToken()) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

async function stillServing(a: Agent): Promise<void> {
  const w = await client.putState(a.url, `alive-${Date.now()}`, { ok: true });
  expect(w.status).toBe(200);
  expect((await client.healthz(a.url)).status).toBe(200);
}

describe('replicated state caps', () => {
  it('answers an oversized value 413 naming the limit and the size, stores nothing, and keeps serving', async () => {
    const a = await agent();
    const r = await client.putState(a.url, 'big', 'x'.repeat(MAX_STATE_VALUE_BYTES));
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ limit: 'stateValueBytes', value: MAX_STATE_VALUE_BYTES + 2, max: MAX_STATE_VALUE_BYTES });
    expect((r.body as { error: string }).error).toMatch(/stateValueBytes/);
    expect((await client.getState(a.url, 'big')).status).toBe(404);
    const key = await client.putState(a.url, 'k'.repeat(257), 1);
    expect(key.status).toBe(413);
    expect(key.body).toMatchObject({ limit: 'stateKeyChars', value: 257 });
    await stillServing(a);
  });

  it('answers a value nested 100 000 deep 413 without crashing; a later join gets the state at once (no hang)', async () => {
    const a = await agent();
    expect((await client.putState(a.url, 'plain', { n: 1 })).status).toBe(200);
    const deep = `{"value":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const r = await raw(a.url, 'PUT', '/v1/state/deep', deep);
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ limit: 'stateDepth', max: 32 });
    // Past the body cap (4 MiB) it is refused before any parsing: a 413 naming the limit (with
    // `connection: close`; http.ts answers at once and closes the socket after the answer).
    const huge = `{"value":${'['.repeat(2_200_000)}${']'.repeat(2_200_000)}}`;
    const cut = await raw(a.url, 'PUT', '/v1/state/huge', huge);
    expect(cut.status).toBe(413);
    expect(cut.body).toMatchObject({ limit: 'requestBodyBytes', value: huge.length, max: 4 * 1024 * 1024 });
    await stillServing(a);
    const t0 = Date.now();
    const b = await agent({ seeds: [a.url] });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(b.state.get('plain')).toMatchObject({ value: { n: 1 } });
    expect(b.state.get('deep')).toBeUndefined();
  });

  it('answers a new key past the key cap 429 (an existing key may still be written)', async () => {
    const a = await agent();
    for (let i = 0; a.state.size < MAX_STATE_KEYS; i++) a.state.write(`fill-${i}`, i);
    const r = await client.putState(a.url, 'one-more', 1);
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({ limit: 'stateKeys', value: MAX_STATE_KEYS + 1, max: MAX_STATE_KEYS });
    expect((await client.putState(a.url, 'fill-0', 'again')).status).toBe(200);
    expect((await client.healthz(a.url)).status).toBe(200);
  });

  it('drops oversized and too deep entries pushed by a "peer", counting them, and answers 413 to a push past the key cap', async () => {
    const a = await agent();
    const st = [['ok', 1, 'p', 1], ['deep', 1, 'p', JSON.parse('['.repeat(50) + ']'.repeat(50))], ['big', 1, 'p', 'x'.repeat(70_000)]];
    expect((await client.request('POST', a.url, '/v1/cluster/state', { f: 'p', st })).status).toBe(200);
    expect(a.state.get('ok')).toBeDefined();
    expect(a.state.size).toBe(1);
    expect(a.state.dropped).toBe(2);
    const many = Array.from({ length: MAX_STATE_KEYS + 1 }, (_, i) => [`m${i}`, 1, 'p', 1]);
    const r = await client.request('POST', a.url, '/v1/cluster/sync', { f: 'p', st: many });
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ limit: 'stateKeys', value: MAX_STATE_KEYS + 1 });
    await stillServing(a);
  });
});

describe('dispatch caps', () => {
  it('answers 429 naming the ledger cap when every entry is pending, and accepts again once tasks finish', async () => {
    const a = await agent();
    (a as unknown as { ledger: Ledger }).ledger = new Ledger({ maxEntries: 3 });
    for (let i = 0; i < 3; i++) expect((await client.dispatch(a.url, { id: `p${i}`, kind: 'io', ioMs: 300 })).status).toBe(202);
    const r = await client.dispatch(a.url, { id: 'p3', kind: 'io', ioMs: 1 });
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({ limit: 'ledgerEntries', value: 4, max: 3 });
    await until('finished', 5000, async () => (await client.dispatchStatus(a.url, 'p0')).body.state === 'done');
    expect((await client.dispatch(a.url, { id: 'p3', kind: 'io', ioMs: 1 })).status).toBe(202);
  });

  it('answers a query of too many ids 413 and a malformed one 400', async () => {
    const a = await agent();
    const r = await client.dispatchQuery(a.url, Array.from({ length: MAX_QUERY_IDS + 1 }, (_, i) => `q${i}`));
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ limit: 'queryIds', value: MAX_QUERY_IDS + 1 });
    expect((await client.request('POST', a.url, '/v1/dispatch/query', { ids: [1] })).status).toBe(400);
    expect((await client.dispatchQuery(a.url, ['q1'])).status).toBe(200);
  });
});

describe('membership caps', () => {
  it('refuses malformed joins, floods of fake members past the message cap, and never grows past the table cap', async () => {
    const a = await agent();
    const bad = await client.request('POST', a.url, '/v1/cluster/join', { id: 'x', url: 'http://169.254.169.254/latest' });
    expect(bad.status).toBe(400);
    expect((bad.body as { error: string }).error).toMatch(/url/);
    const fake = (from: number, n: number) => Array.from({ length: n }, (_, i) => [`fake-${from + i}`, `http://10.0.0.1:${1000 + ((from + i) % 60_000)}`, 0, 0]);
    const over = await client.request('POST', a.url, '/v1/cluster/sync', { f: 'x', m: fake(0, MAX_MEMBERS_PER_MESSAGE + 1) });
    expect(over.status).toBe(413);
    expect(over.body).toMatchObject({ limit: 'membersPerMessage', value: MAX_MEMBERS_PER_MESSAGE + 1 });
    for (let k = 0; k < 3; k++) {
      expect((await client.request('POST', a.url, '/v1/cluster/sync', { f: 'x', m: fake(k * 3000, 3000) })).status).toBe(200);
    }
    expect(a.membership.size).toBe(MAX_MEMBERS);
    const join = await client.request('POST', a.url, '/v1/cluster/join', { id: 'late', url: 'http://10.0.0.2:1' });
    expect(join.status).toBe(429);
    expect(join.body).toMatchObject({ limit: 'members', max: MAX_MEMBERS });
    const members = await client.members(a.url);
    expect(members.status).toBe(200);
    expect((members.body as MembersResult).members.length).toBe(MAX_MEMBERS);
    await stillServing(a);
  });

  it('a `left` about the agent itself, sent through sync, does not evict it: it refutes by incarnation', async () => {
    const a = await agent();
    const r = await client.request('POST', a.url, '/v1/cluster/sync', { f: 'x', m: [[a.id, a.url, 7, 3]] });
    expect(r.status).toBe(200);
    expect(a.membership.selfStatus).toBe('alive');
    expect(a.membership.incarnation).toBe(8);
    const me = (await client.members(a.url)).body.members.find((m) => m.id === a.id);
    expect(me).toMatchObject({ status: 'alive', incarnation: 8 });
  });
});

describe('ping', () => {
  it('pings only alive members (by id, or by the URL the table holds), never a URL from the request', async () => {
    const a = await agent();
    const b = await agent({ seeds: [a.url] });
    await until('formed', 5000, () => a.membership.aliveCount() === 2);
    let hits = 0;
    const capture = http.createServer((req, res) => {
      hits++;
      res.end('{}');
    });
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
    const port = (capture.address() as { port: number }).port;
    try {
      const r = await client.ping(a.url, `http://127.0.0.1:${port}`, 3);
      expect(r.status).toBe(404);
      expect((await client.ping(a.url, 'nobody', 1)).status).toBe(404);
      expect(hits).toBe(0);
    } finally {
      capture.close();
    }
    expect((await client.ping(a.url, b.id, 2)).status).toBe(200);
    expect((await client.ping(a.url, b.url, 2)).status).toBe(200);
    const many = await client.ping(a.url, b.id, MAX_PING_COUNT + 1);
    expect(many.status).toBe(413);
    expect(many.body).toMatchObject({ limit: 'pingCount', value: MAX_PING_COUNT + 1 });
  });
});

describe('other request fields', () => {
  it('bounds workflow steps and mark tokens, naming the field', async () => {
    const a = await agent();
    const steps = Array.from({ length: MAX_WORKFLOW_STEPS + 1 }, () => ({ op: 'upper' as const }));
    const w = await client.workflow(a.url, { id: 'w', input: 'x', steps });
    expect(w.status).toBe(413);
    expect(w.body).toMatchObject({ limit: 'workflowSteps', value: MAX_WORKFLOW_STEPS + 1 });
    const m = await client.mark(a.url, 't'.repeat(2000));
    expect(m.status).toBe(413);
    expect(m.body).toMatchObject({ limit: 'markTokenChars', value: 2000 });
    const f = await client.putFaults(a.url, { loseAccepted: 10_000_000 });
    expect(f.status).toBe(400);
    expect((f.body as { error: string }).error).toMatch(/loseAccepted/);
    expect((await client.workflow(a.url, { id: 'w', input: 'x', steps: [{ op: 'upper' }] })).status).toBe(200);
  });
});

describe('event stream caps', () => {
  const open = (url: string): Promise<WebSocket> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/events`, { headers: { authorization: bearer(agentToken()) } });
      sockets.push(ws);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
    });

  it('closes a subscriber that does not read (1008 and a reason) while the agent keeps serving', async () => {
    const a = await agent();
    const slow = await open(a.url);
    const closed = new Promise<{ code: number; reason: string }>((r) => slow.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    const sock = (slow as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    sock.pause();
    // Far more than the kernel's socket buffers and the cap: 60 KB events, emitted in process.
    for (let i = 0; i < 600 && a.events.subscribers > 0; i++) {
      a.events.emit('mark', { token: 'x'.repeat(60_000) });
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
    }
    expect(a.events.subscribers).toBe(0);
    expect(a.events.slowClosed).toBe(1);
    sock.resume();
    const c = await closed;
    expect(c.code).toBe(1008);
    expect(c.reason).toMatch(/slow consumer: \d+ bytes unsent, limit eventBufferedBytes/);
    await stillServing(a);
    const fresh = await open(a.url);
    expect(fresh.readyState).toBe(WebSocket.OPEN);
  });

  it('refuses subscribers past the cap with 429', async () => {
    const a = await agent();
    await Promise.all(Array.from({ length: MAX_EVENT_CLIENTS }, () => open(a.url)));
    await expect(open(a.url)).rejects.toMatchObject({ statusCode: 429 });
    sockets.pop()?.terminate();
    sockets[0]!.terminate();
    await until('one left', 5000, () => a.events.subscribers < MAX_EVENT_CLIENTS);
    expect((await open(a.url)).readyState).toBe(WebSocket.OPEN);
  });
});

describe('state entries read back', () => {
  it('a value at the caps round-trips intact', async () => {
    const a = await agent();
    const v = { s: 'y'.repeat(MAX_STATE_VALUE_BYTES - 20) };
    const w = await client.putState(a.url, 'edge', v);
    expect(w.status).toBe(200);
    expect(((await client.getState(a.url, 'edge')).body as StateEntry).value).toEqual(v);
  });
});
