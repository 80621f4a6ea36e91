/**
 * The reference agent: one listener implementing the agent contract v1 (docs/agent-contract.md).
 * Several agents may live in one process (`swarmbench agent --count K`); each has its own
 * listener, membership, state, ledger, faults, event hub and metrics registry, and nothing is
 * shared between them but the event loop.
 *
 * Idle cost: an agent's only timer is its gossip round, and a round is one small HTTP exchange
 * per peer (a 128-character membership digest, a state digest, the load; the answer says "same").
 * Measured on loopback, an exchange costs 0.4-0.7 ms of CPU (both sides; more on a busy machine),
 * so the idle rate is budgeted for the whole cluster: while nothing changes an agent gossips with
 * ONE peer every `max(gossipIntervalMs, members * 20 ms)` (at most every 10 s), which keeps an
 * idle cluster of any size at about 50 exchanges/s, and still probes each member about once per
 * period (failure detection). After any membership change the agent is "hot" for log2(N) + 3
 * rounds: it gossips with 3 peers every `gossipIntervalMs` (or every N * 1.5 ms in clusters over 66
 * agents, see HOT_CLUSTER_EXCHANGES_PER_SEC), so news spreads in O(log N) rounds.
 * Peers are chosen SWIM-style (round robin over a shuffle from a PRNG seeded by the agent id).
 */
import http from 'node:http';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { AgentClient, AgentClientError, type Reply } from './client.ts';
import { chooseExecutor, Ledger, type Candidate, type LedgerEntry } from './dispatch.ts';
import { EventHub } from './events.ts';
import { FaultState, parseFaults } from './faults.ts';
import { Membership, type MemberChange, type WireMember } from './membership.ts';
import { AgentMetrics } from './metrics.ts';
import { MAX_KEY_LENGTH, StateStore, type WireState, type WireVersion } from './state.ts';
import type { AgentInfo, TaskKind, TaskRequest, WorkflowOp, WorkflowStep } from './types.ts';
import { mulberry32 } from '../prng.ts';
import { epochMs, fnv1a, sleep } from './util.ts';
import { applyStep, cpuTaskResult, ioTaskResult, WORKFLOW_OPS } from './work.ts';
import { errorMessage } from '../errors.ts';

export const AGENT_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface AgentOptions {
  id: string;
  /** Address to listen on (127.1.0.2, 0.0.0.0, ...). */
  host: string;
  port: number;
  /** Host put in the agent's URL; default: `host`, or the first external IPv4 when host is 0.0.0.0. */
  advertiseHost?: string;
  seeds: string[];
  capacity: number;
  gossipIntervalMs: number;
  failureTimeoutMs: number;
  /** How many agents share this process (for /v1/info and metrics). */
  agentsInProcess?: () => number;
}

/** Peers a hot gossip round talks to (after a membership change). */
export const FANOUT = 3;
/** Peers a quiet gossip round talks to. */
export const IDLE_FANOUT = 1;
/** Quiet rounds: the cluster as a whole aims at this many exchanges per second. */
export const IDLE_CLUSTER_EXCHANGES_PER_SEC = 50;
/**
 * Hot rounds are budgeted too (about 1-2 cores' worth of exchanges), so a large pool forming
 * all at once does not drown its own machine in gossip (which would delay answers past the
 * failure timeout and start a storm of false suspicions).
 */
export const HOT_CLUSTER_EXCHANGES_PER_SEC = 2000;
/** Dispatch: failed attempts (connection error, timeout, 5xx) before a task is `failed`. */
export const MAX_ATTEMPTS = 5;
/** Dispatch: how long 429 answers are retried (with backoff) after acceptance. */
export const SATURATION_RETRY_MS = 30_000;
const TASK_CACHE_MS = 60_000;
/** A gossip round firing this late means the agent's own event loop is overloaded. */
const LAGGING_MS = 200;
/** SWARMBENCH_AGENT_DEBUG=1: log failed gossip exchanges on stderr. */
const DEBUG = process.env.SWARMBENCH_AGENT_DEBUG === '1';
const MAX_BODY = 4 * 1024 * 1024;
const PEER_LOAD_FRESH_MS = 1000;

interface Outcome {
  status: number;
  body: unknown;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Gossip request: sender id/url/incarnation, membership digest, state digest, load [inFlight, capacity]. */
interface GossipReq {
  f: string;
  u: string;
  i: number;
  d: string;
  s: string;
  l: [number, number];
}
interface GossipReply {
  i: number;
  l: [number, number];
  /** Our entries in the buckets that differ, and those buckets (we want the sender's). */
  m?: WireMember[];
  wb?: number[];
  /** Our state versions, when the state digests differ. */
  sv?: WireVersion[];
}
/** Sync: entries pushed (membership, state) and state keys wanted back. */
interface SyncReq {
  f: string;
  m?: WireMember[];
  st?: WireState[];
  ws?: string[];
}

function externalIPv4(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function validTask(body: unknown): TaskRequest | string {
  if (typeof body !== 'object' || body === null) return 'body must be an object';
  const b = body as Record<string, unknown>;
  if (typeof b.id !== 'string' || b.id.length === 0 || b.id.length > 256) return 'id must be a non-empty string (<= 256 chars)';
  if (b.kind !== 'io' && b.kind !== 'cpu') return 'kind must be "io" or "cpu"';
  const ioMs = b.ioMs ?? 20;
  if (typeof ioMs !== 'number' || !(ioMs >= 0) || ioMs > 600_000) return 'ioMs must be 0..600000';
  const cpuRounds = b.cpuRounds ?? 200;
  if (!Number.isInteger(cpuRounds) || (cpuRounds as number) < 0 || (cpuRounds as number) > 1_000_000) {
    return 'cpuRounds must be an integer 0..1000000';
  }
  const payload = b.payload ?? '';
  if (typeof payload !== 'string' || payload.length > 65_536) return 'payload must be a string (<= 64 KiB)';
  return { id: b.id, kind: b.kind as TaskKind, ioMs, cpuRounds: cpuRounds as number, payload };
}

export class Agent {
  readonly id: string;
  url = '';
  readonly capacity: number;
  readonly startedAt = Date.now();
  ready = false;
  inFlight = 0;
  tasksDone = 0;
  healthScore = 1;

  private readonly opts: AgentOptions;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private membershipRef: Membership | null = null;
  readonly state: StateStore;
  readonly ledger = new Ledger();
  readonly faults = new FaultState();
  readonly metrics: AgentMetrics;
  readonly events: EventHub;
  /** The coordination channel: gossip, echo (ping). Few keep-alive sockets per peer. */
  private readonly coord: AgentClient;
  /** Data traffic: task forwarding, state pushes, workflow steps, joins. */
  private readonly data: AgentClient;
  private readonly rand: () => number;
  private readonly taskCache = new Map<string, { at: number; p: Promise<Outcome> }>();
  private readonly outstanding = new Map<string, number>();
  private readonly peerLoad = new Map<string, { inFlight: number; capacity: number; at: number }>();
  private rr = 0;
  private hotRounds = 0;
  private roundTimer: NodeJS.Timeout | null = null;
  private nextRoundAt = 0;
  private roundRunning = false;
  /** How late the current round's timer fired: our own event-loop lag. */
  private roundLagMs = 0;
  private lastSweep = Date.now();
  private lastAlive = 1;
  stopped = false;
  private readonly gossipTimeoutMs: number;

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.capacity = opts.capacity;
    this.state = new StateStore(opts.id);
    this.rand = mulberry32(fnv1a(opts.id));
    // A probe that times out suspects the peer; an overloaded machine answers slowly, so the probe
    // waits as long as the failure timeout (a killed peer is refused at once anyway).
    this.gossipTimeoutMs = Math.max(200, opts.failureTimeoutMs);
    this.coord = new AgentClient({ maxSockets: 2, maxFreeSockets: 2, timeoutMs: this.gossipTimeoutMs });
    this.data = new AgentClient({ maxSockets: Math.max(16, opts.capacity), maxFreeSockets: 8, timeoutMs: 30_000 });
    this.metrics = new AgentMetrics(opts.id, {
      inFlight: () => this.inFlight,
      capacity: () => this.capacity,
      membersAlive: () => this.membership.aliveCount(),
      stateVersion: () => this.state.maxVersion,
      healthScore: () => this.healthScore,
      agentsInProcess: () => this.agentsInProcess(),
    });
    this.events = new EventHub({
      agentId: opts.id,
      delayMs: () => this.faults.latencyMs,
      hello: () => ({ id: this.id, url: this.url, contract: 'v1', version: AGENT_VERSION }),
      heartbeat: () => ({
        inFlight: this.inFlight,
        capacity: this.capacity,
        membersAlive: this.membership.aliveCount(),
        tasksDone: this.tasksDone,
        stateVersion: this.state.maxVersion,
        healthScore: this.healthScore,
        rss: process.memoryUsage.rss(),
      }),
    });
    this.server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => this.onRequest(req, res));
    this.server.on('connection', (s: Socket) => {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname !== '/v1/events' || this.stopped) {
        socket.destroy();
        return;
      }
      const hb = Number(u.searchParams.get('heartbeatMs') ?? 1000);
      this.events.handleUpgrade(req, socket, head, Number.isFinite(hb) ? Math.min(60_000, Math.max(50, hb)) : 1000);
    });
  }

  get membership(): Membership {
    if (!this.membershipRef) throw new Error('agent not started');
    return this.membershipRef;
  }

  agentsInProcess(): number {
    return this.opts.agentsInProcess?.() ?? 1;
  }

  /** Listen, then join through the seeds (in the background) and start gossiping. Returns the URL. */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.opts.host, port: this.opts.port, backlog: 1024 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    let host = this.opts.advertiseHost ?? this.opts.host;
    if (host === '0.0.0.0' || host === '::' || host === '') host = externalIPv4();
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.membershipRef = new Membership({ selfId: this.id, selfUrl: this.url, failureTimeoutMs: this.opts.failureTimeoutMs });
    void this.joinLoop();
    return this.url;
  }

  // ---------------------------------------------------------------- membership and gossip

  private async joinLoop(): Promise<void> {
    const seeds = this.opts.seeds.filter((s) => s && s.replace(/\/$/, '') !== this.url);
    if (seeds.length === 0) {
      this.ready = true;
      this.scheduleRound();
      return;
    }
    let delay = 50;
    let k = 0;
    while (!this.stopped) {
      if (seeds.length === 0) {
        // Every seed was this agent itself: start the cluster alone.
        this.ready = true;
        this.scheduleRound();
        return;
      }
      const seed = seeds[k++ % seeds.length]!;
      try {
        const r = await this.data.request<{ m: WireMember[]; st: WireState[]; error?: string }>(
          'POST',
          seed,
          '/v1/cluster/join',
          { id: this.id, url: this.url, i: this.membership.incarnation },
          2000,
        );
        if (r.status === 409 && r.body.error === 'self') {
          seeds.splice(seeds.indexOf(seed), 1);
          continue;
        }
        if (r.status === 200 && Array.isArray(r.body.m)) {
          this.onChanges(this.membership.merge(r.body.m));
          if (Array.isArray(r.body.st)) this.state.applyWire(r.body.st);
          this.ready = true;
          this.hot();
          this.scheduleRound();
          return;
        }
      } catch {
        // seed unreachable: try the next one
      }
      if (seeds.length > 0 && k % seeds.length === 0) {
        await sleep(delay);
        delay = Math.min(1000, delay * 2);
      }
    }
  }

  private idlePeriodMs(): number {
    const n = this.membership.aliveCount();
    const budgeted = (n * IDLE_FANOUT * 1000) / IDLE_CLUSTER_EXCHANGES_PER_SEC;
    return Math.min(10_000, Math.max(this.opts.gossipIntervalMs, budgeted));
  }

  private hot(): void {
    this.hotRounds = Math.ceil(Math.log2(this.membership.size + 1)) + 3;
    // A long idle wait is cut short so the news leaves now.
    if (this.roundTimer && !this.roundRunning && this.nextRoundAt - Date.now() > this.hotPeriodMs()) {
      clearTimeout(this.roundTimer);
      this.roundTimer = null;
      this.scheduleRound();
    }
  }

  private hotPeriodMs(): number {
    const n = this.membership.aliveCount();
    return Math.max(this.opts.gossipIntervalMs, (n * FANOUT * 1000) / HOT_CLUSTER_EXCHANGES_PER_SEC);
  }

  private scheduleRound(): void {
    if (this.stopped || this.roundTimer) return;
    const base = this.hotRounds > 0 ? this.hotPeriodMs() : this.idlePeriodMs();
    const delay = Math.max(1, Math.round(base * (0.8 + 0.4 * this.rand())));
    this.nextRoundAt = Date.now() + delay;
    const due = this.nextRoundAt;
    this.roundTimer = setTimeout(() => {
      this.roundTimer = null;
      this.roundLagMs = Math.max(0, Date.now() - due);
      void this.round();
    }, delay);
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    this.roundRunning = true;
    try {
      const fanout = this.hotRounds > 0 ? FANOUT : IDLE_FANOUT;
      if (this.hotRounds > 0) this.hotRounds--;
      this.onChanges(this.membership.tick());
      const targets = this.membership.nextTargets(fanout, this.rand);
      await Promise.all(targets.map((t) => this.gossipWith(t)));
      const now = Date.now();
      if (now - this.lastSweep > 5000) {
        this.lastSweep = now;
        this.sweep(now);
      }
    } finally {
      this.roundRunning = false;
      this.scheduleRound();
    }
  }

  private sweep(now: number): void {
    const cutoff = now - TASK_CACHE_MS;
    for (const [id, e] of this.taskCache) {
      if (e.at > cutoff) break;
      this.taskCache.delete(id);
    }
    this.ledger.sweep();
    for (const [id, l] of this.peerLoad) if (now - l.at > 60_000) this.peerLoad.delete(id);
  }

  private load(): [number, number] {
    return [this.inFlight, this.capacity];
  }

  private recordLoad(id: string, l: unknown): void {
    if (Array.isArray(l) && typeof l[0] === 'number' && typeof l[1] === 'number') {
      this.peerLoad.set(id, { inFlight: l[0], capacity: l[1], at: Date.now() });
    }
  }

  private async gossipWith(peer: string): Promise<void> {
    const url = this.membership.urlOf(peer);
    if (!url) return;
    const req: GossipReq = {
      f: this.id,
      u: this.url,
      i: this.membership.incarnation,
      d: this.membership.digest(),
      s: this.state.digest(),
      l: this.load(),
    };
    try {
      const r = await this.coord.request<GossipReply>('POST', url, '/v1/cluster/gossip', req);
      if (this.stopped) return;
      if (r.status !== 200 || typeof r.body !== 'object' || r.body === null) throw new AgentClientError('EBADSTATUS', url);
      const b = r.body;
      this.onChanges(this.membership.observe(peer, undefined, b.i));
      this.recordLoad(peer, b.l);
      if (Array.isArray(b.m)) this.onChanges(this.membership.merge(b.m));
      const sync: SyncReq = { f: this.id };
      let needed = false;
      if (Array.isArray(b.wb) && b.wb.length > 0) {
        sync.m = this.membership.entriesInBuckets(b.wb.filter((x) => Number.isInteger(x)));
        needed = true;
      }
      if (Array.isArray(b.sv)) {
        const { want, push } = this.state.compare(b.sv);
        if (want.length > 0) sync.ws = want;
        if (push.length > 0) sync.st = this.state.wire(push);
        needed ||= want.length > 0 || push.length > 0;
      }
      this.metrics.gossip.inc({ kind: 'probe', outcome: 'ok' });
      if (needed) {
        this.metrics.gossip.inc({ kind: 'sync', outcome: 'ok' });
        const r2 = await this.coord.request<{ st?: WireState[] }>('POST', url, '/v1/cluster/sync', sync);
        if (r2.status === 200 && Array.isArray(r2.body.st)) this.state.applyWire(r2.body.st);
      }
    } catch (err) {
      if (this.stopped) return;
      this.metrics.gossip.inc({ kind: 'probe', outcome: 'failed' });
      if (DEBUG) process.stderr.write(`[${this.id}] gossip with ${peer} failed: ${err instanceof AgentClientError ? err.code : String(err)}\n`);
      // Local health awareness (as in Lifeguard): a timeout while our own event loop is lagging
      // says more about us than about the peer, so it does not make the peer suspect.
      // A refused or reset connection always does.
      if (err instanceof AgentClientError && !(err.code === 'ETIMEDOUT' && this.roundLagMs > LAGGING_MS)) {
        this.onChanges(this.membership.reportFailure(peer));
      }
    }
  }

  /** Membership changes: events, the alive gauge's event, and a hot gossip period. */
  private onChanges(changes: MemberChange[]): void {
    if (changes.length === 0) return;
    this.hot();
    for (const c of changes) {
      this.events.emit('member', { id: c.id, url: c.url, status: c.status, incarnation: c.incarnation, previous: c.previous });
      if (c.status !== 'alive') this.outstanding.delete(c.id);
    }
    const alive = this.membership.aliveCount();
    if (alive !== this.lastAlive) {
      this.lastAlive = alive;
      this.events.emit('metric', { name: 'swarmbench_agent_members_alive', value: alive });
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /** Leave the cluster: announce `left` to every reachable member, then stop serving. */
  async leave(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ready = false;
    if (this.roundTimer) clearTimeout(this.roundTimer);
    if (this.membershipRef) {
      const entry = this.membership.leave();
      const peers = this.membership.reachable();
      await Promise.all(
        peers.map(async (p) => {
          const url = this.membership.urlOf(p);
          if (!url) return;
          try {
            await this.coord.request('POST', url, '/v1/cluster/sync', { f: this.id, m: [entry] }, 500);
          } catch {
            // best effort: gossip of the others spreads it
          }
        }),
      );
    }
    await this.close();
  }

  /** Stop serving gracefully (no announcement). */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.roundTimer) clearTimeout(this.roundTimer);
    this.events.close();
    this.coord.close();
    this.data.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 200).unref();
    });
  }

  /**
   * Die abruptly (the local platform's kill of one agent among several in a process): the
   * listener and every socket are destroyed at once, timers stop, nothing is announced.
   */
  crash(): void {
    this.stopped = true;
    this.ready = false;
    if (this.roundTimer) clearTimeout(this.roundTimer);
    for (const s of this.sockets) s.destroy();
    this.server.close();
    this.events.close();
    this.coord.close();
    this.data.close();
  }

  // ---------------------------------------------------------------- HTTP

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const receivedAt = performance.now();
    this.route(req, res, receivedAt).then(
      (out) => {
        if (out) send(res, out.status, out.body);
      },
      (err: unknown) => {
        if (err instanceof HttpError) send(res, err.status, { error: err.message });
        else send(res, 500, { error: errorMessage(err) });
      },
    );
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, receivedAt: number): Promise<Outcome | null> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const m = req.method ?? 'GET';

    // Health and faults are never delayed; the internal gossip/join/sync/state channel neither
    // (the latency fault slows the agent's service and its coordination echo, not its membership).
    switch (path) {
      case '/healthz':
        return { status: 200, body: { ok: true } };
      case '/readyz':
        return this.ready ? { status: 200, body: { ready: true } } : { status: 503, body: { ready: false, error: 'not joined' } };
      case '/v1/faults':
        return this.handleFaults(m, req);
      case '/v1/cluster/join':
        return this.handleJoin(expect(m, 'POST') && (await readJson(req)));
      case '/v1/cluster/gossip':
        return this.handleGossip(expect(m, 'POST') && (await readJson(req)));
      case '/v1/cluster/sync':
        return this.handleSync(expect(m, 'POST') && (await readJson(req)));
      case '/v1/cluster/state': {
        const b = expect(m, 'POST') && ((await readJson(req)) as { st?: WireState[] });
        if (Array.isArray(b.st)) this.state.applyWire(b.st);
        return { status: 200, body: { ok: true } };
      }
    }

    if (this.faults.latencyMs > 0) await sleep(this.faults.latencyMs);

    switch (path) {
      case '/v1/cluster/echo':
        expect(m, 'POST');
        await drain(req);
        return { status: 200, body: { id: this.id } };
      case '/v1/cluster/step':
        return this.handleStep(expect(m, 'POST') && (await readJson(req)));
      case '/v1/info':
        expect(m, 'GET');
        return { status: 200, body: this.info() };
      case '/v1/time':
        return { status: 200, body: { now: epochMs() } };
      case '/v1/tasks': {
        const t = validTask(expect(m, 'POST') && (await readJson(req)));
        if (typeof t === 'string') return { status: 400, body: { error: t } };
        return this.runTask(t, receivedAt);
      }
      case '/v1/dispatch':
        return this.handleDispatch(expect(m, 'POST') && (await readJson(req)));
      case '/v1/dispatch/query': {
        const b = expect(m, 'POST') && ((await readJson(req)) as { ids?: unknown });
        if (!Array.isArray(b.ids) || b.ids.length > 100_000 || !b.ids.every((x) => typeof x === 'string')) {
          return { status: 400, body: { error: 'ids must be an array of strings (<= 100000)' } };
        }
        return { status: 200, body: { tasks: (b.ids as string[]).map((id) => this.ledger.view(id)) } };
      }
      case '/v1/members':
        expect(m, 'GET');
        return { status: 200, body: { self: this.id, members: this.membership.list(), alive: this.membership.aliveCount() } };
      case '/v1/ping':
        return this.handlePing(expect(m, 'POST') && (await readJson(req)));
      case '/v1/workflows':
        return this.handleWorkflow(expect(m, 'POST') && (await readJson(req)));
      case '/v1/events/mark': {
        const b = expect(m, 'POST') && ((await readJson(req)) as { token?: unknown });
        if (typeof b.token !== 'string') return { status: 400, body: { error: 'token must be a string' } };
        const ts = epochMs();
        this.events.emit('mark', { token: b.token });
        return { status: 200, body: { token: b.token, ts } };
      }
      case '/metrics': {
        expect(m, 'GET');
        const text = await this.metrics.text();
        res.writeHead(200, { 'content-type': this.metrics.contentType, 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return null;
      }
    }
    if (path.startsWith('/v1/dispatch/')) {
      expect(m, 'GET');
      return { status: 200, body: this.ledger.view(decodeURIComponent(path.slice('/v1/dispatch/'.length))) };
    }
    if (path.startsWith('/v1/state/')) {
      let key: string;
      try {
        key = decodeURIComponent(path.slice('/v1/state/'.length));
      } catch {
        return { status: 400, body: { error: 'bad key encoding' } };
      }
      if (key.length === 0 || key.length > MAX_KEY_LENGTH) return { status: 400, body: { error: 'key must be 1..256 chars' } };
      if (m === 'GET') {
        const e = this.state.get(key);
        return e ? { status: 200, body: e } : { status: 404, body: { error: 'no such key', key } };
      }
      if (m === 'PUT') {
        const b = await readJson(req);
        if (typeof b !== 'object' || b === null || !('value' in b)) return { status: 400, body: { error: 'body must be {"value": ...}' } };
        return { status: 200, body: this.writeState(key, (b as { value: unknown }).value) };
      }
      throw new HttpError(405, 'method not allowed');
    }
    return { status: 404, body: { error: 'not found', path } };
  }

  info(): AgentInfo {
    const mem = process.memoryUsage();
    return {
      id: this.id,
      url: this.url,
      contract: 'v1',
      version: AGENT_VERSION,
      pid: process.pid,
      startedAt: this.startedAt,
      capacity: this.capacity,
      inFlight: this.inFlight,
      members: this.membership.aliveCount(),
      stateVersion: this.state.maxVersion,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed },
      agentsInProcess: this.agentsInProcess(),
    };
  }

  // ---------------------------------------------------------------- cluster internals

  private handleJoin(body: unknown): Outcome {
    const b = body as { id?: unknown; url?: unknown; i?: unknown };
    if (typeof b.id !== 'string' || typeof b.url !== 'string') return { status: 400, body: { error: 'id and url required' } };
    if (b.id === this.id) return { status: 409, body: { error: 'self' } };
    if (!this.ready) return { status: 503, body: { error: 'not joined yet' } };
    const inc = Number.isInteger(b.i) ? (b.i as number) : 0;
    this.onChanges(this.membership.merge([[b.id, b.url, inc, 0]]));
    this.membership.observe(b.id);
    return { status: 200, body: { self: this.id, m: this.membership.all(), st: this.state.wire() } };
  }

  private handleGossip(body: unknown): Outcome {
    const b = body as Partial<GossipReq>;
    if (typeof b.f !== 'string' || typeof b.u !== 'string' || typeof b.d !== 'string') {
      return { status: 400, body: { error: 'bad gossip' } };
    }
    if (this.stopped) return { status: 503, body: { error: 'leaving' } };
    this.onChanges(this.membership.observe(b.f, b.u, typeof b.i === 'number' ? b.i : 0));
    this.recordLoad(b.f, b.l);
    const reply: GossipReply = { i: this.membership.incarnation, l: this.load() };
    const diff = this.membership.diffBuckets(b.d);
    if (diff.length > 0) {
      reply.m = this.membership.entriesInBuckets(diff);
      reply.wb = diff;
    }
    if (b.s !== this.state.digest()) reply.sv = this.state.versions();
    return { status: 200, body: reply };
  }

  private handleSync(body: unknown): Outcome {
    const b = body as Partial<SyncReq>;
    if (Array.isArray(b.m)) this.onChanges(this.membership.merge(b.m));
    if (Array.isArray(b.st)) this.state.applyWire(b.st);
    const out: { st?: WireState[] } = {};
    if (Array.isArray(b.ws)) out.st = this.state.wire(b.ws.filter((k) => typeof k === 'string'));
    return { status: 200, body: out };
  }

  // ---------------------------------------------------------------- tasks

  /** Run a task here (contract `/v1/tasks`), with idempotent ids and load shedding. */
  runTask(t: TaskRequest, receivedAt: number): Promise<Outcome> {
    const cached = this.taskCache.get(t.id);
    if (cached) return cached.p;
    if (this.inFlight >= this.capacity) {
      this.metrics.tasks.inc({ kind: t.kind, outcome: 'rejected' });
      return Promise.resolve({ status: 429, body: { error: 'saturated', inFlight: this.inFlight, capacity: this.capacity } });
    }
    const p = this.execute(t, receivedAt);
    this.taskCache.set(t.id, { at: Date.now(), p });
    return p;
  }

  private async execute(t: TaskRequest, receivedAt: number): Promise<Outcome> {
    this.inFlight++;
    try {
      const start = performance.now();
      if (this.faults.nextTaskErrors()) {
        this.metrics.tasks.inc({ kind: t.kind, outcome: 'error' });
        return { status: 500, body: { error: 'injected', id: t.id } };
      }
      let result: string;
      if (t.kind === 'io') {
        await sleep(t.ioMs ?? 20);
        result = ioTaskResult(t.payload ?? '');
      } else {
        result = cpuTaskResult(t.payload ?? '', t.cpuRounds ?? 200);
      }
      const end = performance.now();
      const runMs = end - start;
      this.metrics.tasks.inc({ kind: t.kind, outcome: 'ok' });
      this.metrics.taskDuration.observe({ kind: t.kind }, runMs / 1000);
      this.tasksDone++;
      this.events.emit('task', { id: t.id, kind: t.kind, runMs });
      return { status: 200, body: { id: t.id, agent: this.id, kind: t.kind, result, queuedMs: start - receivedAt, runMs } };
    } finally {
      this.inFlight--;
    }
  }

  // ---------------------------------------------------------------- dispatch

  private candidates(): Candidate[] {
    const now = Date.now();
    return this.membership.aliveIds().map((id) => {
      const mine = this.outstanding.get(id) ?? 0;
      if (id === this.id) return { id, load: Math.max(mine, this.inFlight), capacity: this.capacity };
      const pl = this.peerLoad.get(id);
      const reported = pl && now - pl.at < PEER_LOAD_FRESH_MS ? pl.inFlight : 0;
      return { id, load: Math.max(mine, reported), capacity: pl?.capacity ?? this.capacity };
    });
  }

  private handleDispatch(body: unknown): Outcome {
    const t = validTask(body);
    if (typeof t === 'string') return { status: 400, body: { error: t } };
    const accepted = { status: 202, body: { id: t.id, accepted: true, coordinator: this.id } };
    if (this.ledger.get(t.id)) return accepted;
    const first = chooseExecutor(this.candidates(), this.rr++);
    if (first === null) {
      this.metrics.dispatched.inc({ outcome: 'rejected' });
      return { status: 429, body: { error: 'saturated', inFlight: this.inFlight, capacity: this.capacity } };
    }
    const entry = this.ledger.accept(t);
    this.metrics.dispatched.inc({ outcome: 'accepted' });
    if (this.faults.takeLoss()) return accepted; // planted data-loss bug: accepted, never run
    void this.forward(entry, first);
    return accepted;
  }

  private async forward(entry: LedgerEntry, first: string): Promise<void> {
    const task = entry.task!;
    const tried = new Set<string>();
    let failures = 0;
    let lastError = 'no executor';
    let choice: string | null = first;
    let backoff = 5;
    while (!this.stopped) {
      if (choice === null) {
        if (Date.now() - entry.acceptedAt > SATURATION_RETRY_MS) break;
        await sleep(backoff);
        backoff = Math.min(500, backoff * 2);
        choice = chooseExecutor(this.candidates(), this.rr++, tried);
        continue;
      }
      entry.attempts++;
      entry.executor = choice;
      tried.add(choice);
      this.outstanding.set(choice, (this.outstanding.get(choice) ?? 0) + 1);
      let saturated = false;
      try {
        let out: Reply<unknown>;
        if (choice === this.id) {
          out = await this.runTask(task, performance.now());
        } else {
          const url = this.membership.urlOf(choice);
          if (!url) throw new AgentClientError('EUNKNOWN', choice);
          const timeout = 10_000 + (task.kind === 'io' ? (task.ioMs ?? 20) : 0);
          out = await this.data.task(url, task, timeout);
        }
        if (out.status === 200) {
          const r = out.body as { result?: unknown };
          this.ledger.finish(entry, 'done', typeof r.result === 'string' ? r.result : null, null);
          this.metrics.dispatched.inc({ outcome: 'done' });
          return;
        }
        lastError = `${choice}: HTTP ${out.status}`;
        saturated = out.status === 429;
        if (saturated) {
          // Believe it: the executor is full until its next gossip says otherwise.
          const pl = this.peerLoad.get(choice);
          this.peerLoad.set(choice, { inFlight: pl?.capacity ?? this.capacity, capacity: pl?.capacity ?? this.capacity, at: Date.now() });
        }
      } catch (err) {
        if (this.stopped) return;
        lastError = `${choice}: ${err instanceof AgentClientError ? err.code : String(err)}`;
        if (err instanceof AgentClientError && choice !== this.id) this.onChanges(this.membership.reportFailure(choice));
      } finally {
        const n = (this.outstanding.get(choice) ?? 1) - 1;
        if (n > 0) this.outstanding.set(choice, n);
        else this.outstanding.delete(choice);
      }
      this.metrics.dispatched.inc({ outcome: 'redispatched' });
      if (saturated) {
        if (Date.now() - entry.acceptedAt > SATURATION_RETRY_MS) break;
        await sleep(backoff);
        backoff = Math.min(500, backoff * 2);
      } else if (++failures >= MAX_ATTEMPTS) {
        break;
      }
      choice = chooseExecutor(this.candidates(), this.rr++, tried);
      if (tried.size >= this.membership.aliveCount()) tried.clear();
    }
    this.ledger.finish(entry, 'failed', null, lastError);
    this.metrics.dispatched.inc({ outcome: 'failed' });
  }

  // ---------------------------------------------------------------- state

  private writeState(key: string, value: unknown): unknown {
    const e = this.state.write(key, value);
    const st: WireState[] = [[e.key, e.version, e.writer, e.value]];
    for (const id of this.membership.aliveIds()) {
      if (id === this.id) continue;
      const url = this.membership.urlOf(id);
      if (url) this.data.request('POST', url, '/v1/cluster/state', { f: this.id, st }, 2000).catch(() => undefined);
    }
    return e;
  }

  // ---------------------------------------------------------------- ping and workflows

  private async handlePing(body: unknown): Promise<Outcome> {
    const b = body as { peer?: unknown; count?: unknown };
    if (typeof b.peer !== 'string' || b.peer.length === 0) return { status: 400, body: { error: 'peer must be an agent id or URL' } };
    const count = b.count === undefined ? 10 : b.count;
    if (!Number.isInteger(count) || (count as number) < 1 || (count as number) > 1000) {
      return { status: 400, body: { error: 'count must be 1..1000' } };
    }
    const url = /^https?:\/\//.test(b.peer) ? b.peer : this.membership.urlOf(b.peer);
    if (!url) return { status: 404, body: { error: 'unknown peer', peer: b.peer } };
    const rttMs: number[] = [];
    try {
      // One unmeasured echo opens (or reuses) the keep-alive connection: the RTT is the
      // coordination channel's round trip, not a TCP handshake.
      await this.coord.request('POST', url, '/v1/cluster/echo', '{}', 10_000);
      for (let i = 0; i < (count as number); i++) {
        const t0 = performance.now();
        const r = await this.coord.request('POST', url, '/v1/cluster/echo', '{}', 10_000);
        const dt = performance.now() - t0;
        if (r.status !== 200) return { status: 502, body: { error: `peer answered ${r.status}`, peer: b.peer } };
        rttMs.push(dt);
      }
    } catch (err) {
      return { status: 502, body: { error: errorMessage(err), peer: b.peer } };
    }
    return { status: 200, body: { peer: b.peer, rttMs } };
  }

  private handleStep(body: unknown): Outcome {
    const b = body as { op?: unknown; arg?: unknown; input?: unknown };
    if (!WORKFLOW_OPS.includes(b.op as WorkflowOp) || typeof b.input !== 'string') {
      return { status: 400, body: { error: 'op and input required' } };
    }
    if (b.arg !== undefined && typeof b.arg !== 'string') return { status: 400, body: { error: 'arg must be a string' } };
    return { status: 200, body: { agent: this.id, output: applyStep(b.op as WorkflowOp, b.input, b.arg) } };
  }

  private async handleWorkflow(body: unknown): Promise<Outcome> {
    const b = body as { id?: unknown; input?: unknown; steps?: unknown };
    if (typeof b.id !== 'string' || typeof b.input !== 'string' || !Array.isArray(b.steps) || b.steps.length > 1000) {
      return { status: 400, body: { error: 'id, input and steps (<= 1000) required' } };
    }
    const steps: WorkflowStep[] = [];
    for (const s of b.steps as unknown[]) {
      const st = s as { op?: unknown; arg?: unknown };
      if (typeof s !== 'object' || s === null || !WORKFLOW_OPS.includes(st.op as WorkflowOp)) {
        return { status: 400, body: { error: `steps[].op must be one of ${WORKFLOW_OPS.join(', ')}` } };
      }
      if (st.arg !== undefined && typeof st.arg !== 'string') return { status: 400, body: { error: 'steps[].arg must be a string' } };
      steps.push(st.arg === undefined ? { op: st.op as WorkflowOp } : { op: st.op as WorkflowOp, arg: st.arg });
    }
    const alive = this.membership.aliveIds();
    const self = Math.max(0, alive.indexOf(this.id));
    const hops: { step: number; agent: string; ms: number }[] = [];
    let value = b.input;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      let done = false;
      let lastErr = '';
      // Step i runs on the i-th member after this one; if it fails, on the next ones.
      for (let k = 0; k < alive.length && !done; k++) {
        const agentId = alive[(self + 1 + i + k) % alive.length]!;
        const t0 = performance.now();
        if (agentId === this.id) {
          value = applyStep(step.op, value, step.arg);
          done = true;
        } else {
          const url = this.membership.urlOf(agentId);
          if (!url) continue;
          try {
            const r = await this.data.request<{ output?: unknown }>('POST', url, '/v1/cluster/step', { ...step, input: value }, 10_000);
            if (r.status === 200 && typeof r.body.output === 'string') {
              value = r.body.output;
              done = true;
            } else lastErr = `${agentId}: HTTP ${r.status}`;
          } catch (err) {
            lastErr = `${agentId}: ${err instanceof AgentClientError ? err.code : String(err)}`;
          }
        }
        if (done) hops.push({ step: i, agent: agentId, ms: performance.now() - t0 });
      }
      if (!done) return { status: 502, body: { error: `step ${i} failed: ${lastErr}`, id: b.id, step: i } };
    }
    return { status: 200, body: { id: b.id, output: value, hops } };
  }

  // ---------------------------------------------------------------- faults

  private async handleFaults(m: string, req: http.IncomingMessage): Promise<Outcome> {
    if (m === 'GET') return { status: 200, body: this.faults.toJSON() };
    if (m === 'DELETE') {
      this.faults.clear();
      this.setHealth(1);
      return { status: 200, body: this.faults.toJSON() };
    }
    if (m !== 'PUT') throw new HttpError(405, 'method not allowed');
    const f = parseFaults(await readJson(req));
    if (typeof f === 'string') return { status: 400, body: { error: f } };
    this.faults.set(f);
    this.setHealth(f.breach?.healthScore ?? 1);
    return { status: 200, body: this.faults.toJSON() };
  }

  private setHealth(v: number): void {
    if (v === this.healthScore) return;
    this.healthScore = v;
    this.events.emit('metric', { name: 'swarmbench_agent_health_score', value: v });
  }
}

// ------------------------------------------------------------------ HTTP helpers

function expect(method: string, want: string): true {
  if (method !== want) throw new HttpError(405, `method not allowed (use ${want})`);
  return true;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function drain(req: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    req.resume();
    req.on('end', resolve);
    req.on('error', () => resolve());
  });
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
      if (text.length === 0) return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new HttpError(400, 'body is not JSON'));
      }
    });
  });
}
