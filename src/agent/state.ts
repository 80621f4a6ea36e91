/**
 * Replicated key/value state of one agent. Pure logic (unit-tested).
 *
 * Each key carries (version, writer). A write takes the highest version this agent knows for the
 * key + 1; concurrent writes elsewhere may pick the same number, so the order is (version, writer
 * id) and every agent converges on the same winner. An agent only ever replaces an entry by a newer
 * one, so a read never goes back to an older version after a newer one (the runner checks this).
 * Replication: the writer pushes the entry to every member at once; gossip repairs the rest by
 * comparing a digest of (key, version, writer) and exchanging only the entries that differ.
 *
 * Bounded (src/agent/limits.ts): a value is at most MAX_STATE_DEPTH deep (measured without
 * recursion) and MAX_STATE_VALUE_BYTES as JSON, the store holds at most MAX_STATE_KEYS keys and
 * MAX_STATE_TOTAL_BYTES in all. A local write past a cap throws `LimitExceeded` (the route answers
 * 413 or 429) and changes nothing; an entry from a peer past a cap is dropped and counted
 * (`dropped`). So no stored value can make a later `JSON.stringify` (a push, a join answer) throw.
 */
import {
  jsonDepth,
  LimitExceeded,
  MAX_STATE_DEPTH,
  MAX_STATE_KEY_CHARS,
  MAX_STATE_KEYS,
  MAX_STATE_TOTAL_BYTES,
  MAX_STATE_VALUE_BYTES,
} from './limits.ts';
import type { StateEntry } from './types.ts';
import { fnv1a } from './util.ts';

/** A state entry on the wire: [key, version, writer, value]. */
export type WireState = [string, number, string, unknown];
/** A version summary on the wire: [key, version, writer]. */
export type WireVersion = [string, number, string];

/** Is (v1, w1) newer than (v2, w2)? Higher version wins; equal versions are ordered by writer id. */
export function newer(v1: number, w1: string, v2: number, w2: string): boolean {
  return v1 > v2 || (v1 === v2 && w1 > w2);
}

export const MAX_KEY_LENGTH = MAX_STATE_KEY_CHARS;

/** Caps of one store (the defaults are those of limits.ts; tests pass smaller ones). */
export interface StateLimits {
  maxKeys: number;
  maxTotalBytes: number;
  maxValueBytes: number;
  maxDepth: number;
}

const DEFAULT_LIMITS: StateLimits = {
  maxKeys: MAX_STATE_KEYS,
  maxTotalBytes: MAX_STATE_TOTAL_BYTES,
  maxValueBytes: MAX_STATE_VALUE_BYTES,
  maxDepth: MAX_STATE_DEPTH,
};

/**
 * The UTF-8 bytes a value takes as JSON, or the cap it goes past. Depth first, by an iterative
 * walk, so the stringify that measures the size is safe. A value JSON cannot carry (undefined:
 * only from a malformed peer entry) is refused too.
 */
export function measureValue(value: unknown, lim: Pick<StateLimits, 'maxDepth' | 'maxValueBytes'> = DEFAULT_LIMITS): number | LimitExceeded {
  const depth = jsonDepth(value, lim.maxDepth);
  if (depth > lim.maxDepth) return new LimitExceeded(413, 'stateDepth', depth, lim.maxDepth, 'state value nesting depth (at least)');
  const text = JSON.stringify(value) as string | undefined;
  if (text === undefined) return new LimitExceeded(413, 'stateValueBytes', 0, lim.maxValueBytes, 'state value is not JSON; its size');
  const bytes = Buffer.byteLength(text);
  if (bytes > lim.maxValueBytes) return new LimitExceeded(413, 'stateValueBytes', bytes, lim.maxValueBytes, 'state value size in bytes (JSON)');
  return bytes;
}

export class StateStore {
  private readonly entries = new Map<string, StateEntry>();
  /** Bytes each key holds (UTF-8 key + value as JSON), and their sum. */
  private readonly sizes = new Map<string, number>();
  private bytes = 0;
  private readonly limits: StateLimits;
  /** Entries from peers refused by a cap (malformed, too deep, too large, store full). */
  dropped = 0;
  private digestCache: string | null = null;
  /** Highest version of any key (for /v1/info and the gauge). */
  maxVersion = 0;

  private readonly selfId: string;
  /** The `stale-reads` defect: each key's version before its current one (only kept then). */
  private readonly previousEntries: Map<string, StateEntry> | null;

  constructor(selfId: string, opts: { keepPrevious?: boolean; limits?: Partial<StateLimits> } = {}) {
    this.selfId = selfId;
    this.previousEntries = opts.keepPrevious ? new Map() : null;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
  }

  /** Bytes the state holds (UTF-8 keys + JSON values). */
  get totalBytes(): number {
    return this.bytes;
  }

  /** The bytes `key` = `value` would take, or the cap the write would go past (changes nothing). */
  check(key: string, value: unknown): number | LimitExceeded {
    const v = measureValue(value, this.limits);
    if (typeof v !== 'number') return v;
    const size = v + Buffer.byteLength(key);
    const old = this.sizes.get(key);
    if (old === undefined && this.entries.size >= this.limits.maxKeys) {
      return new LimitExceeded(429, 'stateKeys', this.entries.size + 1, this.limits.maxKeys, 'state keys');
    }
    const total = this.bytes - (old ?? 0) + size;
    if (total > this.limits.maxTotalBytes) return new LimitExceeded(413, 'stateTotalBytes', total, this.limits.maxTotalBytes, 'state total bytes');
    return size;
  }

  get(key: string): StateEntry | undefined {
    return this.entries.get(key);
  }

  /** The version a key held before its current one (only with `keepPrevious`; the `stale-reads` defect). */
  previous(key: string): StateEntry | undefined {
    return this.previousEntries?.get(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * A local write: version = highest known + 1, writer = this agent. Throws `LimitExceeded` (and
   * changes nothing) past a cap.
   */
  write(key: string, value: unknown): StateEntry {
    const size = this.check(key, value);
    if (typeof size !== 'number') throw size;
    const cur = this.entries.get(key);
    const entry: StateEntry = { key, version: (cur?.version ?? 0) + 1, value, writer: this.selfId };
    this.set(entry, size);
    return entry;
  }

  /**
   * Apply an entry from a peer if it is newer. Returns true when it changed the store; a malformed
   * entry or one past a cap is dropped (and counted in `dropped`).
   */
  apply(key: string, version: number, writer: string, value: unknown): boolean {
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || typeof writer !== 'string' || writer.length > 256) {
      this.dropped++;
      return false;
    }
    if (!Number.isSafeInteger(version) || version < 1) {
      this.dropped++;
      return false;
    }
    const cur = this.entries.get(key);
    if (cur && !newer(version, writer, cur.version, cur.writer)) return false;
    const size = this.check(key, value);
    if (typeof size !== 'number') {
      this.dropped++;
      return false;
    }
    this.set({ key, version, value, writer }, size);
    return true;
  }

  applyWire(entries: readonly WireState[]): number {
    let n = 0;
    for (const e of entries) if (Array.isArray(e) && this.apply(e[0], e[1], e[2], e[3])) n++;
    return n;
  }

  private set(e: StateEntry, size: number): void {
    if (this.previousEntries) {
      const cur = this.entries.get(e.key);
      if (cur) this.previousEntries.set(e.key, cur);
    }
    this.bytes += size - (this.sizes.get(e.key) ?? 0);
    this.sizes.set(e.key, size);
    this.entries.set(e.key, e);
    if (e.version > this.maxVersion) this.maxVersion = e.version;
    this.digestCache = null;
  }

  digest(): string {
    if (this.digestCache === null) {
      const keys = [...this.entries.keys()].sort();
      let h = 0x811c9dc5;
      for (const k of keys) {
        const e = this.entries.get(k)!;
        h = fnv1a(`${k}|${e.version}|${e.writer};`, h);
      }
      this.digestCache = `${keys.length}:${h.toString(16)}`;
    }
    return this.digestCache;
  }

  versions(): WireVersion[] {
    return [...this.entries.values()].map((e) => [e.key, e.version, e.writer]);
  }

  /**
   * Entries on the wire: the given keys (all without), at most `maxBytes` of them (keys + values;
   * at least one entry): the rest travels in a later exchange.
   */
  wire(keys?: Iterable<string>, maxBytes = Infinity): WireState[] {
    const out: WireState[] = [];
    let bytes = 0;
    for (const k of keys ?? this.entries.keys()) {
      const e = this.entries.get(k);
      if (!e) continue;
      const size = this.sizes.get(k) ?? 0;
      if (out.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      out.push([e.key, e.version, e.writer, e.value]);
    }
    return out;
  }

  /**
   * Compare a peer's version summary with ours: the keys where the peer is newer (we want them)
   * and the keys where we are newer or the peer lacks them (we push them).
   */
  compare(theirs: readonly WireVersion[]): { want: string[]; push: string[] } {
    const want: string[] = [];
    const push: string[] = [];
    const seen = new Set<string>();
    for (const t of theirs) {
      if (!Array.isArray(t)) continue;
      const [key, version, writer] = t;
      if (typeof key !== 'string' || typeof version !== 'number' || typeof writer !== 'string') continue;
      seen.add(key);
      const cur = this.entries.get(key);
      if (!cur || newer(version, writer, cur.version, cur.writer)) want.push(key);
      else if (newer(cur.version, cur.writer, version, writer)) push.push(key);
    }
    for (const k of this.entries.keys()) if (!seen.has(k)) push.push(k);
    return { want, push };
  }
}
