/**
 * The network side of one agent's membership: joining through the seeds, the gossip rounds
 * (push-pull exchanges that are also SWIM probes), the internal routes they talk to
 * (`/v1/cluster/join`, `/v1/cluster/gossip`, `/v1/cluster/sync`, `/v1/cluster/state`), the
 * peers' load they carry, and the leave announcement. The membership table itself (pure logic)
 * is in `membership.ts`, the replicated state in `state.ts`.
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
 * The `slow-gossip` defect (src/agent/defects.ts) multiplies both periods by its factor, keeps
 * hot rounds at fan-out 1 and drops the direct push of state writes (state then spreads by gossip).
 *
 * Bounded (src/agent/limits.ts): every internal route checks its sender's id and URL (400 naming
 * the field), the member entries per message (MAX_MEMBERS_PER_MESSAGE, 413) and the state entries
 * or keys per message (MAX_STATE_KEYS, 413); what the membership table or the state store refuse
 * past their own caps is dropped and counted there. State travels in batches of at most
 * STATE_BATCH_BYTES (join answers, sync pushes and answers), so no message outgrows the peer's
 * 4 MiB body cap; gossip brings the rest in the next rounds. A message that cannot be serialized
 * is never sent (a state push is serialized once, inside a try), so nothing waits on it.
 */
import type { Agent } from './agent.ts';
import { AgentClientError } from './client.ts';
import type { Outcome } from './http.ts';
import { LimitExceeded, MAX_MEMBERS_PER_MESSAGE, MAX_STATE_KEY_CHARS, MAX_STATE_KEYS, memberIdProblem, memberUrlProblem, STATE_BATCH_BYTES } from './limits.ts';
import type { MemberChange, WireMember } from './membership.ts';
import type { WireState, WireVersion } from './state.ts';
import { mulberry32 } from '../prng.ts';
import { fnv1a, sleep } from './util.ts';

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
/** A gossip round firing this late means the agent's own event loop is overloaded. */
const LAGGING_MS = 200;
/** SWARMBENCH_AGENT_DEBUG=1: log failed gossip exchanges on stderr. */
const DEBUG = process.env.SWARMBENCH_AGENT_DEBUG === '1';
/** Longest membership digest (16 buckets x 8 hex digits) and state digest (`count:hash`) accepted. */
const MAX_DIGEST_CHARS = 128;

/** 413 when a message's list is longer than `max`; null when it fits (or is absent). */
function tooMany(list: unknown, max: number, limit: string, what: string): Outcome | null {
  return Array.isArray(list) && list.length > max ? new LimitExceeded(413, limit, list.length, max, what).outcome() : null;
}

/** Keys wanted from a peer, at most about STATE_BATCH_BYTES of key characters. */
function batchKeys(keys: string[]): string[] {
  let chars = 0;
  let n = 0;
  while (n < keys.length && n < MAX_STATE_KEYS && chars + keys[n]!.length <= STATE_BATCH_BYTES / 2) chars += keys[n++]!.length;
  return n === keys.length ? keys : keys.slice(0, n);
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

export interface GossipOptions {
  seeds: string[];
  gossipIntervalMs: number;
}

/** A peer's load as it last told us (or as a 429 from it implied). */
export interface PeerLoad {
  inFlight: number;
  capacity: number;
  at: number;
}

export class Gossip {
  private readonly agent: Agent;
  private readonly opts: GossipOptions;
  private readonly rand: () => number;
  readonly peerLoad = new Map<string, PeerLoad>();
  private hotRounds = 0;
  private roundTimer: NodeJS.Timeout | null = null;
  private nextRoundAt = 0;
  private roundRunning = false;
  /** How late the current round's timer fired: our own event-loop lag. */
  private roundLagMs = 0;
  private lastSweep = Date.now();
  private lastAlive = 1;
  /** `state.dropped` and `membership.dropped` when last reported. */
  private droppedSeen: [number, number] = [0, 0];

  constructor(agent: Agent, opts: GossipOptions) {
    this.agent = agent;
    this.opts = opts;
    this.rand = mulberry32(fnv1a(agent.id));
  }

  /** Join through the seeds (retrying until one answers), then start the rounds. */
  async join(): Promise<void> {
    const a = this.agent;
    const seeds = this.opts.seeds.filter((s) => s && s.replace(/\/$/, '') !== a.url);
    if (seeds.length === 0) {
      a.ready = true;
      this.scheduleRound();
      return;
    }
    let delay = 50;
    let k = 0;
    while (!a.stopped) {
      if (seeds.length === 0) {
        // Every seed was this agent itself: start the cluster alone.
        a.ready = true;
        this.scheduleRound();
        return;
      }
      const seed = seeds[k++ % seeds.length]!;
      try {
        const r = await a.data.request<{ m: WireMember[]; st: WireState[]; error?: string }>(
          'POST',
          seed,
          '/v1/cluster/join',
          { id: a.id, url: a.url, i: a.membership.incarnation },
          2000,
        );
        if (r.status === 409 && r.body.error === 'self') {
          seeds.splice(seeds.indexOf(seed), 1);
          continue;
        }
        if (r.status === 200 && Array.isArray(r.body.m)) {
          this.onChanges(a.membership.merge(r.body.m));
          if (Array.isArray(r.body.st) && r.body.st.length <= MAX_STATE_KEYS) a.state.applyWire(r.body.st);
          a.ready = true;
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

  /** Cancel the next round (the agent is stopping). */
  stop(): void {
    if (this.roundTimer) clearTimeout(this.roundTimer);
  }

  /** Announce `left` to every reachable member (best effort), before the agent stops serving. */
  async announceLeave(): Promise<void> {
    const a = this.agent;
    const entry = a.membership.leave();
    const peers = a.membership.reachable();
    await Promise.all(
      peers.map(async (p) => {
        const url = a.membership.urlOf(p);
        if (!url) return;
        try {
          await a.coord.request('POST', url, '/v1/cluster/sync', { f: a.id, m: [entry] }, 500);
        } catch {
          // best effort: gossip of the others spreads it
        }
      }),
    );
  }

  /** Membership changes: events, the alive gauge's event, and a hot gossip period. */
  onChanges(changes: MemberChange[]): void {
    if (changes.length === 0) return;
    const a = this.agent;
    this.hot();
    for (const c of changes) {
      a.events.emit('member', { id: c.id, url: c.url, status: c.status, incarnation: c.incarnation, previous: c.previous });
      if (c.status !== 'alive') a.coordinator.forget(c.id);
    }
    const alive = a.membership.aliveCount();
    if (alive !== this.lastAlive) {
      this.lastAlive = alive;
      a.events.emit('metric', { name: 'swarmbench_agent_members_alive', value: alive });
    }
  }

  /** Forget loads not heard of for a minute. */
  sweepLoads(now: number): void {
    for (const [id, l] of this.peerLoad) if (now - l.at > 60_000) this.peerLoad.delete(id);
  }

  // ---------------------------------------------------------------- rounds

  private idlePeriodMs(): number {
    const n = this.agent.membership.aliveCount();
    const budgeted = (n * IDLE_FANOUT * 1000) / IDLE_CLUSTER_EXCHANGES_PER_SEC;
    return Math.min(10_000, Math.max(this.opts.gossipIntervalMs, budgeted)) * this.agent.defects.gossipSlowdown;
  }

  private hot(): void {
    this.hotRounds = Math.ceil(Math.log2(this.agent.membership.size + 1)) + 3;
    // A long idle wait is cut short so the news leaves now.
    if (this.roundTimer && !this.roundRunning && this.nextRoundAt - Date.now() > this.hotPeriodMs()) {
      clearTimeout(this.roundTimer);
      this.roundTimer = null;
      this.scheduleRound();
    }
  }

  private hotPeriodMs(): number {
    const n = this.agent.membership.aliveCount();
    return Math.max(this.opts.gossipIntervalMs, (n * FANOUT * 1000) / HOT_CLUSTER_EXCHANGES_PER_SEC) * this.agent.defects.gossipSlowdown;
  }

  private scheduleRound(): void {
    if (this.agent.stopped || this.roundTimer) return;
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
    const a = this.agent;
    if (a.stopped) return;
    this.roundRunning = true;
    try {
      const fanout = this.hotRounds > 0 && a.defects.gossipSlowdown === 1 ? FANOUT : IDLE_FANOUT;
      if (this.hotRounds > 0) this.hotRounds--;
      this.onChanges(a.membership.tick());
      const targets = a.membership.nextTargets(fanout, this.rand);
      await Promise.all(targets.map((t) => this.gossipWith(t)));
      const now = Date.now();
      if (now - this.lastSweep > 5000) {
        this.lastSweep = now;
        a.sweep(now);
        this.reportDrops();
      }
    } finally {
      this.roundRunning = false;
      this.scheduleRound();
    }
  }

  /**
   * One stderr line (at most every 5 s, from the sweep) when entries from peers were dropped by a
   * cap since the last one: the counters themselves are `state.dropped`, `membership.dropped`.
   */
  private reportDrops(): void {
    const a = this.agent;
    const st = a.state.dropped;
    const mb = a.membership.dropped;
    if (st === this.droppedSeen[0] && mb === this.droppedSeen[1]) return;
    process.stderr.write(
      `[${a.id}] dropped from peers past the caps (src/agent/limits.ts): ${st - this.droppedSeen[0]} state entries, ${mb - this.droppedSeen[1]} member entries\n`,
    );
    this.droppedSeen = [st, mb];
  }

  private load(): [number, number] {
    return [this.agent.inFlight, this.agent.capacity];
  }

  /** A member's reported load (only for ids in the table: the map never outgrows it). */
  private recordLoad(id: string, l: unknown): void {
    if (!this.agent.membership.get(id)) return;
    if (Array.isArray(l) && Number.isFinite(l[0]) && Number.isFinite(l[1]) && l[0] >= 0 && l[1] >= 0) {
      this.peerLoad.set(id, { inFlight: l[0], capacity: l[1], at: Date.now() });
    }
  }

  private async gossipWith(peer: string): Promise<void> {
    const a = this.agent;
    const url = a.membership.urlOf(peer);
    if (!url) return;
    const req: GossipReq = {
      f: a.id,
      u: a.url,
      i: a.membership.incarnation,
      d: a.membership.digest(),
      s: a.state.digest(),
      l: this.load(),
    };
    try {
      const r = await a.coord.request<GossipReply>('POST', url, '/v1/cluster/gossip', req);
      if (a.stopped) return;
      if (r.status !== 200 || typeof r.body !== 'object' || r.body === null) throw new AgentClientError('EBADSTATUS', url);
      const b = r.body;
      this.onChanges(a.membership.observe(peer, undefined, b.i));
      this.recordLoad(peer, b.l);
      if (Array.isArray(b.m) && b.m.length <= MAX_MEMBERS_PER_MESSAGE) this.onChanges(a.membership.merge(b.m));
      const sync: SyncReq = { f: a.id };
      let needed = false;
      if (Array.isArray(b.wb) && b.wb.length > 0 && b.wb.length <= 16) {
        sync.m = a.membership.entriesInBuckets(b.wb.filter((x) => Number.isInteger(x)));
        needed = true;
      }
      // A peer never holds more than MAX_STATE_KEYS keys: a longer summary is ignored.
      if (Array.isArray(b.sv) && b.sv.length <= MAX_STATE_KEYS) {
        const { want, push } = a.state.compare(b.sv);
        if (want.length > 0) sync.ws = batchKeys(want);
        if (push.length > 0) sync.st = a.state.wire(push, STATE_BATCH_BYTES);
        needed ||= want.length > 0 || push.length > 0;
      }
      a.metrics.gossip.inc({ kind: 'probe', outcome: 'ok' });
      if (needed) {
        a.metrics.gossip.inc({ kind: 'sync', outcome: 'ok' });
        const r2 = await a.coord.request<{ st?: WireState[] }>('POST', url, '/v1/cluster/sync', sync);
        if (r2.status === 200 && Array.isArray(r2.body.st) && r2.body.st.length <= MAX_STATE_KEYS) a.state.applyWire(r2.body.st);
      }
    } catch (err) {
      if (a.stopped) return;
      a.metrics.gossip.inc({ kind: 'probe', outcome: 'failed' });
      if (DEBUG) process.stderr.write(`[${a.id}] gossip with ${peer} failed: ${err instanceof AgentClientError ? err.code : String(err)}\n`);
      // Local health awareness (as in Lifeguard): a timeout while our own event loop is lagging
      // says more about us than about the peer, so it does not make the peer suspect.
      // A refused or reset connection always does.
      if (err instanceof AgentClientError && !(err.code === 'ETIMEDOUT' && this.roundLagMs > LAGGING_MS)) {
        this.onChanges(a.membership.reportFailure(peer));
      }
    }
  }

  // ---------------------------------------------------------------- the internal routes

  /**
   * `POST /v1/cluster/join`: add the sender, answer the whole membership table and the state (a
   * first batch of STATE_BATCH_BYTES; gossip brings the rest). 400 for a malformed id or URL,
   * 429 when the table is full.
   */
  handleJoin(body: unknown): Outcome {
    const a = this.agent;
    const b = body as { id?: unknown; url?: unknown; i?: unknown };
    const bad = memberIdProblem(b.id) ?? memberUrlProblem(b.url);
    if (bad !== null) return { status: 400, body: { error: `join: ${bad}` } };
    const id = b.id as string;
    if (id === a.id) return { status: 409, body: { error: 'self' } };
    if (!a.ready) return { status: 503, body: { error: 'not joined yet' } };
    const inc = Number.isSafeInteger(b.i) && (b.i as number) >= 0 ? (b.i as number) : 0;
    this.onChanges(a.membership.merge([[id, b.url as string, inc, 0]]));
    if (!a.membership.get(id)) return new LimitExceeded(429, 'members', a.membership.size + 1, a.membership.maxMembers, 'membership rows').outcome();
    a.membership.observe(id);
    return { status: 200, body: { self: a.id, m: a.membership.all(), st: a.state.wire(undefined, STATE_BATCH_BYTES) } };
  }

  /** `POST /v1/cluster/gossip`: one exchange; the answer carries what differs. */
  handleGossip(body: unknown): Outcome {
    const a = this.agent;
    const b = body as Partial<GossipReq>;
    const bad = memberIdProblem(b.f) ?? memberUrlProblem(b.u);
    if (bad !== null) return { status: 400, body: { error: `gossip: ${bad}` } };
    if (typeof b.d !== 'string' || b.d.length > MAX_DIGEST_CHARS || (b.s !== undefined && (typeof b.s !== 'string' || b.s.length > MAX_DIGEST_CHARS))) {
      return { status: 400, body: { error: `gossip: d and s must be digests (<= ${MAX_DIGEST_CHARS} chars)` } };
    }
    const f = b.f as string;
    if (a.stopped) return { status: 503, body: { error: 'leaving' } };
    this.onChanges(a.membership.observe(f, b.u as string, Number.isSafeInteger(b.i) && (b.i as number) >= 0 ? b.i : 0));
    this.recordLoad(f, b.l);
    const reply: GossipReply = { i: a.membership.incarnation, l: this.load() };
    const diff = a.membership.diffBuckets(b.d);
    if (diff.length > 0) {
      reply.m = a.membership.entriesInBuckets(diff);
      reply.wb = diff;
    }
    if (b.s !== a.state.digest()) reply.sv = a.state.versions();
    return { status: 200, body: reply };
  }

  /**
   * `POST /v1/cluster/sync`: take the entries pushed, answer the state keys wanted (a batch of at
   * most STATE_BATCH_BYTES). 413 for more member entries, state entries or keys than a table or a
   * store can hold.
   */
  handleSync(body: unknown): Outcome {
    const a = this.agent;
    const b = body as Partial<SyncReq>;
    const over =
      tooMany(b.m, MAX_MEMBERS_PER_MESSAGE, 'membersPerMessage', 'member entries in one sync') ??
      tooMany(b.st, MAX_STATE_KEYS, 'stateKeys', 'state entries in one sync') ??
      tooMany(b.ws, MAX_STATE_KEYS, 'stateKeys', 'state keys wanted in one sync');
    if (over) return over;
    if (Array.isArray(b.m)) this.onChanges(a.membership.merge(b.m));
    if (Array.isArray(b.st)) a.state.applyWire(b.st);
    const out: { st?: WireState[] } = {};
    if (Array.isArray(b.ws)) out.st = a.state.wire(b.ws.filter((k) => typeof k === 'string' && k.length <= MAX_STATE_KEY_CHARS), STATE_BATCH_BYTES);
    return { status: 200, body: out };
  }

  /** `POST /v1/cluster/state`: a writer's push of its new entry (413 past MAX_STATE_KEYS entries). */
  handleStatePush(body: unknown): Outcome {
    const b = body as { st?: WireState[] };
    const over = tooMany(b.st, MAX_STATE_KEYS, 'stateKeys', 'state entries in one push');
    if (over) return over;
    if (Array.isArray(b.st)) this.agent.state.applyWire(b.st);
    return { status: 200, body: { ok: true } };
  }

  /**
   * Push a state write to every alive member at once (gossip repairs whoever misses it). The
   * message is serialized once, here: should that ever throw, nothing is sent and the write
   * stays local (gossip carries it), never a request that waits forever.
   */
  replicate(st: WireState[]): void {
    const a = this.agent;
    if (a.defects.gossipSlowdown > 1) return;
    let text: string;
    try {
      text = JSON.stringify({ f: a.id, st });
    } catch (err) {
      if (DEBUG) process.stderr.write(`[${a.id}] state push not serializable: ${String(err)}\n`);
      return;
    }
    for (const id of a.membership.aliveIds()) {
      if (id === a.id) continue;
      const url = a.membership.urlOf(id);
      if (!url) continue;
      try {
        a.data.request('POST', url, '/v1/cluster/state', text, 2000).catch(() => undefined);
      } catch {
        // a synchronous failure (an unusable URL): gossip repairs this member
      }
    }
  }
}
