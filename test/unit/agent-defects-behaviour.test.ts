/**
 * What each agent defect profile does to a running reference agent, next to the clean agent that
 * does not show it. The agents run in this process on loopback (real listeners, real HTTP and
 * WebSocket clients), with small parameters so the file stays short.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Agent, type AgentOptions } from '../../src/agent/agent.ts';
import { agentToken, bearer } from '../../src/agent/auth.ts';
import { AgentClient } from '../../src/agent/client.ts';
import { parseDefectList } from '../../src/agent/defects.ts';
import type { AgentEvent, DispatchTask, PingResult, StateEntry, WorkflowResult } from '../../src/agent/types.ts';
import { cpuTaskResult } from '../../src/agent/work.ts';

const client = new AgentClient({ timeoutMs: 20_000, maxSockets: 256 });
const started: Agent[] = [];
let seq = 0;

afterEach(async () => {
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

/** A cluster of n agents in this process, each with the defects given, formed (every view holds n). */
async function cluster(n: number, defects: string[] = [], over: Partial<AgentOptions> = {}): Promise<Agent[]> {
  const parsed = parseDefectList(defects, 'agent');
  expect(parsed.errors).toEqual([]);
  const agents: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const a = new Agent({
      id: `d${++seq}`,
      host: '127.0.0.1',
      port: 0,
      seeds: i === 0 ? [] : [agents[0]!.url],
      capacity: 64,
      gossipIntervalMs: 50,
      failureTimeoutMs: 500,
      defects: parsed.defects,
      ...over,
    });
    started.push(a);
    await a.start();
    agents.push(a);
  }
  if (!defects.some((d) => d.startsWith('slow-startup'))) {
    await until(`${n} agents formed`, 15_000, () => agents.every((a) => a.ready && a.membership.aliveCount() === n));
  }
  return agents;
}

/** Dispatch tasks through one coordinator and wait until none is pending for `settleMs`. */
async function dispatchAll(url: string, tasks: { id: string; kind: 'io' | 'cpu'; ioMs?: number; cpuRounds?: number; payload?: string }[], settleMs = 1000): Promise<DispatchTask[]> {
  for (const t of tasks) expect((await client.dispatch(url, t)).status).toBe(202);
  const ids = tasks.map((t) => t.id);
  let last = -1;
  let stableSince = Date.now();
  for (;;) {
    const r = (await client.dispatchQuery(url, ids)).body.tasks;
    const pending = r.filter((t) => t.state === 'pending').length;
    if (pending === 0) return r;
    if (pending !== last) {
      last = pending;
      stableSince = Date.now();
    } else if (Date.now() - stableSince > settleMs) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('lost-tasks', () => {
  it('loses about 1 in 100 accepted tasks for good; the clean agent loses none', async () => {
    const tasks = (p: string) => Array.from({ length: 500 }, (_, i) => ({ id: `${p}-${i}`, kind: 'io' as const, ioMs: 1 }));
    const [lossy] = await cluster(1, ['lost-tasks']);
    const r = await dispatchAll(lossy!.url, tasks('lossy'));
    expect(r.filter((t) => t.state === 'pending')).toHaveLength(5);
    expect(r.filter((t) => t.state === 'done')).toHaveLength(495);
    const [clean] = await cluster(1);
    const c = await dispatchAll(clean!.url, tasks('clean'));
    expect(c.every((t) => t.state === 'done')).toBe(true);
  });
});

describe('wrong-digests', () => {
  it('answers CPU tasks without their rounds (a digest that does not recompute); the clean agent is right', async () => {
    const [bad] = await cluster(1, ['wrong-digests']);
    const [good] = await cluster(1);
    for (const [a, ok] of [[bad!, false], [good!, true]] as const) {
      const r = await client.task(a.url, { id: `wd-${a.id}`, kind: 'cpu', cpuRounds: 500, payload: 'x' });
      expect(r.status).toBe(200);
      expect((r.body as { result: string }).result === cpuTaskResult('x', 500)).toBe(ok);
    }
    // Dispatched tasks too: every CPU result is wrong at the default rate of 1.
    const tasks = Array.from({ length: 20 }, (_, i) => ({ id: `wdd-${i}`, kind: 'cpu' as const, cpuRounds: 50, payload: `p${i}` }));
    const r = await dispatchAll(bad!.url, tasks);
    expect(r.filter((t, i) => t.state === 'done' && t.result !== cpuTaskResult(`p${i}`, 50))).toHaveLength(20);
  });
});

describe('stale-reads', () => {
  it('every 4th read answers an older version than one already returned; the clean agent never goes back', async () => {
    const [stale] = await cluster(1, ['stale-reads']);
    const [clean] = await cluster(1);
    for (const [a, violations] of [[stale!, true], [clean!, false]] as const) {
      await client.putState(a.url, 'k', 1);
      await client.putState(a.url, 'k', 2);
      const versions: number[] = [];
      for (let i = 0; i < 12; i++) versions.push(((await client.getState(a.url, 'k')).body as StateEntry).version);
      const back = versions.filter((v, i) => i > 0 && v < Math.max(...versions.slice(0, i))).length;
      if (violations) {
        expect(versions.filter((v) => v === 1)).toHaveLength(3);
        expect(back).toBeGreaterThanOrEqual(2);
      } else {
        expect(versions.every((v) => v === 2)).toBe(true);
      }
    }
  });
});

describe('no-load-shedding', () => {
  it('never answers 429: tasks past capacity queue (and wait); the clean agent sheds them', async () => {
    const [unbounded] = await cluster(1, ['no-load-shedding'], { capacity: 4 });
    const [clean] = await cluster(1, [], { capacity: 4 });
    const burst = (a: Agent) => Promise.all(Array.from({ length: 12 }, (_, i) => client.task(a.url, { id: `nls-${a.id}-${i}`, kind: 'io', ioMs: 100 })));
    const q = await burst(unbounded!);
    expect(q.map((r) => r.status)).toEqual(new Array(12).fill(200));
    // At most capacity at once: the last four waited two task times in the queue.
    const queued = q.map((r) => (r.body as { queuedMs: number }).queuedMs).sort((a, b) => a - b);
    expect(queued[11]!).toBeGreaterThanOrEqual(180);
    const c = await burst(clean!);
    expect(c.filter((r) => r.status === 429)).toHaveLength(8);
    // Dispatch is never refused either.
    const d = await Promise.all(Array.from({ length: 40 }, (_, i) => client.dispatch(unbounded!.url, { id: `nlsd-${i}`, kind: 'io', ioMs: 50 })));
    expect(d.every((r) => r.status === 202)).toBe(true);
  });
});

describe('global-lock', () => {
  it('makes a coordinator dispatch one task at a time (throughput about 1 / task time); the clean one runs them at once', async () => {
    const time = async (a: Agent, p: string): Promise<{ wall: number; gaps: number[] }> => {
      const tasks = Array.from({ length: 8 }, (_, i) => ({ id: `${p}-${i}`, kind: 'io' as const, ioMs: 100 }));
      const t0 = Date.now();
      const r = await dispatchAll(a.url, tasks);
      expect(r.every((t) => t.state === 'done')).toBe(true);
      const fin = r.map((t) => t.finishedAt!).sort((x, y) => x - y);
      return { wall: Date.now() - t0, gaps: fin.slice(1).map((f, i) => f - fin[i]!) };
    };
    const locked = await time((await cluster(2, ['global-lock']))[0]!, 'gl');
    expect(locked.wall).toBeGreaterThanOrEqual(800);
    expect(Math.min(...locked.gaps)).toBeGreaterThanOrEqual(90);
    const clean = await time((await cluster(2))[0]!, 'nogl');
    expect(clean.wall).toBeLessThan(600);
  });
});

describe('no-balancing', () => {
  it('runs every dispatched task on its coordinator; the clean cluster spreads them', async () => {
    const executors = async (agents: Agent[], p: string): Promise<Set<string>> => {
      const tasks = Array.from({ length: 30 }, (_, i) => ({ id: `${p}-${i}`, kind: 'io' as const, ioMs: 30 }));
      // All at once, so that the clean coordinator sees its own load and spreads them.
      await Promise.all(tasks.map((t) => client.dispatch(agents[0]!.url, t)));
      const r = await until('all done', 10_000, async () => {
        const q = (await client.dispatchQuery(agents[0]!.url, tasks.map((t) => t.id))).body.tasks;
        return q.every((t) => t.state === 'done') ? q : undefined;
      });
      return new Set(r.map((t) => t.executor!));
    };
    const lazy = await cluster(3, ['no-balancing']);
    expect([...(await executors(lazy, 'nb'))]).toEqual([lazy[0]!.id]);
    const clean = await cluster(3);
    expect((await executors(clean, 'b')).size).toBe(3);
  });
});

describe('slow-startup', () => {
  it('listens at once but is ready only after the wait; the clean agent is ready at once', async () => {
    const [slow] = await cluster(1, ['slow-startup:600']);
    const [clean] = await cluster(1);
    expect((await client.readyz(clean!.url)).status).toBe(200);
    expect((await client.healthz(slow!.url)).status).toBe(200);
    expect((await client.readyz(slow!.url)).status).toBe(503);
    const t0 = Date.now();
    await until('ready', 5000, async () => (await client.readyz(slow!.url)).status === 200);
    expect(Date.now() - t0).toBeGreaterThan(300);
    expect((await client.info(slow!.url)).body.defects).toEqual(['slow-startup:600']);
    expect((await client.info(clean!.url)).body.defects).toBeUndefined();
  });
});

describe('slow-metrics', () => {
  it('answers /metrics late; the clean agent at once', async () => {
    const [slow] = await cluster(1, ['slow-metrics:300']);
    const [clean] = await cluster(1);
    const took = async (a: Agent): Promise<number> => {
      const t0 = performance.now();
      expect((await client.metrics(a.url)).status).toBe(200);
      return performance.now() - t0;
    };
    expect(await took(slow!)).toBeGreaterThanOrEqual(300);
    expect(await took(clean!)).toBeLessThan(200);
  });
});

/** Subscribe, send `marks` marks, and return the events received within `waitMs` of the last. */
async function marks(a: Agent, count: number, waitMs: number): Promise<{ events: AgentEvent[]; latency: number[] }> {
  const got: AgentEvent[] = [];
  const at = new Map<string, number>();
  const latency: number[] = [];
  const ws = new WebSocket(`${a.url.replace('http', 'ws')}/v1/events?heartbeatMs=60000`, { headers: { authorization: bearer(agentToken()) } });
  ws.on('message', (d) => {
    const e = JSON.parse(String(d)) as AgentEvent;
    got.push(e);
    const sent = e.type === 'mark' ? at.get(String(e.data.token)) : undefined;
    if (sent !== undefined) latency.push(performance.now() - sent);
  });
  await until('hello', 5000, () => got.length > 0);
  for (let i = 0; i < count; i++) {
    const token = `m${i}`;
    at.set(token, performance.now());
    await client.mark(a.url, token);
  }
  await new Promise((r) => setTimeout(r, waitMs));
  ws.terminate();
  return { events: got, latency };
}

describe('event-lag and event-drops', () => {
  it('event-lag delivers every event late; the clean agent at once', async () => {
    const [laggy] = await cluster(1, ['event-lag:200']);
    const [clean] = await cluster(1);
    const l = await marks(laggy!, 5, 400);
    expect(l.latency).toHaveLength(5);
    expect(Math.min(...l.latency)).toBeGreaterThanOrEqual(195);
    const c = await marks(clean!, 5, 100);
    expect(c.latency).toHaveLength(5);
    expect(Math.max(...c.latency)).toBeLessThan(150);
  });

  it('event-drops numbers some events and never sends them (gaps in seq); the clean agent sends all', async () => {
    const [lossy] = await cluster(1, ['event-drops:0.5']);
    const [clean] = await cluster(1);
    const l = await marks(lossy!, 20, 200);
    const lm = l.events.filter((e) => e.type === 'mark');
    expect(lm.length).toBeGreaterThanOrEqual(9);
    expect(lm.length).toBeLessThanOrEqual(11);
    const seqs = l.events.map((e) => e.seq);
    expect(seqs.some((s, i) => i > 0 && s !== seqs[i - 1]! + 1)).toBe(true);
    const c = await marks(clean!, 20, 100);
    expect(c.events.filter((e) => e.type === 'mark')).toHaveLength(20);
    expect(c.events.every((e, i) => e.seq === i + 1)).toBe(true);
  });
});

describe('memory-leak', () => {
  it('keeps a resident buffer per completed task; the clean agent keeps nothing', async () => {
    const [leaky] = await cluster(1, ['memory-leak:1024']);
    const [clean] = await cluster(1);
    const rss0 = process.memoryUsage.rss();
    for (let i = 0; i < 32; i++) expect((await client.task(leaky!.url, { id: `ml-${i}`, kind: 'io', ioMs: 0 })).status).toBe(200);
    expect(leaky!.defects.leakedBytes).toBe(32 * 1024 * 1024);
    expect(process.memoryUsage.rss() - rss0).toBeGreaterThan(24 * 1024 * 1024);
    for (let i = 0; i < 32; i++) await client.task(clean!.url, { id: `mlc-${i}`, kind: 'io', ioMs: 0 });
    expect(clean!.defects.leakedBytes).toBe(0);
  });

  it('keeps one per workflow step too, on the agent that ran it', async () => {
    const agents = await cluster(2, ['memory-leak:64']);
    const r = await client.workflow(agents[0]!.url, { id: 'ml-wf', input: 'x', steps: [{ op: 'upper' }, { op: 'reverse' }, { op: 'upper' }] });
    expect(r.status).toBe(200);
    // Steps 0 and 2 ran on the peer, step 1 on the coordinator.
    expect(agents.map((a) => a.defects.leakedBytes)).toEqual([64 * 1024, 2 * 64 * 1024]);
  });
});

describe('slow-gossip', () => {
  it('state travels only by slow gossip: a peer does not read a write for a long while; clean peers read it at once', async () => {
    const slow = await cluster(3, ['slow-gossip:20']);
    const clean = await cluster(3);
    for (const [agents, fast] of [[slow, false], [clean, true]] as const) {
      await client.putState(agents[0]!.url, 'g', 'v');
      await new Promise((r) => setTimeout(r, 250));
      const seen = await Promise.all(agents.slice(1).map(async (a) => (await client.getState(a.url, 'g')).status === 200));
      expect(seen.every((s) => s === fast)).toBe(true);
    }
  });
});

describe('failure detection', () => {
  const detect = async (defects: string[], waitMs: number): Promise<string | undefined> => {
    const [a, b] = await cluster(2, defects);
    b!.crash();
    await new Promise((r) => setTimeout(r, waitMs));
    return a!.membership.get(b!.id)?.status;
  };

  it('the clean agent buries a crashed peer within a few failure timeouts', async () => {
    expect(await detect([], 2500)).toBe('dead');
  });

  it('no-failure-detection keeps a crashed peer alive', async () => {
    expect(await detect(['no-failure-detection'], 2500)).toBe('alive');
  });

  it('slow-failure-detection suspects it but does not bury it within the clean timeout', async () => {
    expect(await detect(['slow-failure-detection:40'], 2500)).toBe('suspect');
  });
});

describe('slow-peers', () => {
  it('every request to another agent waits: pings and forwarded tasks are late; local work and the clean agent are not', async () => {
    const slow = await cluster(2, ['slow-peers:120']);
    const clean = await cluster(2);
    const rtts = async (agents: Agent[]): Promise<number[]> => {
      const r = await client.ping(agents[0]!.url, agents[1]!.id, 5);
      expect(r.status).toBe(200);
      return (r.body as PingResult).rttMs;
    };
    const s = await rtts(slow);
    expect(s).toHaveLength(5);
    expect(Math.min(...s)).toBeGreaterThanOrEqual(120);
    expect(Math.max(...(await rtts(clean)))).toBeLessThan(60);
    // Dispatch: a task forwarded to the peer pays the wait, one run by its coordinator does not.
    const tasks = Array.from({ length: 8 }, (_, i) => ({ id: `sp-${i}`, kind: 'io' as const, ioMs: 1 }));
    await Promise.all(tasks.map((t) => client.dispatch(slow[0]!.url, t)));
    const r = await until('all done', 10_000, async () => {
      const q = (await client.dispatchQuery(slow[0]!.url, tasks.map((t) => t.id))).body.tasks;
      return q.every((t) => t.state === 'done') ? q : undefined;
    });
    const took = (t: DispatchTask) => t.finishedAt! - t.acceptedAt!;
    const remote = r.filter((t) => t.executor === slow[1]!.id);
    const local = r.filter((t) => t.executor === slow[0]!.id);
    expect(remote.length).toBeGreaterThan(0);
    expect(local.length).toBeGreaterThan(0);
    expect(Math.min(...remote.map(took))).toBeGreaterThanOrEqual(115);
    expect(Math.max(...local.map(took))).toBeLessThan(100);
  });
});

describe('slow-handoff', () => {
  it('each workflow hop to another agent waits; the hop run by the coordinator does not; the clean agents hand over at once', async () => {
    const steps = [{ op: 'upper' as const }, { op: 'reverse' as const }, { op: 'upper' as const }];
    const hops = async (agents: Agent[]): Promise<WorkflowResult['hops']> => {
      const r = await client.workflow(agents[0]!.url, { id: `sh-${agents[0]!.id}`, input: 'abc', steps });
      expect(r.status).toBe(200);
      return (r.body as WorkflowResult).hops;
    };
    const slow = await cluster(3, ['slow-handoff:300']);
    const h = await hops(slow);
    expect(h).toHaveLength(3);
    const remote = h.filter((x) => x.agent !== slow[0]!.id);
    expect(remote).toHaveLength(2);
    expect(Math.min(...remote.map((x) => x.ms))).toBeGreaterThanOrEqual(300);
    expect(h.find((x) => x.agent === slow[0]!.id)!.ms).toBeLessThan(100);
    const c = await hops(await cluster(3));
    expect(Math.max(...c.map((x) => x.ms))).toBeLessThan(200);
  });
});
