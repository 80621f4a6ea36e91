/**
 * The alert evaluator and the dashboard stream, against small WebSocket servers that speak the
 * agent contract's event stream (`/v1/events`: hello on connect, then heartbeat/task/metric...).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertEvaluator, breaches, normaliseMetricName } from '../../src/bench/monitoring/alerts.ts';
import {
  Dashboard,
  eventsUrl,
  parseAgentEvent,
  subscribeDashboard,
  type AgentRef,
  type DashboardMessage,
  type DashboardUpdate,
} from '../../src/bench/monitoring/dashboard.ts';

interface FakeAgent {
  id: string;
  url: string;
  emit(type: string, data?: Record<string, unknown>): void;
  dropConnections(): void;
  connections(): number;
  close(): Promise<void>;
}

async function fakeAgent(id: string): Promise<FakeAgent> {
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, path: '/v1/events' });
  const seqs = new Map<WebSocket, number>();
  const send = (ws: WebSocket, type: string, data: Record<string, unknown>): void => {
    const seq = seqs.get(ws) ?? 0;
    seqs.set(ws, seq + 1);
    ws.send(JSON.stringify({ type, agent: id, seq, ts: Date.now(), data }));
  };
  wss.on('connection', (ws) => {
    send(ws, 'hello', { alive: 2 });
    ws.on('close', () => seqs.delete(ws));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    id,
    url,
    emit: (type, data = {}) => {
      for (const ws of wss.clients) if (ws.readyState === WebSocket.OPEN) send(ws, type, data);
    },
    dropConnections: () => {
      for (const ws of wss.clients) ws.terminate();
    },
    connections: () => wss.clients.size,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('AlertEvaluator', () => {
  it('raises on the first breaching value, once, and resolves on recovery', () => {
    const e = new AlertEvaluator();
    expect(e.observe('a-1', 'swarmbench_agent_health_score', 0.9, 1).raised).toHaveLength(0);
    const r1 = e.observe('a-1', 'healthScore', 0.1, 2);
    expect(r1.raised).toHaveLength(1);
    const a = r1.raised[0]!;
    expect([a.rule, a.agent, a.value, a.eventTs, a.state]).toEqual(['AgentUnhealthy', 'a-1', 0.1, 2, 'firing']);
    expect(a.raisedAtMono).toBeLessThanOrEqual(performance.now());
    expect(Math.abs(a.raisedAt - Date.now())).toBeLessThan(1000);
    expect(e.observe('a-1', 'health_score', 0.05, 3).raised).toHaveLength(0);
    expect(e.active()).toHaveLength(1);
    // Another agent has its own alert.
    expect(e.observe('a-2', 'health_score', 0.2, 3).raised).toHaveLength(1);
    const r2 = e.observe('a-1', 'health_score', 1, 4);
    expect(r2.resolved.map((x) => x.id)).toEqual(['AgentUnhealthy/a-1']);
    expect(r2.resolved[0]!.state).toBe('resolved');
    expect(e.active().map((x) => x.agent)).toEqual(['a-2']);
    expect(e.forget('a-2')).toHaveLength(1);
    expect(e.active()).toHaveLength(0);
    expect(e.history()).toHaveLength(2);
  });

  it('ignores other metrics and NaN; boundary follows the operator', () => {
    const e = new AlertEvaluator([{ name: 'Busy', metric: 'inflight', op: '>=', threshold: 10 }]);
    expect(e.observe('a', 'health_score', 0, 1).raised).toHaveLength(0);
    expect(e.observe('a', 'swarmbench_agent_inflight', Number.NaN, 1).raised).toHaveLength(0);
    expect(e.observe('a', 'swarmbench_agent_inflight', 10, 1).raised).toHaveLength(1);
    expect(breaches(0.5, '<', 0.5)).toBe(false);
    expect(breaches(0.5, '<=', 0.5)).toBe(true);
    expect(normaliseMetricName('swarmbench_agent_healthScore')).toBe('health_score');
  });
});

describe('event parsing', () => {
  it('eventsUrl and parseAgentEvent', () => {
    expect(eventsUrl('http://127.1.0.2:4000')).toBe('ws://127.1.0.2:4000/v1/events');
    expect(eventsUrl('https://x/agents/a-1/')).toBe('wss://x/agents/a-1/v1/events');
    expect(parseAgentEvent('{"type":"mark","agent":"a","seq":3,"ts":5,"data":{"token":"t"}}')).toEqual({
      type: 'mark',
      agent: 'a',
      seq: 3,
      ts: 5,
      data: { token: 't' },
    });
    expect(parseAgentEvent('not json')).toBeNull();
    expect(parseAgentEvent('{"type":"x"}')).toBeNull();
  });
});

describe('Dashboard', () => {
  async function setup(n: number, opts: { updateIntervalMs?: number; staleAfterMs?: number } = {}) {
    const agents = await Promise.all(Array.from({ length: n }, (_, i) => fakeAgent(`a-${i + 1}`)));
    for (const a of agents) cleanups.push(() => a.close());
    let list: AgentRef[] = agents.map((a) => ({ id: a.id, url: a.url }));
    const dash = new Dashboard({ agents: () => list, ...opts });
    cleanups.push(() => dash.close());
    const url = await dash.start();
    await dash.ready(5000);
    const msgs: { m: DashboardMessage; recv: number }[] = [];
    const sub = await subscribeDashboard(url, (m, recv) => msgs.push({ m, recv }));
    cleanups.push(() => sub.close());
    return { agents, dash, msgs, setList: (l: AgentRef[]) => (list = l) };
  }
  const updates = (msgs: { m: DashboardMessage }[]): DashboardUpdate[] =>
    msgs.map((x) => x.m).filter((m): m is DashboardUpdate => m.type === 'update');

  it('pushes updates at its cadence with live, aggregated data', async () => {
    const { agents, msgs, dash } = await setup(2, { updateIntervalMs: 100 });
    const t0 = performance.now();
    const hb = setInterval(() => {
      for (const a of agents) a.emit('heartbeat');
    }, 200);
    cleanups.push(() => clearInterval(hb));
    for (let i = 0; i < 5; i++) agents[0]!.emit('task', { id: `t${i}`, kind: 'io', runMs: 1 });
    agents[1]!.emit('task', { id: 'x', kind: 'cpu', runMs: 2 });
    await until(() => performance.now() - t0 >= 1000, 2000, '1 s of updates');
    const ups = updates(msgs).filter((u) => u.reason === 'tick');
    // 100 ms cadence over 1 s: about 10 (a loaded machine may delay a few timers).
    expect(ups.length).toBeGreaterThanOrEqual(6);
    expect(ups.length).toBeLessThanOrEqual(13);
    for (let i = 1; i < ups.length; i++) expect(ups[i]!.seq).toBeGreaterThan(ups[i - 1]!.seq);
    const last = ups.at(-1)!;
    expect(last.agents).toEqual({ total: 2, connected: 2, live: 2 });
    expect(last.tasks.total).toBe(6);
    expect(last.panels.map((p) => [p.id, p.tasksTotal, p.members])).toEqual([
      ['a-1', 5, 2],
      ['a-2', 1, 2],
    ]);
    expect(dash.subscribers).toBe(1);
  });

  it('tasks/s follows the task events within the rate window', async () => {
    const { agents, dash } = await setup(1, { updateIntervalMs: 50 });
    for (let i = 0; i < 20; i++) agents[0]!.emit('task', { id: `t${i}`, kind: 'io', runMs: 1 });
    await until(() => dash.snapshot('tick', false).tasks.total === 20, 2000, 'task events');
    expect(dash.snapshot('tick', false).tasks.perSec).toBe(20);
    // After the 1 s window the rate falls back to zero while the total stays.
    await until(() => dash.snapshot('tick', false).tasks.perSec === 0, 3000, 'rate window to pass');
    expect(dash.snapshot('tick', false).tasks.total).toBe(20);
  });

  it('raises an alert at once on a breaching metric event and pushes it before the next tick', async () => {
    const { agents, msgs, dash } = await setup(2, { updateIntervalMs: 5000 });
    const raised: number[] = [];
    dash.on('alert', (a) => a.state === 'firing' && raised.push(a.raisedAtMono));
    const t0 = performance.now();
    agents[1]!.emit('metric', { name: 'swarmbench_agent_health_score', value: 0.1 });
    await until(() => msgs.some((x) => x.m.type === 'alert'), 2000, 'alert message');
    const am = msgs.find((x) => x.m.type === 'alert')!;
    if (am.m.type !== 'alert') throw new Error('unreachable');
    expect(am.m.alert.agent).toBe('a-2');
    expect(am.m.alert.value).toBe(0.1);
    // Well before the 5 s tick: the alert path does not wait for the cadence.
    expect(am.recv - t0).toBeLessThan(1000);
    expect(raised).toHaveLength(1);
    await until(() => updates(msgs).some((u) => u.reason === 'alert'), 1000, 'alert update');
    const u = updates(msgs).find((x) => x.reason === 'alert')!;
    expect(u.alerts.map((a) => a.id)).toEqual(['AgentUnhealthy/a-2']);
    expect(u.panels.find((p) => p.id === 'a-2')!.healthScore).toBe(0.1);
    agents[1]!.emit('metric', { name: 'swarmbench_agent_health_score', value: 1 });
    await until(() => msgs.some((x) => x.m.type === 'alert' && x.m.alert.state === 'resolved'), 2000, 'resolved');
    expect(dash.evaluator.active()).toHaveLength(0);
  });

  it('marks an agent that stops sending as not live, and reconnects a dropped stream', async () => {
    const { agents, dash } = await setup(1, { updateIntervalMs: 50, staleAfterMs: 300 });
    expect(dash.snapshot('tick', false).agents.live).toBe(1);
    await until(() => dash.snapshot('tick', false).agents.live === 0, 3000, 'stale');
    expect(dash.snapshot('tick', false).agents.connected).toBe(1);
    agents[0]!.dropConnections();
    await until(() => (dash.streamStats()['a-1']?.connects ?? 0) >= 2, 5000, 'reconnect');
    // The new connection's hello makes it live again.
    await until(() => dash.snapshot('tick', false).agents.live === 1, 3000, 'live again');
  });

  it('carries every mark received since the previous push, once, in arrival order', async () => {
    const { agents, msgs, dash } = await setup(2, { updateIntervalMs: 50 });
    for (let i = 0; i < 30; i++) agents[i % 2]!.emit('mark', { token: `m${i}` });
    agents[0]!.emit('mark', {}); // no token: counted, not carried
    await until(() => updates(msgs).flatMap((u) => u.marks).length === 30, 2000, 'marks pushed');
    const marks = updates(msgs).flatMap((u) => u.marks);
    expect(new Set(marks.map((m) => m.token)).size).toBe(30);
    expect(marks.filter((m) => m.agent === 'a-1').map((m) => m.token)).toEqual(Array.from({ length: 15 }, (_, i) => `m${i * 2}`));
    expect(marks.every((m) => m.seq > 0)).toBe(true);
    expect(dash.marksReceived).toBe(31);
    expect(dash.marksDiscarded).toBe(0);
    // A snapshot that is not pushed carries none, and later pushes repeat none.
    expect(dash.snapshot('tick', false).marks).toEqual([]);
    const n = updates(msgs).length;
    await until(() => updates(msgs).length >= n + 2, 2000, 'two more ticks');
    expect(updates(msgs).flatMap((u) => u.marks)).toHaveLength(30);
  });

  it('follows the agents provider', async () => {
    const { agents, dash, setList } = await setup(2, { updateIntervalMs: 50 });
    setList([{ id: agents[0]!.id, url: agents[0]!.url }]);
    await until(() => dash.snapshot('tick', false).agents.total === 1, 2000, 'agent removed');
    await until(() => agents[1]!.connections() === 0, 2000, 'stream closed');
  });
});
