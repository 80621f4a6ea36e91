/**
 * The coordinator side of `POST /v1/dispatch`: accept a task (or answer 429 when every member is
 * full), then forward it to an executor and retry elsewhere until it is done or has failed. The
 * ledger and the executor choice (pure logic) are in `dispatch.ts`; this file is the network side.
 *
 * Retries: a connection error, timeout or 5xx counts as a failed attempt (MAX_ATTEMPTS of them
 * and the task is `failed`); a 429 is believed (the executor counts as full until its next gossip
 * says otherwise) and retried with backoff for SATURATION_RETRY_MS after acceptance.
 *
 * Defect hooks (src/agent/defects.ts): `no-balancing` makes the coordinator its own only
 * candidate; `no-load-shedding` counts every member as never full (so nothing is refused);
 * `lost-tasks` drops some accepted tasks before forwarding; `global-lock` forwards one task at a
 * time, holding the coordinator's lock from the choice of executor until its answer.
 *
 * Metrics (`swarmbench_agent_dispatch_total{outcome}`): `rejected` counts every 429 of
 * `/v1/dispatch`, the saturated pool and the full ledger alike (`Ledger.accept` throwing
 * `LimitExceeded`, rethrown here for the route to answer); `done` and `failed` count what the
 * ledger recorded, so a result the ledger refused as too large is `failed`, never `done`. A task
 * dropped on purpose (the `loseAccepted` fault, the `lost-tasks` defect) releases its payload
 * (`Ledger.abandon`) and stays pending.
 */
import type { Agent } from './agent.ts';
import { AgentClientError, type Reply } from './client.ts';
import { chooseExecutor, type Candidate, type LedgerEntry } from './dispatch.ts';
import type { Outcome } from './http.ts';
import { validTask } from './tasks.ts';
import { sleep } from './util.ts';

/** Dispatch: failed attempts (connection error, timeout, 5xx) before a task is `failed`. */
export const MAX_ATTEMPTS = 5;
/** Dispatch: how long 429 answers are retried (with backoff) after acceptance. */
export const SATURATION_RETRY_MS = 30_000;
/** A peer's gossiped load counts for this long. */
const PEER_LOAD_FRESH_MS = 1000;

export class Coordinator {
  private readonly agent: Agent;
  /** Tasks forwarded to each member and not answered yet. */
  private readonly outstanding = new Map<string, number>();
  private rr = 0;

  constructor(agent: Agent) {
    this.agent = agent;
  }

  /** A member that is no longer alive has nothing outstanding. */
  forget(id: string): void {
    this.outstanding.delete(id);
  }

  /** `POST /v1/dispatch`: 202 accepted (also for an id already accepted), 400, or 429. */
  dispatch(body: unknown): Outcome {
    const a = this.agent;
    const t = validTask(body);
    if (typeof t === 'string') return { status: 400, body: { error: t } };
    const accepted = { status: 202, body: { id: t.id, accepted: true, coordinator: a.id } };
    if (a.ledger.get(t.id)) return accepted;
    const first = chooseExecutor(this.candidates(), this.rr++);
    if (first === null) {
      a.metrics.dispatched.inc({ outcome: 'rejected' });
      return { status: 429, body: { error: 'saturated', inFlight: a.inFlight, capacity: a.capacity } };
    }
    let entry: LedgerEntry;
    try {
      entry = a.ledger.accept(t);
    } catch (err) {
      // The ledger is full of pending tasks: a 429 (answered by the route), counted as one.
      a.metrics.dispatched.inc({ outcome: 'rejected' });
      throw err;
    }
    a.metrics.dispatched.inc({ outcome: 'accepted' });
    // Planted data-loss bug (fault) or the lost-tasks defect: accepted, never run; its payload is released.
    if (a.faults.takeLoss() || a.defects.loseAccepted()) {
      a.ledger.abandon(entry);
      return accepted;
    }
    const lock = a.defects.globalLock;
    if (lock) void lock.run(() => this.forward(entry, chooseExecutor(this.candidates(), this.rr++) ?? first));
    else void this.forward(entry, first);
    return accepted;
  }

  private candidates(): Candidate[] {
    const a = this.agent;
    const now = Date.now();
    const list: Candidate[] = a.defects.noBalancing
      ? [{ id: a.id, load: a.inFlight, capacity: a.capacity }]
      : a.membership.aliveIds().map((id) => {
          const mine = this.outstanding.get(id) ?? 0;
          if (id === a.id) return { id, load: Math.max(mine, a.inFlight), capacity: a.capacity };
          const pl = a.gossip.peerLoad.get(id);
          const reported = pl && now - pl.at < PEER_LOAD_FRESH_MS ? pl.inFlight : 0;
          return { id, load: Math.max(mine, reported), capacity: pl?.capacity ?? a.capacity };
        });
    return a.defects.noLoadShedding ? list.map((c) => ({ ...c, capacity: Infinity })) : list;
  }

  private async forward(entry: LedgerEntry, first: string): Promise<void> {
    const a = this.agent;
    const task = entry.task!;
    const tried = new Set<string>();
    let failures = 0;
    let lastError = 'no executor';
    let choice: string | null = first;
    let backoff = 5;
    while (!a.stopped) {
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
        if (choice === a.id) {
          out = await a.tasks.run(task, performance.now());
        } else {
          const url = a.membership.urlOf(choice);
          if (!url) throw new AgentClientError('EUNKNOWN', choice);
          const timeout = 10_000 + (task.kind === 'io' ? (task.ioMs ?? 20) : 0);
          out = await a.data.task(url, task, timeout);
        }
        if (out.status === 200) {
          const r = out.body as { result?: unknown };
          const recorded = a.ledger.finish(entry, 'done', typeof r.result === 'string' ? r.result : null, null);
          if (recorded === 'done' || recorded === 'failed') a.metrics.dispatched.inc({ outcome: recorded });
          return;
        }
        lastError = `${choice}: HTTP ${out.status}`;
        saturated = out.status === 429;
        if (saturated) {
          // Believe it: the executor is full until its next gossip says otherwise.
          const pl = a.gossip.peerLoad.get(choice);
          a.gossip.peerLoad.set(choice, { inFlight: pl?.capacity ?? a.capacity, capacity: pl?.capacity ?? a.capacity, at: Date.now() });
        }
      } catch (err) {
        if (a.stopped) return;
        lastError = `${choice}: ${err instanceof AgentClientError ? err.code : String(err)}`;
        if (err instanceof AgentClientError && choice !== a.id) a.gossip.onChanges(a.membership.reportFailure(choice));
      } finally {
        const n = (this.outstanding.get(choice) ?? 1) - 1;
        if (n > 0) this.outstanding.set(choice, n);
        else this.outstanding.delete(choice);
      }
      a.metrics.dispatched.inc({ outcome: 'redispatched' });
      if (saturated) {
        if (Date.now() - entry.acceptedAt > SATURATION_RETRY_MS) break;
        await sleep(backoff);
        backoff = Math.min(500, backoff * 2);
      } else if (++failures >= MAX_ATTEMPTS) {
        break;
      }
      choice = chooseExecutor(this.candidates(), this.rr++, tried);
      if (tried.size >= a.membership.aliveCount()) tried.clear();
    }
    if (a.ledger.finish(entry, 'failed', null, lastError) === 'failed') a.metrics.dispatched.inc({ outcome: 'failed' });
  }
}
