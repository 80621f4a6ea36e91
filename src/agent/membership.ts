/**
 * Membership of one agent: its view of the cluster, SWIM-style failure detection and the
 * digest used by push-pull gossip. Pure logic with an injected clock (unit-tested); the network
 * side lives in `gossip.ts`.
 *
 * Decisions:
 * - Precedence is SWIM's: a higher incarnation wins; at the same incarnation left > dead >
 *   suspect > alive. Only the member itself raises its incarnation, which is how it refutes a
 *   suspicion (or even a false `dead` or `left`, as memberlist does) once it hears of it. A
 *   member that really leaves raises its incarnation as it does and never speaks again, so its
 *   `left` stays final; a forged `left` (issue 12: it used to win over every incarnation) no longer
 *   evicts a live member for good, and never evicts the agent that receives it.
 * - Bounded (src/agent/limits.ts): entries with a malformed id, URL (http(s)://host:port) or
 *   incarnation are dropped, as are those past MAX_MEMBERS_PER_MESSAGE in one message; the
 *   table holds at most MAX_MEMBERS rows: a new member then takes the place of the oldest
 *   tombstone, or is dropped when there is none. Drops are counted in `dropped`.
 * - Failure detection is by direct contact: every gossip exchange is a probe. A failed exchange
 *   (connection refused, reset, timeout) marks the peer `suspect`; a suspect that nobody has heard
 *   from (directly, or through a refutation) for the failure timeout becomes `dead`. A restarted
 *   agent joins with a new id, so `dead` ids never come back.
 * - Digests instead of full tables: the table is hashed into 16 buckets (FNV-1a over
 *   "id|incarnation|status" of the bucket's members). A gossip round sends the 16 bucket hashes
 *   (128 characters); only the entries of buckets that differ travel. In a converged cluster a
 *   round costs two small messages whatever the cluster size.
 * - Tombstones (dead, left) are kept for `tombstoneMs` so the news spreads and `/v1/members` shows
 *   them, then purged. A dead or left entry about an id this agent never knew is ignored, so a
 *   purged tombstone is not brought back by a peer that purges later.
 */
import { MAX_INCARNATION, MAX_MEMBERS, MAX_MEMBERS_PER_MESSAGE, memberIdProblem, memberUrlProblem } from './limits.ts';
import type { MemberStatus, MemberView } from './types.ts';
import { shuffle } from '../prng.ts';
import { fnv1a } from './util.ts';

/** A member on the wire: [id, url, incarnation, status code (0 alive, 1 suspect, 2 dead, 3 left)]. */
export type WireMember = [string, string, number, number];

const STATUSES: readonly MemberStatus[] = ['alive', 'suspect', 'dead', 'left'];
export const BUCKETS = 16;

export function statusCode(s: MemberStatus): number {
  return STATUSES.indexOf(s);
}

export function statusOf(code: number): MemberStatus | undefined {
  return STATUSES[code];
}

export interface Versioned {
  status: MemberStatus;
  incarnation: number;
}

/**
 * Does the incoming claim `a` supersede the known entry `b`? SWIM precedence: the higher
 * incarnation, then left > dead > suspect > alive. (A leaving member raises its incarnation, so
 * its own `left` outranks everything said about it before.)
 */
export function supersedes(a: Versioned, b: Versioned): boolean {
  if (a.incarnation !== b.incarnation) return a.incarnation > b.incarnation;
  return statusCode(a.status) > statusCode(b.status);
}

export interface MemberChange {
  id: string;
  url: string;
  status: MemberStatus;
  incarnation: number;
  previous: MemberStatus | null;
}

interface Row {
  id: string;
  url: string;
  status: MemberStatus;
  incarnation: number;
  /** Local time of the last evidence that the member is alive. */
  lastSeen: number;
  /** Local time the current suspicion started. */
  suspectSince: number;
  /** Local time of the last status/incarnation change (tombstone age). */
  changedAt: number;
}

export interface MembershipOptions {
  selfId: string;
  selfUrl: string;
  failureTimeoutMs: number;
  tombstoneMs?: number;
  now?: () => number;
  /** False (the `no-failure-detection` defect): a failed exchange never makes a peer suspect. */
  detectFailures?: boolean;
  /** Rows the table may hold (default MAX_MEMBERS). */
  maxMembers?: number;
}

export class Membership {
  readonly selfId: string;
  private readonly rows = new Map<string, Row>();
  private readonly failureTimeoutMs: number;
  private readonly detectFailures: boolean;
  private readonly tombstoneMs: number;
  private readonly now: () => number;
  private bucketCache: string | null = null;
  private probeQueue: string[] = [];
  private aliveCache: string[] | null = null;
  readonly maxMembers: number;
  /** Counts table changes (touch); `noTombstoneAt`: the count at which a scan found no tombstone. */
  private changeCount = 0;
  private noTombstoneAt = -1;
  /** Entries from peers refused: malformed, past the per-message cap, or the table full. */
  dropped = 0;

  constructor(opts: MembershipOptions) {
    this.maxMembers = opts.maxMembers ?? MAX_MEMBERS;
    this.selfId = opts.selfId;
    this.failureTimeoutMs = opts.failureTimeoutMs;
    this.detectFailures = opts.detectFailures ?? true;
    this.tombstoneMs = opts.tombstoneMs ?? 120_000;
    this.now = opts.now ?? Date.now;
    const t = this.now();
    this.rows.set(opts.selfId, {
      id: opts.selfId,
      url: opts.selfUrl,
      status: 'alive',
      incarnation: 0,
      lastSeen: t,
      suspectSince: 0,
      changedAt: t,
    });
  }

  private get self(): Row {
    return this.rows.get(this.selfId)!;
  }

  get incarnation(): number {
    return this.self.incarnation;
  }

  get selfStatus(): MemberStatus {
    return this.self.status;
  }

  get size(): number {
    return this.rows.size;
  }

  get(id: string): { id: string; url: string; status: MemberStatus; incarnation: number } | undefined {
    const r = this.rows.get(id);
    return r && { id: r.id, url: r.url, status: r.status, incarnation: r.incarnation };
  }

  urlOf(id: string): string | undefined {
    return this.rows.get(id)?.url;
  }

  list(): MemberView[] {
    const t = this.now();
    const out: MemberView[] = [];
    for (const r of this.rows.values()) {
      out.push({
        id: r.id,
        url: r.url,
        status: r.status,
        incarnation: r.incarnation,
        lastSeenMs: r.id === this.selfId ? 0 : Math.max(0, t - r.lastSeen),
      });
    }
    out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  }

  /** Ids of the alive members, self included, sorted. */
  aliveIds(): string[] {
    if (!this.aliveCache) {
      const ids: string[] = [];
      for (const r of this.rows.values()) if (r.status === 'alive') ids.push(r.id);
      ids.sort();
      this.aliveCache = ids;
    }
    return this.aliveCache;
  }

  aliveCount(): number {
    return this.aliveIds().length;
  }

  /** Members that are neither dead nor left (alive or suspect), self excluded. */
  reachable(): string[] {
    const ids: string[] = [];
    for (const r of this.rows.values()) {
      if (r.id !== this.selfId && (r.status === 'alive' || r.status === 'suspect')) ids.push(r.id);
    }
    return ids;
  }

  private touch(): void {
    this.changeCount++;
    this.bucketCache = null;
    this.aliveCache = null;
  }

  /**
   * Merge entries learnt from a peer (gossip or join). Returns the changes it made, which the
   * caller turns into events and a "hot" gossip period.
   */
  merge(entries: readonly WireMember[]): MemberChange[] {
    const t = this.now();
    const changes: MemberChange[] = [];
    if (entries.length > MAX_MEMBERS_PER_MESSAGE) this.dropped += entries.length - MAX_MEMBERS_PER_MESSAGE;
    for (let k = 0; k < entries.length && k < MAX_MEMBERS_PER_MESSAGE; k++) {
      const e = entries[k];
      if (!Array.isArray(e)) {
        this.dropped++;
        continue;
      }
      const [id, url, incarnation, code] = e as unknown[];
      const status = typeof code === 'number' ? statusOf(code) : undefined;
      if (
        !status ||
        memberIdProblem(id) !== null ||
        memberUrlProblem(url) !== null ||
        !Number.isSafeInteger(incarnation) ||
        (incarnation as number) < 0 ||
        (incarnation as number) > MAX_INCARNATION
      ) {
        this.dropped++;
        continue;
      }
      if (!this.absorb(id as string, url as string, incarnation as number, status, t, changes)) this.dropped++;
    }
    return changes;
  }

  /** One valid entry (see merge); false when it was refused because the table is full. */
  private absorb(id: string, url: string, incarnation: number, status: MemberStatus, t: number, changes: MemberChange[]): boolean {
    if (id === this.selfId) {
      const self = this.self;
      // Someone suspects, buried or "saw us leave": refute with a higher incarnation, as SWIM
      // does. A `left` about us never evicts us (only `leave()` does). (A claim at
      // MAX_INCARNATION itself cannot be outbid; authentication keeps such senders out.)
      if (self.status === 'alive' && status !== 'alive' && incarnation >= self.incarnation && incarnation < MAX_INCARNATION) {
        self.incarnation = incarnation + 1;
        self.changedAt = t;
        this.touch();
        changes.push({ id, url: self.url, status: 'alive', incarnation: self.incarnation, previous: 'alive' });
      }
      return true;
    }
    const row = this.rows.get(id);
    if (!row) {
      if (status === 'dead' || status === 'left') return true;
      if (this.rows.size >= this.maxMembers && !this.evictTombstone()) return false;
      this.rows.set(id, {
        id,
        url,
        status,
        incarnation,
        lastSeen: t,
        suspectSince: status === 'suspect' ? t : 0,
        changedAt: t,
      });
      this.touch();
      changes.push({ id, url, status, incarnation, previous: null });
      return true;
    }
    if (!supersedes({ status, incarnation }, row)) return true;
    const previous = row.status;
    if (incarnation > row.incarnation && (status === 'alive' || status === 'suspect')) row.lastSeen = t;
    if (status === 'suspect' && (previous !== 'suspect' || incarnation !== row.incarnation)) row.suspectSince = t;
    row.status = status;
    row.incarnation = incarnation;
    row.changedAt = t;
    this.touch();
    changes.push({ id, url: row.url, status, incarnation, previous });
    return true;
  }

  /** Make room: drop the oldest tombstone (dead or left). False when there is none. */
  private evictTombstone(): boolean {
    // A full table without tombstones stays so until a row changes: scan once, not per entry.
    if (this.noTombstoneAt === this.changeCount) return false;
    let oldest: Row | null = null;
    for (const r of this.rows.values()) {
      if ((r.status === 'dead' || r.status === 'left') && (oldest === null || r.changedAt < oldest.changedAt)) oldest = r;
    }
    if (oldest === null) {
      this.noTombstoneAt = this.changeCount;
      return false;
    }
    this.rows.delete(oldest.id);
    this.touch();
    return true;
  }

  /**
   * Direct evidence that a member is alive (it answered us, or it sent us a message).
   * An unknown sender is added; a known one only gets its last-seen time refreshed (only the
   * member itself can lift a suspicion, by a higher incarnation).
   */
  observe(id: string, url?: string, incarnation?: number): MemberChange[] {
    if (id === this.selfId) return [];
    const t = this.now();
    const row = this.rows.get(id);
    if (!row) {
      if (url === undefined) return [];
      return this.merge([[id, url, incarnation ?? 0, 0]]);
    }
    row.lastSeen = t;
    if (incarnation !== undefined && incarnation > row.incarnation) {
      return this.merge([[id, row.url, incarnation, 0]]);
    }
    return [];
  }

  /** A direct exchange with `id` failed: suspect it (at its current incarnation). */
  reportFailure(id: string): MemberChange[] {
    const row = this.rows.get(id);
    if (!row || id === this.selfId || row.status !== 'alive' || !this.detectFailures) return [];
    return this.merge([[id, row.url, row.incarnation, 1]]);
  }

  /** Periodic work: suspects past the failure timeout become dead; old tombstones are purged. */
  tick(): MemberChange[] {
    const t = this.now();
    const changes: MemberChange[] = [];
    for (const row of [...this.rows.values()]) {
      if (row.id === this.selfId) continue;
      if (
        row.status === 'suspect' &&
        t - row.suspectSince >= this.failureTimeoutMs &&
        t - row.lastSeen >= this.failureTimeoutMs
      ) {
        changes.push(...this.merge([[row.id, row.url, row.incarnation, 2]]));
      } else if ((row.status === 'dead' || row.status === 'left') && t - row.changedAt >= this.tombstoneMs) {
        this.rows.delete(row.id);
        this.touch();
      }
    }
    return changes;
  }

  /** Leave the cluster: our own entry becomes `left` (final). Returns it for broadcasting. */
  leave(): WireMember {
    const self = this.self;
    if (self.status !== 'left') {
      self.incarnation += 1;
      self.status = 'left';
      self.changedAt = this.now();
      this.touch();
    }
    return this.wire(self);
  }

  private wire(r: Row): WireMember {
    return [r.id, r.url, r.incarnation, statusCode(r.status)];
  }

  selfWire(): WireMember {
    return this.wire(this.self);
  }

  all(): WireMember[] {
    return [...this.rows.values()].map((r) => this.wire(r));
  }

  static bucketOf(id: string): number {
    return fnv1a(id) % BUCKETS;
  }

  /** The 16 bucket hashes as one string of 16 x 8 hex digits. */
  digest(): string {
    if (this.bucketCache === null) {
      const parts: string[][] = Array.from({ length: BUCKETS }, () => []);
      for (const r of this.rows.values()) {
        parts[Membership.bucketOf(r.id)]!.push(`${r.id}|${r.incarnation}|${statusCode(r.status)};`);
      }
      this.bucketCache = parts
        .map((p) => fnv1a(p.sort().join('')).toString(16).padStart(8, '0'))
        .join('');
    }
    return this.bucketCache;
  }

  /** Bucket indices where `theirs` differs from our digest (all of them if malformed). */
  diffBuckets(theirs: string): number[] {
    const mine = this.digest();
    const out: number[] = [];
    for (let b = 0; b < BUCKETS; b++) {
      if (theirs.length !== mine.length || theirs.slice(b * 8, b * 8 + 8) !== mine.slice(b * 8, b * 8 + 8)) out.push(b);
    }
    return out;
  }

  entriesInBuckets(buckets: readonly number[]): WireMember[] {
    if (buckets.length === 0) return [];
    const want = new Set(buckets);
    const out: WireMember[] = [];
    for (const r of this.rows.values()) if (want.has(Membership.bucketOf(r.id))) out.push(this.wire(r));
    return out;
  }

  /**
   * The next `k` members to gossip with: SWIM's round-robin over a shuffled list of reachable
   * members, so every member is probed within a bounded number of rounds.
   */
  nextTargets(k: number, rand: () => number): string[] {
    const out: string[] = [];
    const candidates = this.reachable();
    if (candidates.length === 0) return out;
    const want = Math.min(k, candidates.length);
    let refills = 0;
    while (out.length < want && refills < 3) {
      if (this.probeQueue.length === 0) {
        this.probeQueue = shuffle([...candidates], rand);
        refills++;
      }
      const id = this.probeQueue.pop()!;
      const r = this.rows.get(id);
      if (r && (r.status === 'alive' || r.status === 'suspect') && !out.includes(id)) out.push(id);
    }
    return out;
  }
}
