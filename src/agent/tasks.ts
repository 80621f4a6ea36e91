/**
 * Tasks run on this agent (contract `POST /v1/tasks`): the request check, idempotent ids (a task
 * id seen in the last minute gets the same answer), load shedding (429 at capacity), the injected
 * error fault, and the in-flight and done counters the metrics, heartbeats and gossip report.
 * Defect hooks (src/agent/defects.ts): `no-load-shedding` queues tasks past capacity without limit
 * (in flight then counts queued tasks too; at most `capacity` run at once), `wrong-digests` answers
 * a CPU task with the 0-round digest without doing its rounds, `memory-leak` keeps a buffer per
 * completed task.
 *
 * Bounded (src/agent/limits.ts): every field of a task is checked (400 naming it: id 1..256
 * characters, ioMs 0..600000, cpuRounds 0..1e6, payload <= 64 Ki characters); at most `capacity`
 * tasks run at once (429 beyond); the answers kept for repeated ids hold at most
 * MAX_TASK_CACHE_ENTRIES answers and MAX_TASK_CACHE_CHARS payload characters, the oldest
 * forgotten first (an id repeated after that runs again, as after 60 s).
 */
import type { Agent } from './agent.ts';
import type { Outcome } from './http.ts';
import { MAX_TASK_CACHE_CHARS, MAX_TASK_CACHE_ENTRIES } from './limits.ts';
import type { TaskKind, TaskRequest } from './types.ts';
import { sleep } from './util.ts';
import { cpuTaskResult, ioTaskResult } from './work.ts';

/** How long a task's answer is kept for a repeated id. */
const TASK_CACHE_MS = 60_000;

/** The task in a request body, or what is wrong with it. */
export function validTask(body: unknown): TaskRequest | string {
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

export class TaskRunner {
  inFlight = 0;
  tasksDone = 0;
  private readonly agent: Agent;
  private readonly taskCache = new Map<string, { at: number; p: Promise<Outcome>; chars: number }>();
  /** Payload characters of the answers in `taskCache` (an io answer echoes its payload). */
  private cacheChars = 0;
  /** `no-load-shedding`: tasks running, and those waiting for a slot (FIFO). */
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(agent: Agent) {
    this.agent = agent;
  }

  /** Run a task here (contract `/v1/tasks`), with idempotent ids and load shedding. */
  run(t: TaskRequest, receivedAt: number): Promise<Outcome> {
    const cached = this.taskCache.get(t.id);
    if (cached) return cached.p;
    if (this.inFlight >= this.agent.capacity && !this.agent.defects.noLoadShedding) {
      this.agent.metrics.tasks.inc({ kind: t.kind, outcome: 'rejected' });
      return Promise.resolve({ status: 429, body: { error: 'saturated', inFlight: this.inFlight, capacity: this.agent.capacity } });
    }
    const p = this.execute(t, receivedAt);
    const chars = t.id.length + (t.payload?.length ?? 0);
    this.taskCache.set(t.id, { at: Date.now(), p, chars });
    this.cacheChars += chars;
    // Past a cap, the oldest answers are forgotten first (the cache is in insertion order).
    for (const [id, e] of this.taskCache) {
      if (this.taskCache.size <= MAX_TASK_CACHE_ENTRIES && this.cacheChars <= MAX_TASK_CACHE_CHARS) break;
      this.forget(id, e.chars);
    }
    return p;
  }

  private forget(id: string, chars: number): void {
    this.taskCache.delete(id);
    this.cacheChars -= chars;
  }

  /** Forget answers older than TASK_CACHE_MS (the cache is in insertion order). */
  sweep(now: number): void {
    const cutoff = now - TASK_CACHE_MS;
    for (const [id, e] of this.taskCache) {
      if (e.at > cutoff) break;
      this.forget(id, e.chars);
    }
  }

  /** `no-load-shedding`: wait for one of `capacity` slots, in arrival order. */
  private async slot(): Promise<void> {
    if (this.running < this.agent.capacity) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiting task, or frees it. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  private async execute(t: TaskRequest, receivedAt: number): Promise<Outcome> {
    this.inFlight++;
    try {
      if (!this.agent.defects.noLoadShedding) return await this.work(t, receivedAt);
      await this.slot();
      try {
        return await this.work(t, receivedAt);
      } finally {
        this.release();
      }
    } finally {
      this.inFlight--;
    }
  }

  private async work(t: TaskRequest, receivedAt: number): Promise<Outcome> {
    const a = this.agent;
    const start = performance.now();
    if (a.faults.nextTaskErrors()) {
      a.metrics.tasks.inc({ kind: t.kind, outcome: 'error' });
      return { status: 500, body: { error: 'injected', id: t.id } };
    }
    let result: string;
    if (t.kind === 'io') {
      await sleep(t.ioMs ?? 20);
      result = ioTaskResult(t.payload ?? '');
    } else {
      result = cpuTaskResult(t.payload ?? '', a.defects.skipWork() ? 0 : (t.cpuRounds ?? 200));
    }
    const end = performance.now();
    const runMs = end - start;
    a.metrics.tasks.inc({ kind: t.kind, outcome: 'ok' });
    a.metrics.taskDuration.observe({ kind: t.kind }, runMs / 1000);
    this.tasksDone++;
    if (a.defects.leakBytesPerTask > 0) a.defects.leak();
    a.events.emit('task', { id: t.id, kind: t.kind, runMs });
    return { status: 200, body: { id: t.id, agent: a.id, kind: t.kind, result, queuedMs: start - receivedAt, runMs } };
  }
}
