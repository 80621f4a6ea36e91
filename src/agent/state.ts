/**
 * Replicated key/value state of one agent. Pure logic (unit-tested).
 *
 * Each key carries (version, writer). A write takes the highest version this agent knows for the
 * key + 1; concurrent writes elsewhere may pick the same number, so the order is (version, writer
 * id) and every agent converges on the same winner. An agent only ever replaces an entry by a newer
 * one, so a read never goes back to an older version after a newer one (the runner checks this).
 * Replication: the writer pushes the entry to every member at once; gossip repairs the rest by
 * comparing a digest of (key, version, writer) and exchanging only the entries that differ.
 */
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

export const MAX_KEY_LENGTH = 256;

export class StateStore {
  private readonly entries = new Map<string, StateEntry>();
  private digestCache: string | null = null;
  /** Highest version of any key (for /v1/info and the gauge). */
  maxVersion = 0;

  private readonly selfId: string;
  /** The `stale-reads` defect: each key's version before its current one (only kept then). */
  private readonly previousEntries: Map<string, StateEntry> | null;

  constructor(selfId: string, opts: { keepPrevious?: boolean } = {}) {
    this.selfId = selfId;
    this.previousEntries = opts.keepPrevious ? new Map() : null;
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

  /** A local write: version = highest known + 1, writer = this agent. */
  write(key: string, value: unknown): StateEntry {
    const cur = this.entries.get(key);
    const entry: StateEntry = { key, version: (cur?.version ?? 0) + 1, value, writer: this.selfId };
    this.set(entry);
    return entry;
  }

  /** Apply an entry from a peer if it is newer. Returns true when it changed the store. */
  apply(key: string, version: number, writer: string, value: unknown): boolean {
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) return false;
    if (!Number.isInteger(version) || version < 1 || typeof writer !== 'string') return false;
    const cur = this.entries.get(key);
    if (cur && !newer(version, writer, cur.version, cur.writer)) return false;
    this.set({ key, version, value, writer });
    return true;
  }

  applyWire(entries: readonly WireState[]): number {
    let n = 0;
    for (const e of entries) if (Array.isArray(e) && this.apply(e[0], e[1], e[2], e[3])) n++;
    return n;
  }

  private set(e: StateEntry): void {
    if (this.previousEntries) {
      const cur = this.entries.get(e.key);
      if (cur) this.previousEntries.set(e.key, cur);
    }
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

  wire(keys?: Iterable<string>): WireState[] {
    const out: WireState[] = [];
    if (keys === undefined) {
      for (const e of this.entries.values()) out.push([e.key, e.version, e.writer, e.value]);
    } else {
      for (const k of keys) {
        const e = this.entries.get(k);
        if (e) out.push([e.key, e.version, e.writer, e.value]);
      }
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
      seen.add(key);
      const cur = this.entries.get(key);
      if (!cur || newer(version, writer, cur.version, cur.writer)) want.push(key);
      else if (newer(cur.version, cur.writer, version, writer)) push.push(key);
    }
    for (const k of this.entries.keys()) if (!seen.has(k)) push.push(k);
    return { want, push };
  }
}
