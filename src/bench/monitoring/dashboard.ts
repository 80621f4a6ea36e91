/**
 * The live dashboard stream of the monitoring category (tests 3.3 and 3.4).
 *
 * `Dashboard` subscribes to every agent's event stream (`GET /v1/events`, WebSocket), aggregates
 * what it hears (tasks/s, members seen by each agent, health scores, alerts) and pushes a
 * `DashboardUpdate` to the subscribers of its own WebSocket server (`ws://host:port/dashboard`)
 * every `updateIntervalMs`, plus at once when an alert is raised or resolved (`reason: 'alert'`,
 * preceded by a `{type:"alert"}` message). Its `AlertEvaluator` (alerts.ts) evaluates threshold
 * rules on the agents' `metric` events.
 *
 * Liveness is part of every update: an agent is `live` when its stream is open and its last
 * event (agents send a heartbeat every second) is at most `staleAfterMs` old, so a subscriber
 * (and test 3.3) can tell an update that carries live data from a stale tick.
 *
 * Every pushed update also carries the `mark` events (`POST /v1/events/mark`) the dashboard
 * received since the previous push, in arrival order (the event-log panel): test 3.3 drives the
 * agents' marks at a rate and checks that each one reaches a subscriber, and when.
 *
 * The set of agents is read from a provider on every tick (`agents()`), so the dashboard follows a
 * pool that grows, shrinks or replaces agents; a dropped stream is reconnected with backoff while
 * its agent is still listed.
 *
 * `AgentEventStream` is the reusable subscriber of one agent's stream; it stamps each message with
 * the `performance.now()` of its arrival, for latency measurements. Its upgrade request carries the
 * agents' bearer token (`StreamOptions.token`, default `agentToken()`: src/agent/auth.ts). The
 * dashboard's own WebSocket server is the harness's, not an agent's: it asks for no token.
 * An agent's messages are taken up to `StreamOptions.maxMessageBytes` (default
 * MAX_EVENT_MESSAGE_BYTES, 1 MiB: the WebSocket's `maxPayload`, checked before a frame is
 * buffered); a larger one closes that stream (1009), which reconnects with backoff like any
 * dropped stream, so an agent a user runs cannot exhaust the harness's memory. The dashboard's
 * own server takes at most DASHBOARD_MAX_INBOUND_BYTES per message from its subscribers (they
 * send nothing).
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { agentToken, bearer } from '../../agent/auth.ts';
import { MAX_EVENT_MESSAGE_BYTES } from '../../agent/client.ts';
import { AlertEvaluator, DEFAULT_RULES, normaliseMetricName, type Alert, type AlertRule } from './alerts.ts';

/** An agent event as the contract defines it (`{type, agent, seq, ts, data}`). */
export interface AgentEventMessage {
  type: string;
  agent: string;
  seq: number;
  /** Agent clock, epoch ms. */
  ts: number;
  data: Record<string, unknown>;
}

export interface AgentRef {
  id: string;
  url: string;
}

/** The `/v1/events` WebSocket URL of an agent base URL. */
export function eventsUrl(agentUrl: string): string {
  const u = new URL('v1/events', agentUrl.endsWith('/') ? agentUrl : `${agentUrl}/`);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

export function parseAgentEvent(raw: string): AgentEventMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null) return null;
  const e = m as Record<string, unknown>;
  if (typeof e.type !== 'string' || typeof e.agent !== 'string' || typeof e.ts !== 'number') return null;
  return {
    type: e.type,
    agent: e.agent,
    seq: typeof e.seq === 'number' ? e.seq : -1,
    ts: e.ts,
    data: typeof e.data === 'object' && e.data !== null ? (e.data as Record<string, unknown>) : {},
  };
}

export interface StreamOptions {
  /** Reconnect after the stream drops (backoff 100 ms doubling to 2 s). Default true. */
  reconnect?: boolean;
  /** Called with every message and the `performance.now()` when it arrived. */
  onEvent(ev: AgentEventMessage, recvMono: number): void;
  onState?(state: 'open' | 'closed', detail?: string): void;
  /** The agents' bearer token; default `agentToken()`. */
  token?: string;
  /** Largest message taken from the agent (bytes); default MAX_EVENT_MESSAGE_BYTES (1 MiB). */
  maxMessageBytes?: number;
}

/** Largest message the dashboard's own WebSocket server reads from a subscriber (they send nothing). */
export const DASHBOARD_MAX_INBOUND_BYTES = 4096;

/** A subscription to one agent's `/v1/events`. */
export class AgentEventStream {
  readonly agent: AgentRef;
  readonly url: string;
  #ws: WebSocket | null = null;
  #closed = false;
  #backoffMs = 100;
  #timer: NodeJS.Timeout | null = null;
  #opts: StreamOptions;
  readonly #authorization: string;
  #helloWaiters: { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  /** Messages received, gaps in `seq` seen (a per-connection counter), connections opened. */
  received = 0;
  seqGaps = 0;
  connects = 0;
  lastError = '';
  #lastSeq = -1;
  #open = false;

  constructor(agent: AgentRef, opts: StreamOptions) {
    this.agent = agent;
    this.url = eventsUrl(agent.url);
    this.#opts = opts;
    this.#authorization = bearer(opts.token ?? agentToken());
    this.#connect();
  }

  get open(): boolean {
    return this.#open;
  }

  /** Resolves once the stream is open and has delivered its first message (the `hello`). */
  ready(timeoutMs = 10_000): Promise<void> {
    if (this.#open && this.received > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#helloWaiters = this.#helloWaiters.filter((w) => w.timer !== timer);
        reject(new Error(`no event stream from ${this.agent.id} within ${timeoutMs} ms${this.lastError ? `: ${this.lastError}` : ''}`));
      }, timeoutMs);
      this.#helloWaiters.push({ resolve, reject, timer });
    });
  }

  #connect(): void {
    if (this.#closed) return;
    const ws = new WebSocket(this.url, {
      perMessageDeflate: false,
      handshakeTimeout: 5000,
      maxPayload: this.#opts.maxMessageBytes ?? MAX_EVENT_MESSAGE_BYTES,
      headers: { authorization: this.#authorization },
    });
    this.#ws = ws;
    ws.on('open', () => {
      this.#open = true;
      this.#backoffMs = 100;
      this.#lastSeq = -1;
      this.connects++;
      this.#opts.onState?.('open');
    });
    ws.on('message', (data) => {
      const recv = performance.now();
      const ev = parseAgentEvent(data.toString());
      if (!ev) return;
      this.received++;
      if (this.#lastSeq >= 0 && ev.seq >= 0 && ev.seq !== this.#lastSeq + 1) this.seqGaps++;
      if (ev.seq >= 0) this.#lastSeq = ev.seq;
      if (this.#helloWaiters.length > 0) {
        for (const w of this.#helloWaiters) {
          clearTimeout(w.timer);
          w.resolve();
        }
        this.#helloWaiters = [];
      }
      this.#opts.onEvent(ev, recv);
    });
    ws.on('error', (err) => {
      this.lastError = err.message;
    });
    ws.on('close', () => {
      const was = this.#open;
      this.#open = false;
      if (was) this.#opts.onState?.('closed', this.lastError);
      if (this.#closed || this.#opts.reconnect === false) return;
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#connect();
      }, this.#backoffMs);
      this.#backoffMs = Math.min(2000, this.#backoffMs * 2);
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const w of this.#helloWaiters) {
      clearTimeout(w.timer);
      w.reject(new Error('stream closed'));
    }
    this.#helloWaiters = [];
    const ws = this.#ws;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) ws.terminate();
    this.#open = false;
  }
}

export interface AgentPanel {
  id: string;
  connected: boolean;
  live: boolean;
  /** ms since the last event of this agent (dashboard clock), null before the first one. */
  lastEventAgeMs: number | null;
  /** Alive members in this agent's view, from its `hello`/`member`/`metric` events; null if unknown. */
  members: number | null;
  /** Last `swarmbench_agent_health_score` the agent reported; null if it has not reported one. */
  healthScore: number | null;
  tasksTotal: number;
}

export interface DashboardUpdate {
  type: 'update';
  seq: number;
  /** Epoch ms on the dashboard's clock. */
  ts: number;
  reason: 'tick' | 'alert';
  agents: { total: number; connected: number; live: number };
  tasks: { total: number; perSec: number };
  /** Events received per second over the rate window (all types). */
  eventsPerSec: number;
  /** Per-agent panels, sorted by id. */
  panels: AgentPanel[];
  alerts: Alert[];
  /** Mark events received since the previous pushed update (empty in a snapshot that is not pushed). */
  marks: DashboardMark[];
}

/** A `mark` event as an update carries it. */
export interface DashboardMark {
  agent: string;
  token: string;
  /** The event's `seq` on the dashboard's stream of that agent. */
  seq: number;
}

export interface DashboardAlertMessage {
  type: 'alert';
  /** Epoch ms on the dashboard's clock. */
  ts: number;
  alert: Alert;
}

export type DashboardMessage = DashboardUpdate | DashboardAlertMessage;

export interface DashboardOptions {
  /** The agents to watch, read on every tick. */
  agents: () => readonly AgentRef[];
  /** Cadence of the pushed updates (ms). Default 250. */
  updateIntervalMs?: number;
  rules?: readonly AlertRule[];
  host?: string;
  port?: number;
  /** An agent whose last event is older than this is not live. Default 2500 (heartbeats are 1/s). */
  staleAfterMs?: number;
  /** Window of the tasks/s and events/s rates (ms). Default 1000. */
  rateWindowMs?: number;
}

/** Marks kept for the next push at most (a push every tick empties the list). */
const MAX_PENDING_MARKS = 100_000;

interface AgentState {
  ref: AgentRef;
  stream: AgentEventStream;
  lastEventMono: number | null;
  members: number | null;
  health: number | null;
  tasks: number;
}

/**
 * Events: `event` (ev, recvMono) for every agent message; `alert` (Alert) when raised or resolved;
 * `update` (DashboardUpdate) after each push.
 */
export class Dashboard extends EventEmitter {
  readonly evaluator: AlertEvaluator;
  readonly updateIntervalMs: number;
  readonly staleAfterMs: number;
  readonly rateWindowMs: number;
  #opts: DashboardOptions;
  #agents = new Map<string, AgentState>();
  #server: Server | null = null;
  #wss: WebSocketServer | null = null;
  #timer: NodeJS.Timeout | null = null;
  #seq = 0;
  #url = '';
  /** performance.now() of recent task and other events, for the rates. */
  #taskTimes: number[] = [];
  #eventTimes: number[] = [];
  #tasksTotal = 0;
  /** Marks received since the last push (bounded: a dashboard without subscribers keeps MAX_PENDING_MARKS). */
  #marks: DashboardMark[] = [];
  /** Updates pushed, and sends that failed (a subscriber too slow or gone). */
  pushed = 0;
  dropped = 0;
  /** Marks received, and marks discarded because more than MAX_PENDING_MARKS waited for a push. */
  marksReceived = 0;
  marksDiscarded = 0;

  constructor(opts: DashboardOptions) {
    super();
    this.#opts = opts;
    this.updateIntervalMs = opts.updateIntervalMs ?? 250;
    this.staleAfterMs = opts.staleAfterMs ?? 2500;
    this.rateWindowMs = opts.rateWindowMs ?? 1000;
    this.evaluator = new AlertEvaluator(opts.rules ?? DEFAULT_RULES);
  }

  /** The subscribers' URL (`ws://host:port/dashboard`), once started. */
  get url(): string {
    return this.#url;
  }

  get subscribers(): number {
    return this.#wss?.clients.size ?? 0;
  }

  /** Starts the server and the subscriptions; resolves when listening. */
  async start(): Promise<string> {
    const server = createServer((req, res) => {
      if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        return;
      }
      if (req.url === '/snapshot') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.snapshot('tick')));
        return;
      }
      res.writeHead(404).end();
    });
    const wss = new WebSocketServer({ server, path: '/dashboard', perMessageDeflate: false, maxPayload: DASHBOARD_MAX_INBOUND_BYTES });
    wss.on('connection', (ws) => {
      // A new subscriber gets the current state at once.
      this.#send(ws, JSON.stringify(this.snapshot('tick', false)));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port ?? 0, this.#opts.host ?? '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#wss = wss;
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.#url = `ws://${host}:${a.port}/dashboard`;
    this.sync();
    this.#timer = setInterval(() => this.#tick(), this.updateIntervalMs);
    return this.#url;
  }

  /** Resolves once every listed agent's stream delivered its first event. */
  async ready(timeoutMs = 10_000): Promise<void> {
    this.sync();
    await Promise.all([...this.#agents.values()].map((s) => s.stream.ready(timeoutMs)));
  }

  /** Reconciles the subscriptions with the agents provider. */
  sync(): void {
    const want = new Map(this.#opts.agents().map((a) => [a.id, a]));
    for (const [id, st] of this.#agents) {
      const w = want.get(id);
      if (!w || w.url !== st.ref.url) {
        st.stream.close();
        this.#agents.delete(id);
        for (const a of this.evaluator.forget(id)) this.#alert(a);
      }
    }
    for (const [id, ref] of want) {
      if (this.#agents.has(id)) continue;
      const st: AgentState = {
        ref,
        lastEventMono: null,
        members: null,
        health: null,
        tasks: 0,
        stream: null as unknown as AgentEventStream,
      };
      st.stream = new AgentEventStream(ref, { onEvent: (ev, recv) => this.#onEvent(st, ev, recv) });
      this.#agents.set(id, st);
    }
  }

  /** Stream statistics per agent (messages, seq gaps, reconnects). */
  streamStats(): Record<string, { received: number; seqGaps: number; connects: number; lastError: string }> {
    const out: Record<string, { received: number; seqGaps: number; connects: number; lastError: string }> = {};
    for (const [id, st] of this.#agents) {
      out[id] = { received: st.stream.received, seqGaps: st.stream.seqGaps, connects: st.stream.connects, lastError: st.stream.lastError };
    }
    return out;
  }

  #onEvent(st: AgentState, ev: AgentEventMessage, recv: number): void {
    st.lastEventMono = recv;
    this.#eventTimes.push(recv);
    const d = ev.data;
    switch (ev.type) {
      case 'task':
        st.tasks++;
        this.#tasksTotal++;
        this.#taskTimes.push(recv);
        break;
      case 'hello':
      case 'member':
      case 'heartbeat':
        if (typeof d.membersAlive === 'number') st.members = d.membersAlive;
        else if (typeof d.alive === 'number') st.members = d.alive;
        else if (typeof d.members === 'number') st.members = d.members;
        if (typeof d.healthScore === 'number') st.health = d.healthScore;
        break;
      case 'mark': {
        this.marksReceived++;
        if (typeof d.token !== 'string') break;
        if (this.#marks.length >= MAX_PENDING_MARKS) this.marksDiscarded++;
        else this.#marks.push({ agent: st.ref.id, token: d.token, seq: ev.seq });
        break;
      }
      case 'metric': {
        const name = typeof d.name === 'string' ? d.name : '';
        const value = typeof d.value === 'number' ? d.value : Number.NaN;
        const n = normaliseMetricName(name);
        if (n === 'health_score') st.health = value;
        else if (n === 'members_alive') st.members = value;
        const r = this.evaluator.observe(st.ref.id, name, value, ev.ts);
        for (const a of r.raised) this.#alert(a);
        for (const a of r.resolved) this.#alert(a);
        break;
      }
    }
    this.emit('event', ev, recv);
  }

  #alert(a: Alert): void {
    this.emit('alert', a);
    if (!this.#wss) return;
    const now = performance.timeOrigin + performance.now();
    this.#broadcast(JSON.stringify({ type: 'alert', ts: now, alert: a } satisfies DashboardAlertMessage));
    this.#push('alert');
  }

  #prune(times: number[], now: number): void {
    const from = now - this.rateWindowMs;
    let i = 0;
    while (i < times.length && times[i]! < from) i++;
    if (i > 0) times.splice(0, i);
  }

  /** The current aggregate. `count` = false builds it without consuming a sequence number. */
  snapshot(reason: 'tick' | 'alert', count = true): DashboardUpdate {
    const mono = performance.now();
    this.#prune(this.#taskTimes, mono);
    this.#prune(this.#eventTimes, mono);
    const panels: AgentPanel[] = [];
    let connected = 0;
    let live = 0;
    for (const st of this.#agents.values()) {
      const age = st.lastEventMono === null ? null : mono - st.lastEventMono;
      const isOpen = st.stream.open;
      const isLive = isOpen && age !== null && age <= this.staleAfterMs;
      if (isOpen) connected++;
      if (isLive) live++;
      panels.push({
        id: st.ref.id,
        connected: isOpen,
        live: isLive,
        lastEventAgeMs: age === null ? null : Math.round(age * 10) / 10,
        members: st.members,
        healthScore: st.health,
        tasksTotal: st.tasks,
      });
    }
    panels.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    const windowS = this.rateWindowMs / 1000;
    return {
      type: 'update',
      seq: count ? ++this.#seq : this.#seq,
      ts: performance.timeOrigin + mono,
      reason,
      agents: { total: this.#agents.size, connected, live },
      tasks: { total: this.#tasksTotal, perSec: this.#taskTimes.length / windowS },
      eventsPerSec: this.#eventTimes.length / windowS,
      panels,
      alerts: this.evaluator.active(),
      marks: [],
    };
  }

  #tick(): void {
    this.sync();
    this.#push('tick');
  }

  #push(reason: 'tick' | 'alert'): void {
    const u = this.snapshot(reason);
    u.marks = this.#marks;
    this.#marks = [];
    this.#broadcast(JSON.stringify(u));
    this.pushed++;
    this.emit('update', u);
  }

  #broadcast(msg: string): void {
    if (!this.#wss) return;
    for (const ws of this.#wss.clients) this.#send(ws, msg);
  }

  #send(ws: WebSocket, msg: string): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    // A subscriber that cannot keep up (more than 1 MiB queued) misses updates rather than
    // growing the dashboard's memory without bound; the misses are counted.
    if (ws.bufferedAmount > 1 << 20) {
      this.dropped++;
      return;
    }
    ws.send(msg);
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const st of this.#agents.values()) st.stream.close();
    this.#agents.clear();
    const wss = this.#wss;
    const server = this.#server;
    this.#wss = null;
    this.#server = null;
    if (wss) {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }
}

/** A subscriber of a dashboard stream (used by the benchmark, usable by any client). */
export interface DashboardSubscriber {
  ws: WebSocket;
  close(): void;
}

export function subscribeDashboard(
  url: string,
  onMessage: (m: DashboardMessage, recvMono: number) => void,
): Promise<DashboardSubscriber> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000 });
    ws.on('message', (data) => {
      const recv = performance.now();
      let m: unknown;
      try {
        m = JSON.parse(data.toString());
      } catch {
        return;
      }
      const t = (m as { type?: unknown })?.type;
      if (t === 'update' || t === 'alert') onMessage(m as DashboardMessage, recv);
    });
    ws.once('open', () => resolve({ ws, close: () => ws.terminate() }));
    ws.once('error', (e) => reject(e));
  });
}
