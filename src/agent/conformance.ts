/**
 * Conformance check of an agent against the agent contract v1 (docs/agent-contract.md).
 *
 * Every check exercises one part of the contract for real and verifies the answer against what
 * the caller computes itself (task digests, workflow outputs, versions, event order), so a server
 * that answers 200 to everything fails. Checks are independent: one failing does not stop the
 * others. The check leaves the agent as it found it (faults cleared), except for the tasks,
 * dispatches and state keys (prefixed `conformance-`) it created.
 * Two behavioural checks (`conformance-behaviour.ts`) judge many requests together: every one of
 * a few hundred dispatched tasks completes with the right result, and no member's reads go back
 * to an older version.
 * Authentication (contract "Authentication"): every call carries the token (`token`, default
 * `agentToken()`); the `authentication` check makes calls without it and with a wrong one, which
 * must be refused with 401 and have no effect, while `/healthz` answers without it.
 */
import { WebSocket } from 'ws';
import { agentToken, bearer, generateToken } from './auth.ts';
import { AgentClient, MAX_EVENT_MESSAGE_BYTES, type Reply } from './client.ts';
import { checkDispatchCompleteness, checkReadAfterWrite } from './conformance-behaviour.ts';
import type { AgentEvent, AgentInfo, DispatchTask, MembersResult, StateEntry, TaskResult } from './types.ts';
import { cpuTaskResult, expectedWorkflowOutput } from './work.ts';
import type { WorkflowStep } from './types.ts';
import { errorMessage } from '../errors.ts';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ConformanceOptions {
  /** A second agent of the same cluster: checks membership and state replication across the two. */
  peer?: string;
  /** Per-request deadline (ms). Default 10000. */
  timeoutMs?: number;
  /** Prefix for ids and keys the check creates. */
  prefix?: string;
  /** Tasks of the `dispatch completeness` check (default 300; 0 leaves the check out). */
  dispatchTasks?: number;
  /** The agent's bearer token; default `agentToken()` (SWARMBENCH_AGENT_TOKEN). */
  token?: string;
}

class CheckFailed extends Error {}

/** Events the `events` check keeps (it runs for a few seconds; a conforming agent sends about ten). */
const MAX_EVENTS_KEPT = 10_000;

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new CheckFailed(msg);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function expectStatus<T>(r: Reply<T>, status: number, what: string): T {
  const hint = r.status === 401 ? ' (the agent refused the token: give it with --token-file PATH or SWARMBENCH_AGENT_TOKEN)' : '';
  assert(r.status === status, `${what}: expected HTTP ${status}, got ${r.status} ${short(r.body)}${hint}`);
  return r.body;
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s === undefined ? '' : s.length > 160 ? `${s.slice(0, 160)}...` : s;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function poll<T>(what: string, deadlineMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    assert(Date.now() < end, `${what}: not within ${deadlineMs} ms`);
    await sleep(25);
  }
}

/** Run every check against the agent at `url`. */
export async function runConformance(url: string, opts: ConformanceOptions = {}): Promise<CheckResult[]> {
  const base = url.replace(/\/+$/, '');
  const token = opts.token ?? agentToken();
  const c = new AgentClient({ maxSockets: 256, timeoutMs: opts.timeoutMs ?? 10_000, token });
  // Calls without the token, and with a wrong one of the same shape (the `authentication` check).
  let wrong = generateToken();
  while (wrong === token) wrong = generateToken();
  const anonymous = new AgentClient({ maxSockets: 4, timeoutMs: opts.timeoutMs ?? 10_000, token: null });
  const impostor = new AgentClient({ maxSockets: 4, timeoutMs: opts.timeoutMs ?? 10_000, token: wrong });
  const run = `${opts.prefix ?? 'conformance'}-${process.pid}-${Date.now().toString(36)}`;
  const results: CheckResult[] = [];
  let info: AgentInfo | null = null;

  const check = async (name: string, fn: () => Promise<string>): Promise<void> => {
    try {
      results.push({ name, ok: true, detail: await fn() });
    } catch (err) {
      results.push({ name, ok: false, detail: errorMessage(err) });
    }
  };

  try {
    await check('healthz', async () => {
      const b = expectStatus(await c.healthz(base), 200, 'GET /healthz');
      assert(isObj(b) && b.ok === true, `GET /healthz: expected {"ok":true}, got ${short(b)}`);
      return '200 {"ok":true}';
    });

    await check('readyz', async () => {
      const r = await c.readyz(base);
      assert(r.status === 200, `GET /readyz: expected 200 on a joined agent, got ${r.status}`);
      return '200';
    });

    await check('info', async () => {
      const b = expectStatus(await c.info(base), 200, 'GET /v1/info') as unknown;
      assert(isObj(b), `GET /v1/info: not an object: ${short(b)}`);
      for (const k of ['id', 'url', 'version'] as const) assert(typeof b[k] === 'string', `info.${k} must be a string`);
      assert(b.contract === 'v1', `info.contract must be "v1", got ${short(b.contract)}`);
      for (const k of ['pid', 'startedAt', 'capacity', 'inFlight', 'members', 'stateVersion', 'agentsInProcess'] as const) {
        assert(num(b[k]), `info.${k} must be a number, got ${short(b[k])}`);
      }
      assert(isObj(b.memory) && num(b.memory.rss) && num(b.memory.heapUsed), 'info.memory must have rss and heapUsed');
      assert((b.capacity as number) >= 1, 'info.capacity must be >= 1');
      info = b as unknown as AgentInfo;
      return `id=${info.id} capacity=${info.capacity} members=${info.members}`;
    });
    const selfId = (): string => {
      assert(info, 'needs /v1/info');
      return info.id;
    };

    await check('authentication', () => checkAuthentication(base, run, { c, anonymous, impostor, wrong }));

    await check('time', async () => {
      const before = Date.now();
      const b = expectStatus(await c.time(base), 200, 'GET /v1/time') as unknown;
      const after = Date.now();
      assert(isObj(b) && num(b.now), `GET /v1/time: expected {"now": number}, got ${short(b)}`);
      // Clock skew is allowed, but not a wrong unit or epoch.
      assert(Math.abs(b.now - (before + after) / 2) < 24 * 3600 * 1000, `now=${b.now} is not epoch milliseconds`);
      return `offset ~${(b.now - (before + after) / 2).toFixed(1)} ms`;
    });

    await check('task io', async () => {
      const id = `${run}-io`;
      const b = expectStatus(await c.task(base, { id, kind: 'io', ioMs: 50, payload: 'hello' }), 200, 'POST /v1/tasks io') as unknown;
      assert(isObj(b), 'answer must be an object');
      assert(b.id === id, `id: expected ${id}, got ${short(b.id)}`);
      assert(b.kind === 'io', 'kind must be "io"');
      assert(b.result === 'hello', `io result must echo the payload, got ${short(b.result)}`);
      assert(num(b.runMs) && b.runMs >= 45, `runMs must be >= ioMs (50), got ${short(b.runMs)}`);
      assert(num(b.queuedMs) && b.queuedMs >= 0, 'queuedMs must be a number >= 0');
      assert(!info || b.agent === info.id, `agent must be ${info?.id}, got ${short(b.agent)}`);
      return `runMs=${b.runMs.toFixed(1)}`;
    });

    await check('task cpu', async () => {
      const id = `${run}-cpu`;
      const payload = `payload-${run}`;
      const want = cpuTaskResult(payload, 300);
      const b = expectStatus(await c.task(base, { id, kind: 'cpu', cpuRounds: 300, payload }), 200, 'POST /v1/tasks cpu') as unknown;
      assert(isObj(b) && b.result === want, `cpu result: expected ${want}, got ${short(isObj(b) ? b.result : b)}`);
      return 'digest matches';
    });

    await check('task idempotent', async () => {
      const id = `${run}-idem`;
      const first = expectStatus(await c.task(base, { id, kind: 'cpu', cpuRounds: 50, payload: 'a' }), 200, 'first') as TaskResult;
      // Same id, different body: an idempotent agent returns the first outcome without running again.
      const second = expectStatus(await c.task(base, { id, kind: 'cpu', cpuRounds: 50, payload: 'b' }), 200, 'second') as TaskResult;
      assert(second.result === first.result, 'a duplicate id must return the first outcome, not run again');
      assert(first.result === cpuTaskResult('a', 50), 'first result wrong');
      return 'duplicate id returned the first outcome';
    });

    await check('task validation', async () => {
      const r = await c.request('POST', base, '/v1/tasks', { id: `${run}-bad`, kind: 'nonsense' });
      assert(r.status === 400, `a task of unknown kind must be 400, got ${r.status}`);
      return '400 on a bad task';
    });

    await check('capacity 429', async () => {
      const cap = info?.capacity;
      assert(cap !== undefined, 'needs /v1/info');
      assert(cap <= 2048, `capacity ${cap} too large to saturate in a check`);
      const n = cap + Math.max(4, Math.ceil(cap / 4));
      const replies = await Promise.all(
        Array.from({ length: n }, (_, i) => c.task(base, { id: `${run}-sat-${i}`, kind: 'io', ioMs: 400 })),
      );
      const ok = replies.filter((r) => r.status === 200).length;
      const rejected = replies.filter((r) => r.status === 429);
      assert(rejected.length > 0, `${n} concurrent tasks on capacity ${cap}: none answered 429`);
      assert(ok <= cap, `${ok} tasks ran at once on capacity ${cap}`);
      const body = rejected[0]!.body as unknown;
      assert(isObj(body) && body.error === 'saturated', `429 body must be {"error":"saturated",...}, got ${short(body)}`);
      assert(ok + rejected.length === n, 'every task must be answered 200 or 429');
      return `${ok} ran, ${rejected.length} shed`;
    });

    await check('dispatch', async () => {
      const ids = [0, 1, 2, 3].map((i) => `${run}-d${i}`);
      for (const [i, id] of ids.entries()) {
        const b = expectStatus(await c.dispatch(base, { id, kind: 'cpu', cpuRounds: 10, payload: `p${i}` }), 202, 'POST /v1/dispatch') as unknown;
        assert(isObj(b) && b.accepted === true && b.id === id, `202 body must be {"id","accepted":true,...}, got ${short(b)}`);
        assert(typeof b.coordinator === 'string', 'coordinator must be a string');
      }
      const done = await poll('dispatched tasks done', 10_000, async () => {
        const r = await c.dispatchQuery(base, ids);
        assert(r.status === 200 && isObj(r.body) && Array.isArray(r.body.tasks), `POST /v1/dispatch/query: bad answer ${short(r.body)}`);
        const tasks = r.body.tasks as DispatchTask[];
        return tasks.every((t) => t.state === 'done') ? tasks : undefined;
      });
      for (const [i, t] of done.entries()) {
        assert(t.id === ids[i], 'query must answer in the order asked');
        assert(t.result === cpuTaskResult(`p${i}`, 10), `dispatched task ${t.id}: wrong result ${short(t.result)}`);
        assert(typeof t.executor === 'string' && t.attempts >= 1, 'executor and attempts must be set');
      }
      const one = expectStatus(await c.dispatchStatus(base, ids[0]!), 200, 'GET /v1/dispatch/:id');
      assert(one.state === 'done', `GET /v1/dispatch/:id: expected done, got ${short(one)}`);
      const unknown = expectStatus(await c.dispatchStatus(base, `${run}-never`), 200, 'GET /v1/dispatch/:unknown');
      assert(unknown.state === 'unknown', `an unknown id must be "unknown", got ${short(unknown.state)}`);
      return `4 done on ${[...new Set(done.map((t) => t.executor))].join(',')}`;
    });

    await check('members', async () => {
      const b = expectStatus(await c.members(base), 200, 'GET /v1/members') as unknown;
      assert(isObj(b) && Array.isArray(b.members) && num(b.alive), `bad members answer ${short(b)}`);
      const m = b as unknown as MembersResult;
      assert(m.self === selfId(), `self must be ${selfId()}, got ${m.self}`);
      const me = m.members.find((x) => x.id === m.self);
      assert(me && me.status === 'alive', 'the agent must list itself as alive');
      for (const x of m.members) {
        assert(['alive', 'suspect', 'dead', 'left'].includes(x.status), `bad status ${x.status}`);
        assert(typeof x.url === 'string' && num(x.incarnation) && num(x.lastSeenMs), `bad member ${short(x)}`);
      }
      const alive = m.members.filter((x) => x.status === 'alive').length;
      assert(alive === m.alive, `alive=${m.alive} but ${alive} members are listed alive`);
      return `${m.alive} alive`;
    });

    await check('state', async () => {
      const key = `${run}-key`;
      const miss = await c.getState(base, `${key}-missing`);
      assert(miss.status === 404, `GET of a missing key must be 404, got ${miss.status}`);
      const w1 = expectStatus(await c.putState(base, key, { n: 1 }), 200, 'PUT /v1/state') as StateEntry;
      assert(w1.key === key && num(w1.version) && w1.version >= 1 && typeof w1.writer === 'string', `bad write answer ${short(w1)}`);
      const r1 = expectStatus(await c.getState(base, key), 200, 'GET /v1/state') as StateEntry;
      assert(r1.version === w1.version && JSON.stringify(r1.value) === '{"n":1}', `read ${short(r1)} after write ${short(w1)}`);
      const w2 = expectStatus(await c.putState(base, key, { n: 2 }), 200, 'PUT /v1/state again') as StateEntry;
      assert(w2.version > w1.version, `versions must increase: ${w1.version} then ${w2.version}`);
      const r2 = expectStatus(await c.getState(base, key), 200, 'GET /v1/state again') as StateEntry;
      assert(r2.version === w2.version && JSON.stringify(r2.value) === '{"n":2}', `read ${short(r2)} after write ${short(w2)}`);
      return `versions ${w1.version} -> ${w2.version}`;
    });

    await check('ping', async () => {
      const peer = opts.peer ?? selfId();
      const r = await c.ping(base, peer, 5);
      const b = expectStatus(r, 200, 'POST /v1/ping') as unknown;
      assert(isObj(b) && Array.isArray(b.rttMs) && b.rttMs.length === 5, `expected 5 round trips, got ${short(b)}`);
      assert((b.rttMs as unknown[]).every((x) => num(x) && x >= 0), 'rttMs must be numbers >= 0');
      const bad = await c.request('POST', base, '/v1/ping', { peer: `${run}-no-such-agent`, count: 1 });
      assert(bad.status >= 400, `ping of an unknown peer must fail, got ${bad.status}`);
      return `rtt ${(b.rttMs as number[]).map((x) => x.toFixed(2)).join(' ')} ms`;
    });

    await check('workflow', async () => {
      const steps: WorkflowStep[] = [{ op: 'upper' }, { op: 'append', arg: '-x' }, { op: 'reverse' }, { op: 'sha256' }, { op: 'append', arg: '!' }];
      const input = `flow ${run}`;
      const b = expectStatus(await c.workflow(base, { id: `${run}-wf`, input, steps }), 200, 'POST /v1/workflows') as unknown;
      const want = expectedWorkflowOutput(input, steps);
      assert(isObj(b) && b.output === want, `workflow output: expected ${want}, got ${short(isObj(b) ? b.output : b)}`);
      assert(Array.isArray(b.hops) && b.hops.length === steps.length, 'one hop per step');
      return `${new Set((b.hops as { agent: string }[]).map((h) => h.agent)).size} agents`;
    });

    await check('events', async () => {
      const wsUrl = `${base.replace(/^http/, 'ws')}/v1/events`;
      const got: AgentEvent[] = [];
      // Bounded: messages of at most MAX_EVENT_MESSAGE_BYTES (a larger one closes the stream, and
      // the check fails on what it missed), at most MAX_EVENTS_KEPT of them, each parsed safely.
      const ws = new WebSocket(wsUrl, { maxPayload: MAX_EVENT_MESSAGE_BYTES, headers: { authorization: bearer(token) } });
      let unparsed = 0;
      // Listen before 'open': the hello may arrive in the same read as the upgrade answer.
      ws.on('message', (d) => {
        if (got.length >= MAX_EVENTS_KEPT) return;
        try {
          got.push(JSON.parse(String(d)) as AgentEvent);
        } catch {
          unparsed++;
        }
      });
      try {
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
          setTimeout(() => reject(new CheckFailed(`no WebSocket upgrade at ${wsUrl}`)), 5000);
        });
        await poll('hello event', 3000, async () => (got.length > 0 || unparsed > 0 ? true : undefined));
        assert(unparsed === 0, `${unparsed} event message(s) are not JSON`);
        assert(isObj(got[0]) && got[0].type === 'hello', `first event must be hello, got ${short(got[0])}`);
        const token = `${run}-mark`;
        const m = expectStatus(await c.mark(base, token), 200, 'POST /v1/events/mark');
        assert(m.token === token, 'mark answer must echo the token');
        await poll('mark event', 3000, async () => (got.some((e) => isObj(e) && e.type === 'mark' && isObj(e.data) && e.data.token === token) ? true : undefined));
        await poll('heartbeat event', 2500, async () => (got.some((e) => isObj(e) && e.type === 'heartbeat') ? true : undefined));
        assert(unparsed === 0, `${unparsed} event message(s) are not JSON`);
        assert(got.length < MAX_EVENTS_KEPT, `more than ${MAX_EVENTS_KEPT} events within a few seconds (an agent sends about one heartbeat a second)`);
        for (const [i, e] of got.entries()) {
          assert(isObj(e), `event ${i + 1} is not an object: ${short(e)}`);
          assert(e.seq === i + 1, `seq must increase by one per message: message ${i + 1} has seq ${e.seq}`);
          assert(num(e.ts) && isObj(e.data) && typeof e.agent === 'string', `bad event ${short(e)}`);
        }
        return `${got.length} events in order`;
      } finally {
        ws.terminate();
      }
    });

    await check('metrics', async () => {
      const r = await c.metrics(base);
      const text = expectStatus(r, 200, 'GET /metrics');
      assert(typeof text === 'string', 'metrics must be text');
      const required = [
        'swarmbench_agent_tasks_total',
        'swarmbench_agent_task_duration_seconds_bucket',
        'swarmbench_agent_inflight',
        'swarmbench_agent_capacity',
        'swarmbench_agent_members_alive',
        'swarmbench_agent_state_version',
        'swarmbench_agent_health_score',
        'process_resident_memory_bytes',
        'process_cpu_seconds_total',
      ];
      const missing = required.filter((n) => !new RegExp(`^${n}\\{[^}]*agent="[^"]+"`, 'm').test(text));
      assert(missing.length === 0, `missing (or without agent label): ${missing.join(', ')}`);
      assert(/^swarmbench_agent_tasks_total\{[^}]*outcome="ok"[^}]*\} [1-9]/m.test(text), 'tasks_total{outcome="ok"} must count the tasks run');
      return `${text.split('\n').filter((l) => l && !l.startsWith('#')).length} samples`;
    });

    await check('fault errorRate', async () => {
      try {
        expectStatus(await c.putFaults(base, { errorRate: 0.5 }), 200, 'PUT /v1/faults');
        const codes: number[] = [];
        for (let i = 0; i < 6; i++) codes.push((await c.task(base, { id: `${run}-err-${i}`, kind: 'io', ioMs: 1 })).status);
        const errors = codes.filter((s) => s === 500).length;
        assert(errors === 3, `errorRate 0.5 over 6 tasks must fail exactly 3 (deterministic), got ${codes.join(',')}`);
      } finally {
        await c.clearFaults(base);
      }
      const after = await c.task(base, { id: `${run}-err-after`, kind: 'io', ioMs: 1 });
      assert(after.status === 200, `after DELETE /v1/faults tasks must succeed, got ${after.status}`);
      return '3 of 6 failed, then cleared';
    });

    await check('fault latency', async () => {
      const t0 = performance.now();
      await c.time(base);
      const plain = performance.now() - t0;
      try {
        expectStatus(await c.putFaults(base, { latencyMs: 150 }), 200, 'PUT /v1/faults');
        const t1 = performance.now();
        expectStatus(await c.time(base), 200, 'GET /v1/time');
        const slow = performance.now() - t1;
        assert(slow >= 150, `latencyMs 150: request took ${slow.toFixed(1)} ms`);
        return `${plain.toFixed(1)} ms -> ${slow.toFixed(1)} ms`;
      } finally {
        await c.clearFaults(base);
      }
    });

    await check('fault breach', async () => {
      const health = async (): Promise<number | undefined> => {
        const text = (await c.metrics(base)).body;
        const m = /^swarmbench_agent_health_score\{[^}]*\} (\S+)/m.exec(typeof text === 'string' ? text : '');
        return m ? Number(m[1]) : undefined;
      };
      try {
        expectStatus(await c.putFaults(base, { breach: { healthScore: 0.1 } }), 200, 'PUT /v1/faults');
        const h = await health();
        assert(h === 0.1, `breach healthScore 0.1: gauge reads ${h}`);
      } finally {
        await c.clearFaults(base);
      }
      const h2 = await health();
      assert(h2 === 1, `after clearing, health must be 1, got ${h2}`);
      return 'gauge 0.1, then 1';
    });

    await check('fault loseAccepted', async () => {
      const ids = [0, 1, 2].map((i) => `${run}-lose-${i}`);
      try {
        expectStatus(await c.putFaults(base, { loseAccepted: 1 }), 200, 'PUT /v1/faults');
        for (const id of ids) expectStatus(await c.dispatch(base, { id, kind: 'io', ioMs: 1 }), 202, 'POST /v1/dispatch');
      } finally {
        await c.clearFaults(base);
      }
      // Two complete, one stays pending for good.
      await poll('two of three done', 10_000, async () => {
        const t = (await c.dispatchQuery(base, ids)).body.tasks;
        return t.filter((x) => x.state === 'done').length === 2 ? true : undefined;
      });
      await sleep(300);
      const t = (await c.dispatchQuery(base, ids)).body.tasks;
      const pending = t.filter((x) => x.state === 'pending').length;
      assert(pending === 1, `loseAccepted 1: expected 1 task pending for good, got ${t.map((x) => x.state).join(',')}`);
      return '1 of 3 accepted tasks never completed';
    });

    const dispatchTasks = opts.dispatchTasks ?? 300;
    if (dispatchTasks > 0) {
      await check('dispatch completeness', () => checkDispatchCompleteness(c, base, run, { tasks: dispatchTasks }));
    }
    await check('read after write', () =>
      checkReadAfterWrite(c, base, run, opts.peer ? { peer: opts.peer.replace(/\/+$/, '') } : {}),
    );

    if (opts.peer) {
      const peer = opts.peer.replace(/\/+$/, '');
      await check('peer membership', async () => {
        const pi = expectStatus(await c.info(peer), 200, 'peer GET /v1/info');
        const mine = expectStatus(await c.members(base), 200, 'GET /v1/members');
        assert(mine.members.some((m) => m.id === pi.id && m.status === 'alive'), `peer ${pi.id} not alive in the agent's view`);
        const theirs = expectStatus(await c.members(peer), 200, 'peer GET /v1/members');
        assert(theirs.members.some((m) => m.id === selfId() && m.status === 'alive'), `agent not alive in the peer's view`);
        return `both see each other (${mine.alive} / ${theirs.alive} alive)`;
      });
      await check('peer state replication', async () => {
        const key = `${run}-replicated`;
        const w = expectStatus(await c.putState(base, key, 'v'), 200, 'PUT /v1/state') as StateEntry;
        const t0 = performance.now();
        await poll('the peer reads the write', 5000, async () => {
          const r = await c.getState(peer, key);
          return r.status === 200 && (r.body as StateEntry).version >= w.version ? true : undefined;
        });
        return `visible at the peer after ${(performance.now() - t0).toFixed(0)} ms`;
      });
    }
  } finally {
    c.close();
    anonymous.close();
    impostor.close();
  }
  return results;
}

/**
 * The `authentication` check: `/healthz` answers without a token; `GET /v1/info`, `GET /metrics`,
 * `POST /v1/tasks`, `PUT /v1/faults` and the `/v1/events` upgrade are refused with 401 both
 * without the token and with a wrong one; and the refused calls had no effect (the refused task
 * id runs afresh when sent with the token, the refused fault is not set).
 */
async function checkAuthentication(
  base: string,
  run: string,
  clients: { c: AgentClient; anonymous: AgentClient; impostor: AgentClient; wrong: string },
): Promise<string> {
  const { c, anonymous, impostor, wrong } = clients;
  const health = await anonymous.healthz(base);
  assert(health.status === 200, `GET /healthz without a token: expected 200 (the probes need no token), got ${health.status}`);
  const id = `${run}-auth`;
  let refused = 0;
  for (const [who, client] of [['without a token', anonymous], ['with a wrong token', impostor]] as const) {
    const calls: [string, () => Promise<Reply<unknown>>][] = [
      ['GET /v1/info', () => client.info(base)],
      ['GET /metrics', () => client.metrics(base)],
      ['POST /v1/tasks', () => client.task(base, { id, kind: 'io', ioMs: 1, payload: 'refused' })],
      ['PUT /v1/faults', () => client.putFaults(base, { latencyMs: 1 })],
    ];
    for (const [what, call] of calls) {
      const r = await call();
      assert(r.status === 401, `${what} ${who}: expected HTTP 401, got ${r.status} ${short(r.body)}`);
      refused++;
    }
    const ws = await upgradeStatus(`${base.replace(/^http/, 'ws')}/v1/events`, client === impostor ? bearer(wrong) : undefined);
    assert(ws === 401, `the /v1/events upgrade ${who}: expected HTTP 401, got ${ws === 101 ? 'the upgrade (101)' : ws}`);
    refused++;
  }
  try {
    const faults = expectStatus(await c.request('GET', base, '/v1/faults'), 200, 'GET /v1/faults');
    assert(!isObj(faults) || faults.latencyMs === undefined || faults.latencyMs === 0, `a refused PUT /v1/faults took effect: ${short(faults)}`);
  } finally {
    await c.clearFaults(base).catch(() => undefined);
  }
  const t = expectStatus(await c.task(base, { id, kind: 'io', ioMs: 1, payload: 'accepted' }), 200, 'POST /v1/tasks with the token') as unknown;
  assert(isObj(t) && t.result === 'accepted', `a refused task ran anyway: its id answers ${short(isObj(t) ? t.result : t)} (an idempotent agent returns the first run's outcome)`);
  return `${refused} calls refused with 401, /healthz open`;
}

/** The status the server answers a WebSocket upgrade with (101 when it upgrades; 0 on a transport error). */
function upgradeStatus(url: string, authorization?: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { handshakeTimeout: 5000, ...(authorization ? { headers: { authorization } } : {}) });
    const done = (status: number): void => {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve(status);
    };
    ws.once('open', () => done(101));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    ws.once('error', () => done(0));
  });
}
