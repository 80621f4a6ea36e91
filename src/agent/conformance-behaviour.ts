/**
 * The behavioural checks of `swarmbench conformance`: what an agent does over many requests,
 * not only whether each answer has the contract's shape. They catch agents that answer every
 * request in the right shape and still lose work or go back in time:
 *
 * - `dispatch completeness`: a few hundred tasks (default 300, a seeded mix of CPU and I/O tasks)
 *   dispatched through the agent, at most 16 at a time (a 429 is retried: it was never accepted);
 *   then every accepted task must reach `done` with the right result (CPU digests recomputed
 *   here, I/O results equal to their payloads). A task still `pending` when nothing has changed for
 *   `stallMs` (or after `maxWaitMs`) is lost. An agent that loses 1 accepted task in 100 fails
 *   it with about 3 lost.
 * - `read after write`: three versioned writes of one key at the agent, each followed by reads
 *   at every alive member it lists (at most 8, the `--peer` included), four rounds each. No member
 *   may answer a version older than one it already answered, and the writer may not answer older
 *   than what its own write returned; finally every member must read the last version. An agent
 *   whose every 4th read is stale fails it.
 */
import type { AgentClient } from './client.ts';
import type { DispatchTask, MembersResult, StateEntry, TaskRequest } from './types.ts';
import { cpuTaskResult, ioTaskResult } from './work.ts';
import { deriveSeed, mulberry32 } from '../prng.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A check's failure: its message is the check's detail. */
export class BehaviourFailed extends Error {}

function fail(msg: string): never {
  throw new BehaviourFailed(msg);
}

export interface DispatchCheckOptions {
  /** Tasks dispatched (1..100000). */
  tasks: number;
  /** Tasks in flight from the check at once. */
  concurrency?: number;
  /** A pending task with no progress of any task for this long is lost. Default 5000. */
  stallMs?: number;
  /** Longest wait for the tasks to finish after the last acceptance. Default 60000. */
  maxWaitMs?: number;
  /** How long a 429 is retried before the task counts as refused. Default 30000. */
  retryMs?: number;
}

function list(ids: string[], max = 3): string {
  return ids.slice(0, max).join(', ') + (ids.length > max ? ', ...' : '');
}

/** `dispatch completeness`; returns the detail of a pass, throws `BehaviourFailed` otherwise. */
export async function checkDispatchCompleteness(c: AgentClient, base: string, run: string, o: DispatchCheckOptions): Promise<string> {
  const n = Math.max(1, Math.min(100_000, Math.floor(o.tasks)));
  const rand = mulberry32(deriveSeed(0xc0f, run));
  const tasks: TaskRequest[] = Array.from({ length: n }, (_, i) =>
    i % 4 === 3
      ? { id: `${run}-dc-${i}`, kind: 'io', ioMs: 1 + Math.floor(rand() * 10), payload: `io-${i}-${rand().toString(36).slice(2)}` }
      : { id: `${run}-dc-${i}`, kind: 'cpu', cpuRounds: 10 + Math.floor(rand() * 90), payload: `cpu-${i}-${rand().toString(36).slice(2)}` },
  );
  const expected = new Map(tasks.map((t) => [t.id, t.kind === 'cpu' ? cpuTaskResult(t.payload!, t.cpuRounds!) : ioTaskResult(t.payload!)]));
  const retryMs = o.retryMs ?? 30_000;
  const accepted: string[] = [];
  const refused: string[] = [];
  let next = 0;
  const submit = async (): Promise<void> => {
    for (let i = next++; i < n; i = next++) {
      const t = tasks[i]!;
      const until = Date.now() + retryMs;
      let backoff = 10;
      for (;;) {
        const r = await c.dispatch(base, t);
        if (r.status === 202) {
          accepted.push(t.id);
          break;
        }
        if (r.status !== 429 || Date.now() > until) {
          refused.push(`${t.id} (HTTP ${r.status})`);
          break;
        }
        await sleep(backoff);
        backoff = Math.min(500, backoff * 2);
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(n, o.concurrency ?? 16) }, submit));
  if (refused.length > 0) fail(`${refused.length} of ${n} dispatches were not accepted (first: ${list(refused)})`);

  const stallMs = o.stallMs ?? 5000;
  const end = Date.now() + (o.maxWaitMs ?? 60_000);
  const final = new Map<string, DispatchTask>();
  let open = [...accepted];
  let lastProgress = Date.now();
  while (open.length > 0 && Date.now() < end && Date.now() - lastProgress < stallMs) {
    const still: string[] = [];
    for (let i = 0; i < open.length; i += 1000) {
      const ids = open.slice(i, i + 1000);
      const r = await c.dispatchQuery(base, ids);
      if (r.status !== 200 || !Array.isArray(r.body?.tasks) || r.body.tasks.length !== ids.length) {
        const got = Array.isArray(r.body?.tasks) ? ` with ${r.body.tasks.length} tasks` : ' without a task list';
        fail(`POST /v1/dispatch/query: expected 200 with ${ids.length} tasks, got ${r.status}${got}`);
      }
      r.body.tasks.forEach((t: DispatchTask | null, k) => {
        if (typeof t !== 'object' || t === null || t.id !== ids[k]) fail(`POST /v1/dispatch/query: answer ${k} is not the task ${ids[k]}`);
        if (t.state === 'done' || t.state === 'failed') final.set(ids[k]!, t);
        else still.push(ids[k]!);
      });
    }
    if (still.length < open.length) lastProgress = Date.now();
    open = still;
    if (open.length > 0) await sleep(100);
  }
  const failed = [...final.values()].filter((t) => t.state === 'failed');
  const wrong = [...final.entries()].filter(([id, t]) => t.state === 'done' && t.result !== expected.get(id));
  const problems: string[] = [];
  if (open.length > 0) {
    problems.push(`${open.length} of ${accepted.length} accepted tasks never completed (still pending after ${stallMs} ms without progress: ${list(open)})`);
  }
  if (failed.length > 0) problems.push(`${failed.length} failed (first: ${failed[0]!.id}: ${failed[0]!.error ?? 'no error'})`);
  if (wrong.length > 0) {
    const [id, t] = wrong[0]!;
    problems.push(`${wrong.length} wrong results (first: ${id}: expected ${expected.get(id)}, got ${String(t.result)})`);
  }
  if (problems.length > 0) fail(problems.join('; '));
  const executors = new Set([...final.values()].map((t) => t.executor)).size;
  return `${accepted.length} accepted, all done with correct results on ${executors} executor(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
}

export interface ReadCheckOptions {
  /** Another member to include (`--peer`). */
  peer?: string;
  writes?: number;
  /** Rounds of reads at every member after each write. */
  rounds?: number;
  maxMembers?: number;
}

/** `read after write`; returns the detail of a pass, throws `BehaviourFailed` otherwise. */
export async function checkReadAfterWrite(c: AgentClient, base: string, run: string, o: ReadCheckOptions = {}): Promise<string> {
  const m = await c.members(base);
  if (m.status !== 200 || !Array.isArray((m.body as MembersResult | undefined)?.members)) fail(`GET /v1/members: expected 200, got ${m.status}`);
  const urls = [base];
  for (const x of m.body.members) {
    const u = typeof x?.url === 'string' && /^https?:\/\/[^\s]+$/.test(x.url) ? x.url.replace(/\/+$/, '') : '';
    if (x?.status === 'alive' && u && !urls.includes(u) && urls.length < (o.maxMembers ?? 8)) urls.push(u);
  }
  if (o.peer && !urls.includes(o.peer)) urls.push(o.peer);
  const key = `${run}-raw`;
  const highest = new Map<string, number>(urls.map((u) => [u, 0]));
  const violations: string[] = [];
  let reads = 0;
  const read = async (u: string, floor: number, what: string): Promise<number> => {
    const r = await c.getState(u, key);
    reads++;
    if (r.status === 404) return 0;
    if (r.status !== 200) fail(`GET /v1/state at ${u}: expected 200 or 404, got ${r.status}`);
    const v = typeof r.body === 'object' && r.body !== null ? (r.body as StateEntry).version : undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`GET /v1/state at ${u}: no version in ${JSON.stringify(r.body).slice(0, 160)}`);
    const seen = highest.get(u)!;
    if (v < seen) violations.push(`${u} answered version ${v} after ${seen}`);
    else if (v < floor) violations.push(`${u} answered version ${v} after its own write of ${floor} (${what})`);
    highest.set(u, Math.max(seen, v));
    return v;
  };
  let last = 0;
  for (let w = 1; w <= (o.writes ?? 3); w++) {
    const r = await c.putState(base, key, { n: w });
    if (r.status !== 200) fail(`PUT /v1/state: expected 200, got ${r.status}`);
    last = typeof r.body === 'object' && r.body !== null ? (r.body as StateEntry).version : Number.NaN;
    if (!Number.isFinite(last)) fail(`PUT /v1/state: no version in ${JSON.stringify(r.body).slice(0, 160)}`);
    // The write's answer is a version the writer returned.
    if (last < highest.get(base)!) violations.push(`${base} wrote version ${last} after answering ${highest.get(base)}`);
    highest.set(base, Math.max(highest.get(base)!, last));
    for (let k = 0; k < (o.rounds ?? 4); k++) {
      for (const u of urls) await read(u, u === base ? last : 0, `write ${w}`);
    }
  }
  if (violations.length > 0) fail(`${violations.length} reads went back to an older version in ${reads} reads: ${list(violations, 2)}`);
  const end = Date.now() + 5000;
  for (const u of urls) {
    while ((await read(u, 0, 'convergence')) < last) {
      if (Date.now() > end) fail(`${u} did not read version ${last} within 5 s`);
      await sleep(25);
    }
  }
  if (violations.length > 0) fail(`${violations.length} reads went back to an older version in ${reads} reads: ${list(violations, 2)}`);
  return `${reads} reads at ${urls.length} member(s), versions never went back, all read version ${last}`;
}
