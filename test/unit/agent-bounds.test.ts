/**
 * Bounded answers on both sides of the agent contract (issue 12, "agents are bounded", and the
 * harness facing agents a user runs):
 * - the agent's HTTP plumbing (src/agent/http.ts): a route body that cannot be serialized is a 500
 *   with a JSON error (never a hang), a body past 4 MiB is a 413 naming the limit with
 *   `connection: close` (never a reset), by its declared length or by an endless chunked stream;
 * - the harness's readers of agent answers: AgentClient (`maxResponseBytes`, ERESPONSETOOLARGE;
 *   a body it cannot serialize rejects, never throws), the open- and closed-loop generators
 *   (src/bench/load/generator.ts `readBody`), the event stream clients (`maxPayload`), each against
 *   a hostile in-process server that answers without end: the call fails, memory stays bounded;
 * - the coordinator's metrics (src/agent/coordinator.ts, metrics.ts): a full ledger's 429 counts as
 *   `rejected`, a result the ledger refuses is `failed` and never `done`, a task dropped on purpose
 *   releases its payload, and the drop counters are exported.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { Agent, type AgentOptions } from '../../src/agent/agent.ts';
import { agentToken, bearer } from '../../src/agent/auth.ts';
import { AgentClient, AgentClientError, DEFAULT_MAX_RESPONSE_BYTES, MAX_EVENT_MESSAGE_BYTES } from '../../src/agent/client.ts';
import { runConformance } from '../../src/agent/conformance.ts';
import { Ledger } from '../../src/agent/dispatch.ts';
import { Listener, MAX_BODY } from '../../src/agent/http.ts';
import { startClosedLoop } from '../../src/bench/load/closed.ts';
import { MAX_QUERY_ANSWER_BYTES, MAX_TASK_ANSWER_BYTES, postJson, runLoad } from '../../src/bench/load/generator.ts';
import { AgentEventStream } from '../../src/bench/monitoring/dashboard.ts';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
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

/** A Listener with this handler on a free loopback port; its URL. */
async function listener(handle: ConstructorParameters<typeof Listener>[0]): Promise<string> {
  const l = new Listener(handle, (_req, socket) => socket.destroy());
  const port = await l.listen('127.0.0.1', 0);
  closers.push(() => l.destroy());
  return `http://127.0.0.1:${port}`;
}

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Bytes of the request body the client had written when the answer came. */
  sentWhenAnswered: number;
  /** The socket closed after the answer (the connection was not kept alive). */
  closed: Promise<void>;
}

/**
 * A request whose body is written by `write` (called with the request; it may stream without
 * end): resolves with the first answer, whatever the client was still writing.
 */
function rawRequest(url: string, method: string, path: string, headers: http.OutgoingHttpHeaders, write: (req: http.ClientRequest) => () => number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const agent = new http.Agent({ keepAlive: true });
    closers.push(() => agent.destroy());
    const req = http.request({ agent, hostname: u.hostname, port: u.port, method, path, headers: { authorization: bearer(agentToken()), ...headers } });
    let sent: () => number = () => 0;
    req.on('response', (res) => {
      const sentWhenAnswered = sent();
      const socket = res.socket as Socket;
      const closed = new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          body = { text: Buffer.concat(chunks).toString('utf8') };
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, sentWhenAnswered, closed });
      });
    });
    // Errors after the answer (the server closed while we were still writing) are expected.
    req.on('error', (err) => reject(err));
    sent = write(req);
  });
}

/** Writes 64 KiB chunks without end (chunked encoding) until the request is destroyed. */
function endless(req: http.ClientRequest): () => number {
  let n = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = (): void => {
    while (!req.destroyed && !req.writableEnded) {
      n += chunk.length;
      if (!req.write(chunk)) {
        req.once('drain', pump);
        return;
      }
    }
  };
  req.on('close', () => req.removeAllListeners('drain'));
  pump();
  return () => n;
}

describe('the agent answers every request (src/agent/http.ts)', () => {
  it('answers 500 with a JSON error for a body it cannot serialize (BigInt, cycle), and keeps serving', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const url = await listener(async (req) => {
      if (req.url === '/bigint') return { status: 200, body: { n: 1n } };
      if (req.url === '/cycle') return { status: 200, body: cyclic };
      return { status: 200, body: { ok: true } };
    });
    const c = new AgentClient({ timeoutMs: 3000 });
    closers.push(() => c.close());
    const big = await c.request('GET', url, '/bigint');
    expect(big.status).toBe(500);
    expect((big.body as { error: string }).error).toMatch(/answer could not be serialized: .*BigInt/);
    const cyc = await c.request('GET', url, '/cycle');
    expect(cyc.status).toBe(500);
    expect((cyc.body as { error: string }).error).toMatch(/answer could not be serialized: .*circular/i);
    expect((await c.request('GET', url, '/fine')).body).toEqual({ ok: true });
  });

  it('ends the connection (no hang) when a route fails after it already sent headers', async () => {
    const url = await listener(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
      throw new Error('broke half way');
    });
    const c = new AgentClient({ timeoutMs: 3000 });
    closers.push(() => c.close());
    const err = await c.request('GET', url, '/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentClientError);
    expect((err as AgentClientError).code).not.toBe('ETIMEDOUT');
  });

  it('answers a body declared past 4 MiB 413 naming the limit, with connection: close, before reading it', async () => {
    const a = await agentAt();
    // Only the start of the body is ever sent: the answer must not wait for the rest.
    const r = await rawRequest(a.url, 'PUT', '/v1/state/huge', { 'content-type': 'application/json', 'content-length': MAX_BODY + 1 }, (req) => {
      req.write('{"value":"');
      return () => 10;
    });
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
    expect(r.body).toMatchObject({ limit: 'requestBodyBytes', value: MAX_BODY + 1, max: MAX_BODY });
    expect(String(r.body.error)).toMatch(/requestBodyBytes/);
    await r.closed;
    await stillServing(a);
  });

  it('answers an endless chunked body 413 once it passes 4 MiB, closes the socket, and keeps serving', async () => {
    const a = await agentAt();
    const rss0 = process.memoryUsage.rss();
    const r = await rawRequest(a.url, 'PUT', '/v1/state/endless', { 'content-type': 'application/json' }, endless);
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
    expect(r.body).toMatchObject({ limit: 'requestBodyBytes', max: MAX_BODY });
    expect(r.body.value as number).toBeGreaterThan(MAX_BODY);
    // The answer came while the client was still sending: the agent did not read to the end.
    expect(r.sentWhenAnswered).toBeGreaterThan(MAX_BODY);
    await r.closed;
    expect(process.memoryUsage.rss() - rss0).toBeLessThan(64 * 1024 * 1024);
    await stillServing(a);
    // The same over the typed client: a 413, not a reset.
    const c = new AgentClient({ timeoutMs: 5000 });
    closers.push(() => c.close());
    const put = await c.putState(a.url, 'big', 'x'.repeat(MAX_BODY));
    expect(put.status).toBe(413);
    expect(put.body).toMatchObject({ limit: 'requestBodyBytes' });
  });
});

const started: Agent[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((a) => a.close()));
});
let seq = 0;

async function agentAt(over: Partial<AgentOptions> = {}): Promise<Agent> {
  const a = new Agent({ id: `b${++seq}`, host: '127.0.0.1', port: 0, seeds: [], capacity: 64, gossipIntervalMs: 50, failureTimeoutMs: 1000, ...over });
  started.push(a);
  await a.start();
  await until('ready', 5000, () => a.ready);
  return a;
}

async function stillServing(a: Agent): Promise<void> {
  const c = new AgentClient({ timeoutMs: 5000 });
  try {
    expect((await c.putState(a.url, `alive-${Date.now()}`, 1)).status).toBe(200);
  } finally {
    c.close();
  }
}

/**
 * A hostile agent: every HTTP answer is `status` with an endless body (chunked, 64 KiB chunks,
 * as fast as the client reads), or with a huge declared `content-length` when `declare` is set.
 * Counts the bytes it managed to write.
 */
async function hostile(status: number, declare = false): Promise<{ url: string; written: () => number }> {
  let written = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    res.writeHead(status, { 'content-type': 'application/json', ...(declare ? { 'content-length': String(1024 ** 4) } : {}) });
    const pump = (): void => {
      while (!res.destroyed && !res.writableEnded) {
        written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    res.on('close', () => res.removeAllListeners('drain'));
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, written: () => written };
}

describe('the harness reads agent answers bounded', () => {
  it('AgentClient rejects an endless answer with ERESPONSETOOLARGE at maxResponseBytes, memory bounded', async () => {
    const h = await hostile(200);
    const c = new AgentClient({ timeoutMs: 20_000, maxResponseBytes: 1024 * 1024 });
    closers.push(() => c.close());
    const heap0 = process.memoryUsage().heapUsed;
    const rss0 = process.memoryUsage.rss();
    for (let i = 0; i < 5; i++) {
      const err = await c.info(h.url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AgentClientError);
      expect((err as AgentClientError).code).toBe('ERESPONSETOOLARGE');
      expect((err as AgentClientError).message).toMatch(/maxResponseBytes = 1048576/);
    }
    // The server wrote little more than the caps (plus socket buffers) before the client hung up.
    expect(h.written()).toBeLessThan(5 * (1024 * 1024 + 8 * 1024 * 1024));
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(48 * 1024 * 1024);
    expect(process.memoryUsage.rss() - rss0).toBeLessThan(96 * 1024 * 1024);
    // The default cap is 16 MiB, and a declared length past it is refused before a byte is read.
    expect(DEFAULT_MAX_RESPONSE_BYTES).toBe(16 * 1024 * 1024);
    const d = await hostile(200, true);
    const dc = new AgentClient({ timeoutMs: 20_000 });
    closers.push(() => dc.close());
    const derr = await dc.metrics(d.url).catch((e: unknown) => e);
    expect((derr as AgentClientError).code).toBe('ERESPONSETOOLARGE');
    expect(() => new AgentClient({ maxResponseBytes: 0 })).toThrow(/maxResponseBytes/);
  });

  it('AgentClient rejects (never throws) a body it cannot serialize', async () => {
    const c = new AgentClient({ timeoutMs: 1000 });
    closers.push(() => c.close());
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let p1: Promise<unknown> | undefined;
    let p2: Promise<unknown> | undefined;
    expect(() => {
      p1 = c.request('POST', 'http://127.0.0.1:9', '/v1/tasks', { n: 1n });
      p2 = c.putState('http://127.0.0.1:9', 'k', cyclic);
    }).not.toThrow();
    for (const p of [p1!, p2!]) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AgentClientError);
      expect((err as AgentClientError).code).toBe('EREQUEST');
      expect((err as AgentClientError).message).toMatch(/could not be serialized/);
    }
    // Through the send delay too.
    const slow = new AgentClient({ timeoutMs: 1000, sendDelayMs: 5 });
    closers.push(() => slow.close());
    await expect(slow.request('POST', 'http://127.0.0.1:9', '/x', { n: 1n })).rejects.toMatchObject({ code: 'EREQUEST' });
  });

  it('the open-loop generator counts an endless task answer as an error, and the drain treats an endless query answer as unreachable', async () => {
    const h = await hostile(200);
    const rss0 = process.memoryUsage.rss();
    const run = await runLoad({ targets: [h.url], rate: 50, durationMs: 100, ioMs: 1, timeoutMs: 10_000 });
    expect(run.counts.offered).toBeGreaterThan(0);
    expect(run.counts.error).toBe(run.counts.offered);
    expect(run.errorKinds).toEqual({ ERESPONSETOOLARGE: run.counts.offered });
    expect(h.written()).toBeLessThan(run.counts.offered * (MAX_TASK_ANSWER_BYTES + 8 * 1024 * 1024));
    // A refusal with an endless body is still a refusal, and its body is cut.
    const r429 = await hostile(429);
    const refused = await runLoad({ targets: [r429.url], rate: 50, durationMs: 100, ioMs: 1, timeoutMs: 10_000 });
    expect(refused.counts.rejected).toBe(refused.counts.offered);
    // Dispatch: the 202 is an acceptance, the query answer past its cap makes the coordinator unreachable.
    const acc = await hostile(202);
    const q = await postJson(new http.Agent(), { hostname: '127.0.0.1', port: Number(new URL(acc.url).port) }, '/v1/dispatch/query', { ids: ['x'] }, 10_000).catch((e: unknown) => e);
    expect((q as NodeJS.ErrnoException).code).toBe('ERESPONSETOOLARGE');
    expect(String(q)).toMatch(new RegExp(`answer over ${MAX_QUERY_ANSWER_BYTES} bytes`));
    const disp = await runLoad({ targets: [acc.url], rate: 20, durationMs: 100, ioMs: 1, mode: 'dispatch', drainMs: 300, pollMs: 100, timeoutMs: 10_000 });
    expect(disp.counts.lost).toBe(disp.counts.offered);
    expect(disp.lostDetail.unreachable).toBe(disp.counts.offered);
    expect(process.memoryUsage.rss() - rss0).toBeLessThan(128 * 1024 * 1024);
  });

  it('the closed loop survives endless dispatch answers', async () => {
    const acc = await hostile(202);
    const rss0 = process.memoryUsage.rss();
    const run = await startClosedLoop({ coordinators: [acc.url], outstanding: 2, rampMs: 10, durationMs: 150, cpuFraction: 0, ioMs: 1, cpuRounds: 1, pollMs: 50 }).finish(300);
    expect(run.counts.offered).toBeGreaterThan(0);
    expect(run.counts.ok).toBe(0);
    expect(run.lostDetail.unreachable).toBeGreaterThan(0);
    expect(acc.written()).toBeLessThan(64 * (MAX_QUERY_ANSWER_BYTES + 8 * 1024 * 1024));
    expect(process.memoryUsage.rss() - rss0).toBeLessThan(128 * 1024 * 1024);
  });

  it('event stream clients refuse a message past MAX_EVENT_MESSAGE_BYTES (dashboard stream, conformance)', async () => {
    // A hostile agent: 404 on every HTTP route; its event stream sends a hello, then a 2 MiB message.
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    });
    const wss = new WebSocketServer({ server, path: '/v1/events' });
    wss.on('connection', (ws) => {
      ws.send(JSON.stringify({ type: 'hello', agent: 'h', seq: 1, ts: Date.now(), data: {} }));
      ws.send(JSON.stringify({ type: 'mark', agent: 'h', seq: 2, ts: Date.now(), data: { token: 'x'.repeat(2 * 1024 * 1024) } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(
      () =>
        new Promise<void>((r) => {
          for (const c of wss.clients) c.terminate();
          wss.close();
          server.closeAllConnections();
          server.close(() => r());
        }),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const types: string[] = [];
    const closedWith: string[] = [];
    const s = new AgentEventStream({ id: 'h', url }, { reconnect: false, onEvent: (ev) => types.push(ev.type), onState: (st, d) => st === 'closed' && closedWith.push(d ?? '') });
    closers.push(() => s.close());
    await s.ready(5000);
    await until('stream closed', 5000, () => !s.open && closedWith.length > 0);
    expect(types).toEqual(['hello']);
    expect(s.lastError).toMatch(/max payload size exceeded/i);
    expect(MAX_EVENT_MESSAGE_BYTES).toBe(1024 * 1024);
    // The conformance check reports the failed events check and carries on.
    const results = await runConformance(url, { timeoutMs: 2000, dispatchTasks: 0 });
    const events = results.find((r) => r.name === 'events');
    expect(events?.ok).toBe(false);
    expect(results.length).toBeGreaterThan(5);
  }, 60_000);
});

describe('dispatch metrics and drop counters (src/agent/coordinator.ts, metrics.ts)', () => {
  const c = new AgentClient({ timeoutMs: 10_000 });

  function counter(text: string, name: string, labels = ''): number {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
  }

  it('counts a full ledger\'s 429 as rejected and a result the ledger refuses as failed, never done', async () => {
    const a = await agentAt();
    (a as unknown as { ledger: Ledger }).ledger = new Ledger({ maxEntries: 2, maxResultChars: 4 });
    expect((await c.dispatch(a.url, { id: 'long', kind: 'io', ioMs: 400, payload: 'p' })).status).toBe(202);
    expect((await c.dispatch(a.url, { id: 'big', kind: 'io', ioMs: 1, payload: 'too long for the ledger' })).status).toBe(202);
    await until('big failed', 5000, async () => (await c.dispatchStatus(a.url, 'big')).body.state === 'failed');
    expect((await c.dispatchStatus(a.url, 'big')).body.error).toMatch(/result too large/);
    // `long` pending and one finished entry: the finished one is evicted, then the ledger is full.
    expect((await c.dispatch(a.url, { id: 'p2', kind: 'io', ioMs: 400 })).status).toBe(202);
    const full = await c.dispatch(a.url, { id: 'p3', kind: 'io', ioMs: 1 });
    expect(full.status).toBe(429);
    expect(full.body).toMatchObject({ limit: 'ledgerEntries' });
    const m = (await c.metrics(a.url)).body;
    expect(counter(m, 'swarmbench_agent_dispatch_total', 'outcome="rejected"')).toBe(1);
    expect(counter(m, 'swarmbench_agent_dispatch_total', 'outcome="accepted"')).toBe(3);
    expect(counter(m, 'swarmbench_agent_dispatch_total', 'outcome="failed"')).toBe(1);
    expect(Number.isNaN(counter(m, 'swarmbench_agent_dispatch_total', 'outcome="done"')) || counter(m, 'swarmbench_agent_dispatch_total', 'outcome="done"') === 0).toBe(true);
  });

  it('Ledger: finish says what it recorded; abandon releases a pending payload and keeps the counts exact', () => {
    const l = new Ledger({ maxResultChars: 4 });
    const a = l.accept({ id: 'a', kind: 'io', payload: 'p'.repeat(100) });
    expect(l.totalChars).toBe(101);
    l.abandon(a);
    expect(a.task).toBeNull();
    expect(a.state).toBe('pending');
    expect(l.totalChars).toBe(1);
    expect(l.pending).toBe(1);
    l.abandon(a); // idempotent
    expect(l.totalChars).toBe(1);
    // The same id accepted again replaces it: the counts stay exact.
    const a2 = l.accept({ id: 'a', kind: 'io', payload: 'qq' });
    expect(l.totalChars).toBe(3);
    expect(l.pending).toBe(1);
    expect(l.finish(a2, 'done', 'ok', null)).toBe('done');
    const b = l.accept({ id: 'b', kind: 'io' });
    expect(l.finish(b, 'done', 'too long', null)).toBe('failed');
    expect(l.view('b')).toMatchObject({ state: 'failed', result: null, error: expect.stringMatching(/ledgerResultChars = 4/) });
    // Finished already: the state it has, nothing changed.
    expect(l.finish(b, 'done', 'ok', null)).toBe('failed');
    expect(l.pending).toBe(0);
    expect(l.totalChars).toBe('a'.length + 'ok'.length + 'b'.length + (l.view('b').error ?? '').length);
  });

  it('a task dropped on purpose (loseAccepted) releases its payload and stays pending', async () => {
    const a = await agentAt();
    expect((await c.putFaults(a.url, { loseAccepted: 1 })).status).toBe(200);
    const before = a.ledger.totalChars;
    const payload = 'y'.repeat(10_000);
    expect((await c.dispatch(a.url, { id: 'lost-1', kind: 'io', ioMs: 1, payload })).status).toBe(202);
    expect(a.ledger.get('lost-1')?.task).toBeNull();
    expect(a.ledger.totalChars - before).toBe('lost-1'.length);
    expect((await c.dispatchStatus(a.url, 'lost-1')).body.state).toBe('pending');
    // The next one runs as usual.
    expect((await c.dispatch(a.url, { id: 'kept', kind: 'io', ioMs: 1, payload: 'k' })).status).toBe(202);
    await until('kept done', 5000, async () => (await c.dispatchStatus(a.url, 'kept')).body.state === 'done');
  });

  it('exports the drop counters with HELP text', async () => {
    const a = await agentAt();
    const st = [['ok', 1, 'p', 1], ['big', 1, 'p', 'x'.repeat(70_000)]];
    expect((await c.request('POST', a.url, '/v1/cluster/state', { f: 'p', st })).status).toBe(200);
    expect((await c.request('POST', a.url, '/v1/cluster/sync', { f: 'p', m: [{ id: 'bad id', url: 'nope', inc: 0, s: 'alive' }] })).status).toBeLessThan(500);
    const m = (await c.metrics(a.url)).body;
    for (const name of ['swarmbench_agent_state_dropped_total', 'swarmbench_agent_members_dropped_total', 'swarmbench_agent_event_subscribers_closed_total']) {
      expect(m).toMatch(new RegExp(`# HELP ${name} \\S`));
      expect(m).toMatch(new RegExp(`# TYPE ${name} counter`));
    }
    expect(counter(m, 'swarmbench_agent_state_dropped_total')).toBe(a.state.dropped);
    expect(a.state.dropped).toBe(1);
    expect(a.membership.dropped).toBeGreaterThanOrEqual(1);
    expect(counter(m, 'swarmbench_agent_members_dropped_total')).toBe(a.membership.dropped);
    expect(counter(m, 'swarmbench_agent_event_subscribers_closed_total')).toBe(0);
  });
});
