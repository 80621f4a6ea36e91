/**
 * Agents authenticate (src/agent/auth.ts, docs/agent-contract.md "Authentication"): every route
 * of the reference agent but `/healthz` and `/readyz` answers 401 without the run's bearer token
 * and with a wrong one (the WebSocket upgrade and the gossip routes included), and the refused
 * call has no effect; the token check is constant-time on digests; the process token comes from
 * SWARMBENCH_AGENT_TOKEN (validated, errors naming the variable, never the value) or is generated
 * and exported; token files are bounded and created 0600; the harness's clients (AgentClient, the
 * load generators, the event stream) send it; `swarmbench agent` refuses to start without one and
 * never prints it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Agent } from '../../src/agent/agent.ts';
import {
  AgentTokenError,
  agentToken,
  bearer,
  checkBearer,
  generateToken,
  METRICS_TOKEN_ENV,
  metricsToken,
  readOrCreateTokenFile,
  readTokenFile,
  TOKEN_ENV,
  tokenProblem,
  useAgentToken,
  validateToken,
} from '../../src/agent/auth.ts';
import { resolveMetricsToken, resolveToken } from '../../src/agent/cli.ts';
import { AgentClient, AgentClientError } from '../../src/agent/client.ts';
import { startClosedLoop } from '../../src/bench/load/closed.ts';
import { runLoad } from '../../src/bench/load/generator.ts';
import { AgentEventStream } from '../../src/bench/monitoring/dashboard.ts';
import { CLI_ENTRY } from '../../src/paths.ts';

const TOKEN = 'run-token-0123456789abcdefghijklmnop';
const WRONG = 'run-token-0123456789abcdefghijklmnoq';
const work = mkdtempSync(join(tmpdir(), 'agent-auth-'));
const started: Agent[] = [];
const clients: AgentClient[] = [];

function agent(id: string, seeds: string[] = [], token = TOKEN): Agent {
  const a = new Agent({ id, host: '127.0.0.1', port: 0, seeds, capacity: 8, gossipIntervalMs: 50, failureTimeoutMs: 1000, token });
  started.push(a);
  return a;
}

function client(token: string | null): AgentClient {
  const c = new AgentClient({ timeoutMs: 5000, token });
  clients.push(c);
  return c;
}

async function until(what: string, ms: number, fn: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Status of a WebSocket upgrade of `/v1/events` (101 when it opens). */
function upgrade(url: string, authorization?: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/events`, authorization ? { headers: { authorization } } : {});
    const done = (s: number) => {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve(s);
    };
    ws.once('open', () => done(101));
    ws.once('unexpected-response', (_q, res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    ws.once('error', () => done(0));
  });
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((a) => a.close()));
  for (const c of clients.splice(0)) c.close();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('checkBearer', () => {
  it('accepts exactly "Bearer <token>" (scheme in any case) and nothing else', () => {
    expect(checkBearer(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(checkBearer(`bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(checkBearer(`BEARER  ${TOKEN} `, TOKEN)).toBe(true);
    for (const bad of [undefined, '', 'Bearer', `Bearer ${WRONG}`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, TOKEN, `Bearer ${TOKEN} extra`]) {
      expect(checkBearer(bad, TOKEN), String(bad)).toBe(false);
    }
    expect(checkBearer([`Bearer ${TOKEN}`], TOKEN)).toBe(false);
    // An empty expected token never matches (no agent is open by accident).
    expect(checkBearer('Bearer ', '')).toBe(false);
  });

  it('compares digests of equal length whatever the offered length (timingSafeEqual never sees unequal buffers)', () => {
    // timingSafeEqual throws on buffers of unequal length: offered tokens of any length must be
    // refused by comparison, not by an exception or an early length test.
    for (const n of [1, 15, TOKEN.length - 1, TOKEN.length, TOKEN.length + 1, 512, 8000]) {
      const offered = 'y'.repeat(n);
      expect(() => checkBearer(bearer(offered), TOKEN)).not.toThrow();
      expect(checkBearer(bearer(offered), TOKEN)).toBe(false);
    }
    // Differing only in the last character, or only in the first: refused alike.
    expect(checkBearer(bearer(`${TOKEN.slice(0, -1)}x`), TOKEN)).toBe(false);
    expect(checkBearer(bearer(`x${TOKEN.slice(1)}`), TOKEN)).toBe(false);
    // The expected digest is cached per token: switching tokens is not confused by the cache.
    expect(checkBearer(bearer(WRONG), WRONG)).toBe(true);
    expect(checkBearer(bearer(WRONG), TOKEN)).toBe(false);
    expect(checkBearer(bearer(TOKEN), TOKEN)).toBe(true);
  });
});

describe('the process token', () => {
  const saved = process.env[TOKEN_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[TOKEN_ENV];
    else process.env[TOKEN_ENV] = saved;
  });

  it('is SWARMBENCH_AGENT_TOKEN when valid; an invalid one is an error naming the variable, never the value', () => {
    process.env[TOKEN_ENV] = TOKEN;
    expect(agentToken()).toBe(TOKEN);
    for (const [bad, why] of [
      ['short-secret', /must be 16\.\.512 characters, has 12/],
      ['', /is empty/],
      ['with a space in the middle!!', /printable ASCII/],
      [`ctl\u0007${'x'.repeat(20)}`, /printable ASCII/],
      ['x'.repeat(513), /16\.\.512/],
    ] as const) {
      process.env[TOKEN_ENV] = bad;
      let err: unknown;
      try {
        agentToken();
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).toBeInstanceOf(AgentTokenError);
      expect((err as Error).message).toMatch(new RegExp(`^${TOKEN_ENV}: the agent token`));
      expect((err as Error).message).toMatch(why);
      if (bad.length > 0) expect((err as Error).message).not.toContain(bad);
    }
  });

  it('without the variable: generated once (32 random bytes, base64url) and exported for child processes', () => {
    delete process.env[TOKEN_ENV];
    const t = agentToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(process.env[TOKEN_ENV]).toBe(t);
    expect(agentToken()).toBe(t);
    expect(generateToken()).not.toBe(t);
    useAgentToken(TOKEN, '--agent-token-file f');
    expect(agentToken()).toBe(TOKEN);
    expect(() => useAgentToken('short', '--agent-token-file f')).toThrow(/^--agent-token-file f: the agent token must be 16/);
    expect(tokenProblem(TOKEN)).toBeNull();
    expect(() => validateToken('tiny', 'X')).toThrow(/^X: /);
  });

  it('token files: trimmed, bounded, regular files only, created 0600 when missing; errors name the file', () => {
    const f = join(work, 'tok');
    writeFileSync(f, `\n  ${TOKEN}  \n`);
    expect(readTokenFile(f, '--token-file')).toBe(TOKEN);
    writeFileSync(f, 'x'.repeat(5000));
    expect(() => readTokenFile(f, '--token-file')).toThrow(/--token-file: .*tok is larger than 4096 bytes/);
    writeFileSync(f, 'short-secret');
    expect(() => readTokenFile(f, '--token-file')).toThrow(/--token-file .*tok: the agent token/);
    writeFileSync(f, 'two words of secret text here');
    expect(() => readTokenFile(f, '--token-file')).toThrow(/printable ASCII/);
    expect(() => readTokenFile(f, '--token-file')).not.toThrow(/words/);
    mkdirSync(join(work, 'dir'), { recursive: true });
    expect(() => readTokenFile(join(work, 'dir'), '--token-file')).toThrow(/is not a regular file/);
    expect(() => readTokenFile(join(work, 'none'), '--token-file')).toThrow(/--token-file: cannot read .*none: ENOENT/);

    const created = join(work, 'created-token');
    const t1 = readOrCreateTokenFile(created, '--token-file');
    expect(t1).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(created).mode & 0o777).toBe(0o600);
    expect(readOrCreateTokenFile(created, '--token-file')).toBe(t1);
    expect(readFileSync(created, 'utf8').trim()).toBe(t1);
    expect(() => readOrCreateTokenFile(join(work, 'no-such-dir', 't'), '--token-file')).toThrow(/--token-file: cannot create/);
  });

  it('swarmbench agent: --token-file, else the variable, else a refusal saying how', () => {
    const f = join(work, 'cli-token');
    writeFileSync(f, TOKEN);
    expect(resolveToken(new Map([['token-file', f]]), { [TOKEN_ENV]: WRONG })).toBe(TOKEN);
    expect(resolveToken(new Map(), { [TOKEN_ENV]: WRONG })).toBe(WRONG);
    expect(() => resolveToken(new Map(), {})).toThrow(/no agent token: give --token-file PATH .* or set SWARMBENCH_AGENT_TOKEN/);
    expect(() => resolveToken(new Map(), { [TOKEN_ENV]: 'short' })).toThrow(/^SWARMBENCH_AGENT_TOKEN: /);
    expect(() => resolveToken(new Map([['token-file', '']]), {})).toThrow(/--token-file: give a path/);
  });
});

/** Every protected route of the reference agent, with a request the route would accept. */
const PROTECTED: [string, string, unknown?][] = [
  ['GET', '/v1/info'],
  ['GET', '/v1/time'],
  ['POST', '/v1/tasks', { id: 'auth-t', kind: 'io', ioMs: 1, payload: 'p' }],
  ['POST', '/v1/dispatch', { id: 'auth-d', kind: 'io', ioMs: 1 }],
  ['POST', '/v1/dispatch/query', { ids: ['auth-d'] }],
  ['GET', '/v1/dispatch/auth-d'],
  ['GET', '/v1/members'],
  ['PUT', '/v1/state/auth-k', { value: 1 }],
  ['GET', '/v1/state/auth-k'],
  ['POST', '/v1/ping', { peer: 'a1', count: 1 }],
  ['POST', '/v1/workflows', { id: 'auth-w', input: 'x', steps: [{ op: 'upper' }] }],
  ['POST', '/v1/events/mark', { token: 'm' }],
  ['GET', '/metrics'],
  ['GET', '/v1/faults'],
  ['PUT', '/v1/faults', { latencyMs: 1 }],
  ['DELETE', '/v1/faults'],
  ['POST', '/v1/cluster/echo', {}],
  ['POST', '/v1/cluster/step', { op: 'upper', input: 'x' }],
  ['POST', '/v1/cluster/join', { id: 'evil', url: 'http://127.0.0.1:1', inc: 0 }],
  ['POST', '/v1/cluster/gossip', { f: 'evil', m: [] }],
  ['POST', '/v1/cluster/sync', { f: 'evil', m: [] }],
  ['POST', '/v1/cluster/state', { f: 'evil', st: [] }],
  ['GET', '/no/such/route'],
];

describe('the reference agent', () => {
  it('answers 401 on every route but /healthz and /readyz without the token and with a wrong one; the refused calls have no effect', async () => {
    const a = agent('a1');
    const url = await a.start();
    await until('ready', 5000, () => a.ready);
    const anon = client(null);
    const impostor = client(WRONG);
    const ok = client(TOKEN);
    for (const c of [anon, impostor]) {
      expect((await c.healthz(url)).status).toBe(200);
      expect((await c.readyz(url)).status).toBe(200);
      for (const [m, path, body] of PROTECTED) {
        const r = await c.request(m, url, path, body);
        expect(r.status, `${m} ${path}`).toBe(401);
        expect(r.body).toEqual({ error: 'missing or wrong bearer token' });
      }
    }
    // www-authenticate says which scheme.
    const raw = await fetch(`${url}/v1/info`);
    expect(raw.status).toBe(401);
    expect(raw.headers.get('www-authenticate')).toBe('Bearer');
    // Nothing the refused calls asked for happened.
    expect((await ok.request('GET', url, '/v1/faults')).body).toEqual({});
    expect((await ok.getState(url, 'auth-k')).status).toBe(404);
    expect((await ok.dispatchStatus(url, 'auth-d')).body.state).toBe('unknown');
    expect((await ok.members(url)).body.members.map((x) => x.id)).toEqual(['a1']);
    expect((await ok.task(url, { id: 'auth-t', kind: 'io', ioMs: 1, payload: 'fresh' })).body).toMatchObject({ result: 'fresh' });
    // With the token every route answers as the contract says (no 401 anywhere).
    for (const [m, path, body] of PROTECTED) {
      const r = await ok.request(m, url, path, body);
      expect(r.status, `${m} ${path} with the token`).not.toBe(401);
    }
    expect((await ok.info(url)).status).toBe(200);
    expect((await ok.metrics(url)).body).toMatch(/swarmbench_agent_inflight/);
  });

  it('refuses the WebSocket upgrade of /v1/events without the token (401, socket closed) and upgrades with it', async () => {
    const a = agent('ws1');
    const url = await a.start();
    expect(await upgrade(url)).toBe(401);
    expect(await upgrade(url, bearer(WRONG))).toBe(401);
    expect(await upgrade(url, `Basic ${TOKEN}`)).toBe(401);
    expect(a.events.subscribers).toBe(0);
    expect(await upgrade(url, bearer(TOKEN))).toBe(101);
  });

  it('agents of one token form a cluster; an agent with another token cannot join it', async () => {
    const a = agent('c1');
    const urlA = await a.start();
    const b = agent('c2', [urlA]);
    await b.start();
    await until('two members', 10_000, () => a.membership.aliveCount() === 2 && b.membership.aliveCount() === 2);
    const stranger = agent('c3', [urlA], WRONG);
    await stranger.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(stranger.ready).toBe(false);
    expect(a.membership.list().map((m) => m.id).sort()).toEqual(['c1', 'c2']);
    // State written at one agent reaches the other through the authenticated push.
    const ok = client(TOKEN);
    expect((await ok.putState(urlA, 'shared', 7)).status).toBe(200);
    await until('replicated', 5000, () => b.state.get('shared')?.value === 7);
  });

  it('never shows its token: not in /v1/info, not in its clients or their errors', async () => {
    const a = agent('s1');
    const url = await a.start();
    const info = JSON.stringify((await client(TOKEN).info(url)).body);
    expect(info).not.toContain(TOKEN);
    expect(JSON.stringify(a.info())).not.toContain(TOKEN);
    const c = client(TOKEN);
    expect(JSON.stringify(c)).not.toContain(TOKEN);
    const err = await c.info('http://127.0.0.1:1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentClientError);
    expect(`${(err as Error).message} ${JSON.stringify(err)}`).not.toContain(TOKEN);
    expect(() => new AgentClient({ token: 'short' })).toThrow(/^ClientOptions\.token: the agent token must be 16/);
    expect(() => new Agent({ id: 'x', host: '127.0.0.1', port: 0, seeds: [], capacity: 1, gossipIntervalMs: 50, failureTimeoutMs: 100, token: 'no' })).toThrow(/^AgentOptions\.token: /);
  });
});

describe('the scrape token (SWARMBENCH_METRICS_TOKEN, GET /metrics only)', () => {
  const SCRAPE = 'scrape-token-0123456789abcdefghijk';

  function scraped(metricsTokenOpt: string | null | undefined): Agent {
    const a = new Agent({
      id: `m${started.length}`,
      host: '127.0.0.1',
      port: 0,
      seeds: [],
      capacity: 8,
      gossipIntervalMs: 50,
      failureTimeoutMs: 1000,
      token: TOKEN,
      ...(metricsTokenOpt !== undefined ? { metricsToken: metricsTokenOpt } : {}),
    });
    started.push(a);
    return a;
  }

  it('opens GET /metrics and nothing else: every other route, other methods on /metrics and the event stream are 401', async () => {
    const a = scraped(SCRAPE);
    const url = await a.start();
    await until('ready', 5000, () => a.ready);
    const prom = client(SCRAPE);
    const m = await prom.metrics(url);
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/swarmbench_agent_inflight/);
    for (const [method, path, body] of PROTECTED) {
      if (method === 'GET' && path === '/metrics') continue;
      const r = await prom.request(method, url, path, body);
      expect(r.status, `${method} ${path} with the scrape token`).toBe(401);
    }
    expect((await prom.request('POST', url, '/metrics', {})).status).toBe(401);
    expect((await prom.request('GET', url, '/metrics?x=1')).status).toBe(200);
    expect(await upgrade(url, bearer(SCRAPE))).toBe(401);
    // Nothing the refused calls asked for happened; the run token still opens everything.
    const ok = client(TOKEN);
    expect((await ok.request('GET', url, '/v1/faults')).body).toEqual({});
    expect((await ok.getState(url, 'auth-k')).status).toBe(404);
    expect((await ok.metrics(url)).status).toBe(200);
    expect((await client(WRONG).metrics(url)).status).toBe(401);
    expect((await client(null).metrics(url)).status).toBe(401);
    // Never shown.
    expect(JSON.stringify((await ok.info(url)).body)).not.toContain(SCRAPE);
  });

  it('without one (the default when the variable is absent), only the run token opens /metrics', async () => {
    const saved = process.env[METRICS_TOKEN_ENV];
    delete process.env[METRICS_TOKEN_ENV];
    try {
      for (const a of [scraped(null), scraped(undefined)]) {
        const url = await a.start();
        expect((await client(SCRAPE).metrics(url)).status).toBe(401);
        expect((await client(TOKEN).metrics(url)).status).toBe(200);
      }
      // The variable is the default of an agent made in this process.
      process.env[METRICS_TOKEN_ENV] = SCRAPE;
      const b = scraped(undefined);
      expect((await client(SCRAPE).metrics(await b.start())).status).toBe(200);
    } finally {
      if (saved === undefined) delete process.env[METRICS_TOKEN_ENV];
      else process.env[METRICS_TOKEN_ENV] = saved;
    }
  });

  it('is validated like the run token (errors name the variable or the file, never the value), and its file is read, never created', () => {
    expect(metricsToken({})).toBeNull();
    // Empty is absent: an optional secretKeyRef whose key is missing may render as an empty variable.
    expect(metricsToken({ [METRICS_TOKEN_ENV]: '' })).toBeNull();
    expect(metricsToken({ [METRICS_TOKEN_ENV]: SCRAPE })).toBe(SCRAPE);
    for (const bad of ['short', `${'x'.repeat(20)} y`, 'z'.repeat(513)]) {
      let msg = '';
      try {
        metricsToken({ [METRICS_TOKEN_ENV]: bad });
      } catch (err) {
        expect(err).toBeInstanceOf(AgentTokenError);
        msg = (err as Error).message;
      }
      expect(msg, JSON.stringify(bad)).toMatch(/^SWARMBENCH_METRICS_TOKEN: the metrics scrape token /);
      if (bad.length > 0) expect(msg).not.toContain(bad);
    }
    expect(() => new Agent({ id: 'x', host: '127.0.0.1', port: 0, seeds: [], capacity: 1, gossipIntervalMs: 50, failureTimeoutMs: 100, token: TOKEN, metricsToken: 'no' })).toThrow(
      /^AgentOptions\.metricsToken: the metrics scrape token must be 16/,
    );
    // swarmbench agent: --metrics-token-file, else the variable, else none.
    const f = join(work, 'scrape-token');
    writeFileSync(f, `${SCRAPE}\n`, { mode: 0o600 });
    expect(resolveMetricsToken(new Map([['metrics-token-file', f]]), { [METRICS_TOKEN_ENV]: WRONG })).toBe(SCRAPE);
    expect(resolveMetricsToken(new Map(), { [METRICS_TOKEN_ENV]: WRONG })).toBe(WRONG);
    expect(resolveMetricsToken(new Map(), {})).toBeNull();
    const missing = join(work, 'no-scrape-token');
    expect(() => resolveMetricsToken(new Map([['metrics-token-file', missing]]), {})).toThrow(/^--metrics-token-file: cannot read .*no-scrape-token: ENOENT/);
    expect(() => statSync(missing)).toThrow();
    const big = join(work, 'big-scrape-token');
    writeFileSync(big, 'x'.repeat(5000));
    expect(() => resolveMetricsToken(new Map([['metrics-token-file', big]]), {})).toThrow(/is larger than 4096 bytes/);
    const short = join(work, 'short-scrape-token');
    writeFileSync(short, 'tiny');
    expect(() => resolveMetricsToken(new Map([['metrics-token-file', short]]), {})).toThrow(/^--metrics-token-file .*short-scrape-token: the metrics scrape token must be 16/);
    expect(() => resolveMetricsToken(new Map([['metrics-token-file', '']]), {})).toThrow(/--metrics-token-file: give a path/);
  });
});

describe('the harness clients send the token', () => {
  it('open-loop and closed-loop load, and dispatch queries, carry it; a wrong token is 401 for every task', async () => {
    const a = agent('l1');
    const url = await a.start();
    await until('ready', 5000, () => a.ready);
    const good = await runLoad({ targets: [url], rate: 100, durationMs: 200, ioMs: 1, token: TOKEN });
    expect(good.counts.ok).toBe(good.counts.offered);
    const bad = await runLoad({ targets: [url], rate: 100, durationMs: 200, ioMs: 1, token: WRONG });
    expect(bad.counts.ok).toBe(0);
    expect(bad.counts.error).toBe(bad.counts.offered);
    expect(bad.errorKinds).toEqual({ 'http 401': bad.counts.offered });
    const disp = await runLoad({ targets: [url], rate: 100, durationMs: 200, ioMs: 1, mode: 'dispatch', token: TOKEN, drainMs: 3000 });
    expect(disp.counts.ok).toBe(disp.counts.offered);
    const closed = await startClosedLoop({ coordinators: [url], outstanding: 4, rampMs: 10, durationMs: 200, cpuFraction: 0, ioMs: 1, cpuRounds: 1, token: TOKEN }).finish(3000);
    expect(closed.counts.ok).toBeGreaterThan(0);
    expect(closed.counts.ok).toBe(closed.counts.offered);
    const refused = await startClosedLoop({ coordinators: [url], outstanding: 2, rampMs: 10, durationMs: 100, cpuFraction: 0, ioMs: 1, cpuRounds: 1, token: WRONG }).finish(1000);
    expect(refused.counts.ok).toBe(0);
    expect(refused.counts.error).toBe(refused.counts.offered);
  });

  it('the event stream subscribes with the token and is refused without it', async () => {
    const a = agent('e1');
    const url = await a.start();
    const got: string[] = [];
    const good = new AgentEventStream({ id: 'e1', url }, { reconnect: false, token: TOKEN, onEvent: (ev) => got.push(ev.type) });
    await good.ready(5000);
    expect(got[0]).toBe('hello');
    good.close();
    const bad = new AgentEventStream({ id: 'e1', url }, { reconnect: false, token: WRONG, onEvent: () => undefined });
    await expect(bad.ready(1500)).rejects.toThrow(/401/);
    bad.close();
  });
});

describe('swarmbench agent (the process)', () => {
  let env: NodeJS.ProcessEnv;
  beforeAll(() => {
    env = { ...process.env };
    delete env[TOKEN_ENV];
  });

  function run(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string; url?: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI_ENTRY, 'agent', '--host', '127.0.0.1', '--port', '0', '--id', 'cli-auth', ...args], { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      createInterface({ input: child.stdout }).on('line', (l) => {
        out += `${l}\n`;
        const ev = JSON.parse(l) as { event: string; url: string };
        if (ev.event === 'listening') {
          const url = ev.url;
          void (async () => {
            const anon = client(null);
            const authed = client(readFileSync(join(work, 'cli-file'), 'utf8').trim());
            out += `anon=${(await anon.info(url)).status} authed=${(await authed.info(url)).status}\n`;
            child.kill('SIGTERM');
          })();
        }
      });
      child.once('exit', (code) => resolve({ code, out, err }));
    });
  }

  it('refuses to start without a token, naming both ways to give one', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no agent token: give --token-file PATH .* or set SWARMBENCH_AGENT_TOKEN/);
    const bad = await run([], { [TOKEN_ENV]: 'tooshort' });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/SWARMBENCH_AGENT_TOKEN: the agent token must be 16\.\.512 characters/);
    expect(bad.err).not.toContain('tooshort');
  });

  it('--token-file creates the token (0600), requires it on /v1/info, and never prints it', async () => {
    const file = join(work, 'cli-file');
    const r = await run(['--token-file', file]);
    const token = readFileSync(file, 'utf8').trim();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(r.out).toMatch(/"event":"listening"/);
    expect(r.out).toMatch(/anon=401 authed=200/);
    expect(r.code).toBe(0);
    expect(`${r.out}${r.err}`).not.toContain(token);
  });

  it('swarmbench run --agent-url: a refused token, a malformed token file or an unreadable one is exit 2 before anything starts', async () => {
    const a = agent('run-fixed');
    const url = await a.start();
    await until('ready', 5000, () => a.ready);
    const manifest = join(work, 'run.yaml');
    writeFileSync(manifest, 'apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: auth}\nspec:\n  mode: quick\n');
    const wrongFile = join(work, 'wrong-token');
    writeFileSync(wrongFile, `${WRONG}\n`);
    const shortFile = join(work, 'short-token');
    writeFileSync(shortFile, 'tiny');
    const swarmbench = (args: string[]): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI_ENTRY, 'run', '-f', manifest, '--out', join(work, 'out'), '--categories', 'integration', '--agent-url', url, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.once('exit', (code) => resolve({ code, out }));
      });
    const none = await swarmbench([]);
    expect(none.code).toBe(2);
    expect(none.out).toMatch(/--agent-url\[0\]: .* refused the agent token \(401 on GET \/v1\/info\): give your agents' token with --agent-token-file PATH or SWARMBENCH_AGENT_TOKEN[\s\S]*nothing was started/);
    const wrong = await swarmbench(['--agent-token-file', wrongFile]);
    expect(wrong.code).toBe(2);
    expect(wrong.out).toMatch(/refused the agent token/);
    expect(wrong.out).not.toContain(WRONG);
    const short = await swarmbench(['--agent-token-file', shortFile]);
    expect(short.code).toBe(2);
    expect(short.out).toMatch(/--agent-token-file .*short-token: the agent token must be 16\.\.512 characters/);
    const missing = await swarmbench(['--agent-token-file', join(work, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.out).toMatch(/--agent-token-file: cannot read .*nope: ENOENT/);
  });
});
