/**
 * Defect profiles: named, realistic defects of real multi-agent systems that the reference system
 * under test can be switched into, so that SwarmBench can show that each of its tests fails on a
 * system with the defect it is meant to catch (the design's "Sensitivity"; docs/defects.md describes
 * each profile and the real failure it imitates).
 *
 * - Off by default; switched on per run: `spec.agents.defects` (agent profiles, reaching each agent
 *   as `swarmbench agent --defect NAME[:VALUE]` locally and `SWARMBENCH_DEFECTS=a,b` in pods) and
 *   `spec.gpu.defects` (inference profiles, reaching the runner through `Params`).
 * - A profile is written `NAME` or `NAME:VALUE`, VALUE being its one parameter (a rate, a factor, a
 *   delay...) with the default and bounds of the catalogue below.
 * - Reproducible: a profile that picks which tasks, reads or events it hits spreads its hits evenly
 *   (every 1/rate-th one, as the error fault does) from a phase drawn from `mulberry32` seeded with
 *   the agent id and the profile's name, so one agent id always hits the same ones.
 * - Free when off: every hook in the agent is one field test; nothing is allocated, timed or
 *   counted for a profile that is not active.
 *
 * This file holds the catalogue, the parser (shared by the spec's schema, the agent's CLI and the
 * inference backends) and `AgentDefects`, the switches one agent's hooks read.
 */
import { deriveSeed, mulberry32 } from '../prng.ts';
import { errorAt } from './faults.ts';

export type DefectSite = 'agent' | 'inference';

export interface DefectParam {
  /** The parameter's name in the docs and in error messages. */
  name: string;
  unit: string;
  default: number;
  min: number;
  max: number;
  integer: boolean;
}

export interface DefectProfile {
  name: string;
  /** Where it acts: the agents (`spec.agents.defects`) or the inference backend (`spec.gpu.defects`). */
  site: DefectSite;
  /** The real failure it imitates (one line; docs/defects.md has the long form). */
  imitates: string;
  param: DefectParam | null;
  /** Tests meant to fail under it at their default targets (the sensitivity matrix proves it). */
  breaks: readonly string[];
}

const p = (name: string, unit: string, dflt: number, min: number, max: number, integer = false): DefectParam => ({
  name,
  unit,
  default: dflt,
  min,
  max,
  integer,
});

const SCALING = ['4.1', '4.2', '4.3', '4.4', '4.5'];

/** The catalogue, agent profiles first. */
export const DEFECTS = [
  {
    name: 'no-balancing',
    site: 'agent',
    imitates: 'a coordinator that runs every task it accepts itself instead of dispatching it (a load balancer that never balances)',
    param: null,
    breaks: ['1.5', ...SCALING],
  },
  {
    name: 'slow-gossip',
    site: 'agent',
    imitates: 'throttled, gossip-only dissemination (a gossip interval tuned for a WAN, fan-out 1, no direct state push)',
    param: p('factor', 'x gossip interval', 20, 2, 1000),
    breaks: ['1.1', '1.2', '1.4'],
  },
  {
    name: 'slow-failure-detection',
    site: 'agent',
    imitates: 'a failure detector whose timeout is far too long: a dead member is removed only after a minute',
    param: p('factor', 'x failure timeout', 40, 2, 1000),
    breaks: ['1.6'],
  },
  {
    name: 'no-failure-detection',
    site: 'agent',
    imitates: 'no failure detector at all: failed probes are ignored and a dead member stays "alive" for good',
    param: null,
    breaks: ['1.6'],
  },
  {
    name: 'lost-tasks',
    site: 'agent',
    imitates: 'a coordinator that acknowledges a task before it is safely queued and silently loses some (about 1 in 100)',
    param: p('rate', 'fraction of accepted tasks', 0.01, 0.0001, 1),
    breaks: ['1.5', '1.6', '6.1', '6.3'],
  },
  {
    name: 'wrong-digests',
    site: 'agent',
    imitates: 'an agent that answers without doing the work (a stub, a cache hit on the wrong key): CPU results are wrong',
    param: p('rate', 'fraction of CPU tasks', 1, 0.0001, 1),
    breaks: ['1.5', ...SCALING, '6.1'],
  },
  {
    name: 'stale-reads',
    site: 'agent',
    imitates: 'reads served from a lagging replica or cache without read-your-writes: every 4th read is an older version',
    param: p('period', 'reads', 4, 2, 1000, true),
    breaks: ['1.4'],
  },
  {
    name: 'global-lock',
    site: 'agent',
    imitates: 'a dispatcher that holds one lock across the remote call, so a coordinator dispatches one task at a time',
    param: null,
    breaks: [...SCALING],
  },
  {
    name: 'slow-startup',
    site: 'agent',
    imitates: 'an agent that listens at once but is ready only after a long initialisation (loading a model, fetching config)',
    param: p('ms', 'ms before joining', 8000, 1, 600_000),
    breaks: ['1.1', '1.2', '6.2'],
  },
  {
    name: 'event-lag',
    site: 'agent',
    imitates: 'an event stream behind a buffered pipeline (a consumer lag): every event arrives late',
    // 600 ms: past 3.4's alert target (< 500 ms) as well as 3.1's (< 50 ms), by at least the 100 ms
    // the lag itself adds (it is a floor); 250 ms left 3.4 passing.
    param: p('ms', 'ms of delay', 600, 1, 60_000),
    breaks: ['3.1', '3.4'],
  },
  {
    name: 'event-drops',
    site: 'agent',
    imitates: 'a broadcaster that drops messages when a subscriber falls behind (numbered, never sent)',
    param: p('rate', 'fraction of events', 0.25, 0.0001, 1),
    breaks: ['3.1', '3.3'],
  },
  {
    name: 'slow-metrics',
    site: 'agent',
    imitates: 'a metrics endpoint whose collector does slow work at scrape time (queries a store, takes a lock)',
    param: p('ms', 'ms per scrape', 300, 1, 60_000),
    breaks: ['3.2', '3.5'],
  },
  {
    name: 'memory-leak',
    site: 'agent',
    imitates: 'per-task state that is never released (a context kept in a global map, a listener never removed)',
    param: p('kib', 'KiB per completed task', 256, 1, 65_536, true),
    breaks: ['5.3'],
  },
  {
    name: 'slow-peers',
    site: 'agent',
    imitates: 'a slow network path between agents (a service-mesh sidecar, a cross-zone hop, a TLS handshake per call): every agent-to-agent request is late',
    param: p('ms', 'ms per agent-to-agent request', 25, 1, 60_000),
    breaks: ['1.3'],
  },
  {
    name: 'slow-handoff',
    site: 'agent',
    imitates: 'work handed to the next agent through a polled queue, or a first attempt lost and retried after a timeout: each workflow hop waits',
    param: p('ms', 'ms per workflow hop to another agent', 3000, 1, 600_000),
    breaks: ['5.1', '5.2'],
  },
  {
    name: 'no-load-shedding',
    site: 'agent',
    imitates: 'no admission control: tasks past capacity wait in an unbounded queue instead of being refused with 429',
    param: null,
    breaks: ['6.3'],
  },
  {
    name: 'tensor-leak',
    site: 'inference',
    imitates: 'a forward pass run outside tf.tidy: the input and each layer\'s activations are never disposed; native, wasm or device memory grows',
    param: p('tensors', 'tensors per prediction', 3, 1, 64, true),
    breaks: ['2.3'],
  },
  {
    name: 'throughput-decay',
    site: 'inference',
    imitates: 'work per call that grows with uptime (a growing context re-processed on every call): throughput decays',
    param: p('perSecond', 'extra rows per row and second', 0.2, 0.001, 10),
    breaks: ['2.5'],
  },
  {
    name: 'no-batching',
    site: 'inference',
    imitates: 'a server that runs a batch one request at a time: no batching benefit',
    param: null,
    breaks: ['2.2'],
  },
  {
    name: 'no-fallback',
    site: 'inference',
    imitates: 'a backend loss that is never recovered: the service keeps the lost device and never falls back to the CPU',
    param: null,
    breaks: ['2.4'],
  },
] as const satisfies readonly DefectProfile[];

export type DefectName = (typeof DEFECTS)[number]['name'];

/** One active profile and its parameter (the default when none was given; null without one). */
export interface Defect {
  name: DefectName;
  value: number | null;
}

/** The written form: `NAME` or `NAME:VALUE` (lower-case name, a decimal VALUE). */
export const DEFECT_PATTERN = /^[a-z][a-z-]*(:[0-9.e+-]+)?$/;

export function defectProfile(name: string): DefectProfile | undefined {
  return (DEFECTS as readonly DefectProfile[]).find((d) => d.name === name);
}

export function defectNames(site?: DefectSite): string[] {
  return DEFECTS.filter((d) => site === undefined || d.site === site).map((d) => d.name);
}

/** Parses one profile (`lost-tasks`, `lost-tasks:0.05`); an error message naming what is wrong otherwise. */
export function parseDefect(text: string, site?: DefectSite): Defect | string {
  const s = text.trim();
  if (s.length === 0 || s.length > 64) return 'a defect must be NAME or NAME:VALUE (1..64 characters)';
  const colon = s.indexOf(':');
  const name = colon < 0 ? s : s.slice(0, colon);
  const prof = defectProfile(name);
  if (!prof) return `unknown defect "${name}" (known: ${defectNames(site).join(', ')})`;
  if (site && prof.site !== site) {
    return `"${name}" is ${prof.site === 'agent' ? 'an agent' : 'an inference'} defect, not ${site === 'agent' ? 'an agent' : 'an inference'} defect (it belongs in ${prof.site === 'agent' ? 'agents' : 'gpu'}.defects)`;
  }
  if (colon < 0) return { name: prof.name as DefectName, value: prof.param?.default ?? null };
  const raw = s.slice(colon + 1);
  const par = prof.param;
  if (!par) return `defect "${name}" takes no parameter (got "${raw}")`;
  const v = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(v)) return `defect "${name}": ${par.name} must be a number, got "${raw}"`;
  if (par.integer && !Number.isInteger(v)) return `defect "${name}": ${par.name} must be an integer, got ${raw}`;
  if (v < par.min || v > par.max) return `defect "${name}": ${par.name} (${par.unit}) must be ${par.min}..${par.max}, got ${raw}`;
  return { name: prof.name as DefectName, value: v };
}

/**
 * Parses a list of profiles: every entry's error (with its index), or the profiles. A profile
 * named twice is an error (its second entry's).
 */
export function parseDefectList(list: readonly string[], site?: DefectSite): { defects: Defect[]; errors: { index: number; message: string }[] } {
  const defects: Defect[] = [];
  const errors: { index: number; message: string }[] = [];
  const seen = new Set<string>();
  list.forEach((text, index) => {
    const d = parseDefect(text, site);
    if (typeof d === 'string') errors.push({ index, message: d });
    else if (seen.has(d.name)) errors.push({ index, message: `defect "${d.name}" is listed twice` });
    else {
      seen.add(d.name);
      defects.push(d);
    }
  });
  return { defects, errors };
}

/** Parses a list that must be valid (already checked at the boundary); throws naming the first error. */
export function defectsOf(list: readonly string[] | undefined, site: DefectSite): Defect[] {
  const r = parseDefectList(list ?? [], site);
  const e = r.errors[0];
  if (e) throw new Error(`defects[${e.index}]: ${e.message}`);
  return r.defects;
}

export function formatDefect(d: Defect): string {
  return d.value === null ? d.name : `${d.name}:${d.value}`;
}

/** The parameter of an active profile: its value, or null when the profile is not active. */
export function defectValue(defects: readonly Defect[], name: DefectName): number | null {
  const d = defects.find((x) => x.name === name);
  if (!d) return null;
  return d.value ?? 1;
}

/** Evenly spread hits at `rate` (every 1/rate-th call), from a phase drawn from `rand`. */
export class Spread {
  private n: number;
  private readonly rate: number;

  constructor(rate: number, rand: () => number) {
    this.rate = rate;
    this.n = Math.floor(rand() * Math.max(1, Math.round(1 / rate)));
  }

  /** Counts one call; true when this one is hit. */
  next(): boolean {
    this.n++;
    return errorAt(this.n, this.rate);
  }
}

/** A lock held by one holder at a time; waiters are served in arrival order (a FIFO of promises). */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  /** Holders waiting or running now. */
  queued = 0;

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.queued++;
    const out = this.tail.then(fn).finally(() => {
      this.queued--;
    });
    this.tail = out.then(
      () => undefined,
      () => undefined,
    );
    return out;
  }
}

/** A leak is capped per agent, so a defect run cannot take the machine down with it. */
export const MAX_LEAK_BYTES = 1024 * 1024 * 1024;

/** The seed of one agent's profile: reproducible per (agent id, profile). */
export function defectSeed(agentId: string, name: string): number {
  return deriveSeed(deriveSeed(0x5eed, agentId), name);
}

/** The switches one agent's hooks read (all off for an empty list). */
export class AgentDefects {
  readonly active: readonly Defect[];
  /** Every dispatched task runs on its coordinator. */
  readonly noBalancing: boolean;
  /** Gossip periods multiplied by this (1: off); above 1 also fan-out 1 and no direct state push. */
  readonly gossipSlowdown: number;
  /** Failure timeout multiplied by this (1: off). */
  readonly failureTimeoutFactor: number;
  /** False: failed exchanges never make a peer suspect. */
  readonly failureDetection: boolean;
  /** Every dispatched task goes through this lock, from acceptance to its executor's answer. */
  readonly globalLock: Mutex | null;
  readonly startupDelayMs: number;
  readonly eventLagMs: number;
  readonly metricsDelayMs: number;
  readonly leakBytesPerTask: number;
  readonly noLoadShedding: boolean;
  /** `slow-peers`: every request this agent makes of another agent waits this long before it is sent (0: off). */
  readonly peerDelayMs: number;
  /** `slow-handoff`: every workflow hop handed to another agent waits this long before it is sent (0: off). */
  readonly handoffDelayMs: number;
  /** Stale reads are on: the state store keeps each key's previous version. */
  readonly staleReads: boolean;
  private readonly lost: Spread | null;
  private readonly wrong: Spread | null;
  private readonly stale: Spread | null;
  private readonly drops: Spread | null;
  private readonly leaked: Buffer[] = [];
  leakedBytes = 0;

  constructor(defects: readonly Defect[], agentId: string) {
    this.active = defects;
    const v = (name: DefectName): number | null => defectValue(defects, name);
    const spread = (name: DefectName, rate: number | null): Spread | null =>
      rate === null ? null : new Spread(rate, mulberry32(defectSeed(agentId, name)));
    this.noBalancing = v('no-balancing') !== null;
    this.gossipSlowdown = v('slow-gossip') ?? 1;
    this.failureTimeoutFactor = v('slow-failure-detection') ?? 1;
    this.failureDetection = v('no-failure-detection') === null;
    this.globalLock = v('global-lock') !== null ? new Mutex() : null;
    this.startupDelayMs = v('slow-startup') ?? 0;
    this.eventLagMs = v('event-lag') ?? 0;
    this.metricsDelayMs = v('slow-metrics') ?? 0;
    this.leakBytesPerTask = (v('memory-leak') ?? 0) * 1024;
    this.noLoadShedding = v('no-load-shedding') !== null;
    this.peerDelayMs = v('slow-peers') ?? 0;
    this.handoffDelayMs = v('slow-handoff') ?? 0;
    const period = v('stale-reads');
    this.staleReads = period !== null;
    this.lost = spread('lost-tasks', v('lost-tasks'));
    this.wrong = spread('wrong-digests', v('wrong-digests'));
    this.stale = spread('stale-reads', period === null ? null : 1 / period);
    this.drops = spread('event-drops', v('event-drops'));
  }

  get any(): boolean {
    return this.active.length > 0;
  }

  get eventDrops(): boolean {
    return this.drops !== null;
  }

  /** `lost-tasks`: this accepted task is dropped. */
  loseAccepted(): boolean {
    return this.lost !== null && this.lost.next();
  }

  /** `wrong-digests`: this CPU task is answered without its rounds. */
  skipWork(): boolean {
    return this.wrong !== null && this.wrong.next();
  }

  /** `stale-reads`: this read answers the key's previous version. */
  staleRead(): boolean {
    return this.stale !== null && this.stale.next();
  }

  /** `event-drops`: this event is numbered and never sent. */
  dropEvent(): boolean {
    return this.drops !== null && this.drops.next();
  }

  /** `memory-leak`: keep a buffer of the task's size for good (written, so it is resident). */
  leak(): void {
    const n = this.leakBytesPerTask;
    if (n === 0 || this.leakedBytes + n > MAX_LEAK_BYTES) return;
    this.leaked.push(Buffer.allocUnsafe(n).fill((this.leaked.length % 255) + 1));
    this.leakedBytes += n;
  }
}
