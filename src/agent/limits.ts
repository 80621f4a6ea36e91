/**
 * Every byte and count cap of the reference agent in one place (docs/agent-contract.md, "Limits").
 * An agent is shared by whoever can reach it, so no request may make it grow without bound, hang,
 * or crash. The rule for answers: a cap on a size (bytes, characters, depth) is 413, a cap on a
 * count (keys, entries, clients, concurrent calls) is 429, and so is a dispatch ledger full of
 * pending tasks (by count or characters: a retry succeeds once tasks finish); a malformed field is
 * 400. Every such answer is `{"error", "limit", "value", "max"}`: `error` says in words which
 * limit and which value, `limit` names the cap (the constant below in camel case, without
 * `MAX_`), `value` what was asked (at least), `max` the cap.
 * Entries that arrive by gossip from peers obey the same caps: they are dropped (and counted:
 * `StateStore.dropped`, `Membership.dropped`), never stored, never a crash.
 *
 * The defaults the benchmark uses sit well inside every cap: state values of a few bytes (1.4),
 * pools of at most 1000 agents, ping counts of 11, workflows of 8 steps, dispatch queries of at
 * most 2000 ids, and full-mode sustained load of about 6000 tasks per coordinator (see
 * MAX_LEDGER_ENTRIES).
 */
import { HttpError } from './http.ts';

/** A replicated state key: 1..256 characters (UTF-16 units). */
export const MAX_STATE_KEY_CHARS = 256;
/** One state value, serialized as JSON (UTF-8 bytes): 64 KiB. Larger: 413. */
export const MAX_STATE_VALUE_BYTES = 64 * 1024;
/**
 * Nesting depth of one state value (arrays and objects; a scalar is depth 0, `[]` is 1). Deeper:
 * 413. Measured by an iterative walk, so a value nested a million deep is refused, never a stack
 * overflow; the cap keeps every later `JSON.stringify` of the state (pushes, joins, answers) safe.
 */
export const MAX_STATE_DEPTH = 32;
/** Keys in one agent's state. A new key past it: 429 (an existing key may still be written). */
export const MAX_STATE_KEYS = 10_000;
/** All keys and values of one agent's state (UTF-8 bytes of key + JSON value): 64 MiB. Past it: 413. */
export const MAX_STATE_TOTAL_BYTES = 64 * 1024 * 1024;
/**
 * Values per gossip sync message (a push of entries, or the answer of keys wanted) and per join
 * answer: about 2 MiB of state (at least one entry), well below the 4 MiB request body cap of
 * `http.ts`; what does not fit travels in the next rounds (anti-entropy repairs the rest).
 */
export const STATE_BATCH_BYTES = 2 * 1024 * 1024;

/** Rows of the membership table (alive, suspect and tombstones). A new member past it is dropped. */
export const MAX_MEMBERS = 4096;
/** Member entries in one join, gossip or sync message. More: 413 (the table never holds more). */
export const MAX_MEMBERS_PER_MESSAGE = MAX_MEMBERS;
/** A member id: 1..256 characters, no whitespace or control characters. */
export const MAX_MEMBER_ID_CHARS = 256;
/** A member URL: `http(s)://host:port` (an explicit port, no path, query or credentials), <= 512 characters. */
export const MAX_MEMBER_URL_CHARS = 512;
/** The highest incarnation accepted (a safe integer that still leaves room to refute). */
export const MAX_INCARNATION = 2 ** 52;

/**
 * Ledger entries of one coordinator (pending and finished). When full, the oldest finished entry
 * is evicted (by finish time) to make room; when every entry is pending, a new dispatch is 429.
 * 250 000 entries (about 300 bytes each without their results: ~75 MB) hold a full-mode sustained
 * run (100 agents x 10 tasks/s for 600 s, spread over the 100 coordinators: ~6000 each) 40 times
 * over, or one coordinator at 400 tasks/s for 10 minutes; the harness reads its entries within
 * seconds of their completion (closed loop) or right after the run (open loop, drain 10 s).
 */
export const MAX_LEDGER_ENTRIES = 250_000;
/**
 * A task result kept in the ledger: 65 536 characters (the task payload's cap, so an io task's
 * echo always fits). An executor answering more: the task is `failed` ("result too large").
 */
export const MAX_LEDGER_RESULT_CHARS = 65_536;
/**
 * Characters of task payloads (pending entries) and results (finished ones) kept by one ledger:
 * 64 Mi. The oldest finished entries are evicted first; when only pending ones are left, a new
 * dispatch is 429.
 */
export const MAX_LEDGER_TOTAL_CHARS = 64 * 1024 * 1024;

/**
 * Answers `POST /v1/tasks` keeps for repeated ids (60 s each): 200 000 answers (3000 tasks/s for
 * a minute on one agent) and 64 Mi payload characters; past either the oldest are forgotten.
 */
export const MAX_TASK_CACHE_ENTRIES = 200_000;
export const MAX_TASK_CACHE_CHARS = 64 * 1024 * 1024;

/** Ids in one `POST /v1/dispatch/query` (the harness asks for at most 2000). More: 413. */
export const MAX_QUERY_IDS = 10_000;

/** `count` of one `POST /v1/ping` (the benchmark asks for 1 or 11). */
export const MAX_PING_COUNT = 100;
/** Pings one agent runs at once. More: 429. */
export const MAX_CONCURRENT_PINGS = 16;

/** Steps of one workflow (the benchmark uses 5 to 8). More: 413. */
export const MAX_WORKFLOW_STEPS = 100;
/** A workflow's id: 1..256 characters. */
export const MAX_WORKFLOW_ID_CHARS = 256;
/** A workflow input, a step's arg, and the value between steps: 1 Mi characters. More: 413. */
export const MAX_WORKFLOW_VALUE_CHARS = 1024 * 1024;

/** `token` of `POST /v1/events/mark` (sent to every event subscriber): 1024 characters. */
export const MAX_MARK_TOKEN_CHARS = 1024;
/** WebSocket event subscribers of one agent. A further upgrade is answered 429. */
export const MAX_EVENT_CLIENTS = 64;
/**
 * Bytes queued to one event subscriber (its `bufferedAmount`). A subscriber that lets more pile
 * up (it does not read) is closed with code 1008 and a reason, instead of queuing without bound.
 */
export const MAX_EVENT_BUFFERED_BYTES = 1024 * 1024;

/** `loseAccepted` of `PUT /v1/faults`. */
export const MAX_LOSE_ACCEPTED = 1_000_000;

/**
 * A cap that a request (or an entry from a peer) went past: answered 413 or 429. An `HttpError`,
 * so one thrown anywhere in a route is still answered with its status and message.
 */
export class LimitExceeded extends HttpError {
  declare readonly status: 413 | 429;
  readonly limit: string;
  readonly value: number;
  readonly max: number;
  constructor(status: 413 | 429, limit: string, value: number, max: number, what: string) {
    super(status, `${what}: ${value} is over the limit ${limit} = ${max}`);
    this.name = 'LimitExceeded';
    this.limit = limit;
    this.value = value;
    this.max = max;
  }

  /** The answer: `{ status, body: { error, limit, value, max } }`. */
  outcome(): { status: number; body: { error: string; limit: string; value: number; max: number } } {
    return { status: this.status, body: { error: this.message, limit: this.limit, value: this.value, max: this.max } };
  }
}

/**
 * Nesting depth of a JSON value, by an iterative walk that stops as soon as it passes `max`
 * (then returns `max + 1`): never recursion, so a value nested 1 000 000 deep costs one pass and
 * no stack.
 */
export function jsonDepth(value: unknown, max = MAX_STATE_DEPTH): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const depth = d + 1;
    if (depth > deepest) deepest = depth;
    if (deepest > max) return max + 1;
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'object' && x !== null) stack.push([x, depth]);
    } else {
      for (const k in v) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        const x = (v as Record<string, unknown>)[k];
        if (typeof x === 'object' && x !== null) stack.push([x, depth]);
      }
    }
  }
  return deepest;
}

/** What is wrong with a member id, or null when it is valid. */
export function memberIdProblem(id: unknown): string | null {
  if (typeof id !== 'string' || id.length === 0) return 'member id must be a non-empty string';
  if (id.length > MAX_MEMBER_ID_CHARS) return `member id is ${id.length} characters (max ${MAX_MEMBER_ID_CHARS})`;
  if (/[\s\p{Cc}]/u.test(id)) return 'member id must not hold whitespace or control characters';
  return null;
}

/**
 * What is wrong with a member URL, or null when it is valid: `http://host:port` or
 * `https://host:port` (explicit port 1..65535, IPv6 in brackets), optionally a trailing `/`,
 * nothing else (no credentials, path, query or fragment).
 */
export function memberUrlProblem(url: unknown): string | null {
  if (typeof url !== 'string' || url.length === 0) return 'member url must be a non-empty string';
  if (url.length > MAX_MEMBER_URL_CHARS) return `member url is ${url.length} characters (max ${MAX_MEMBER_URL_CHARS})`;
  const m = /^https?:\/\/([^/?#@\s]+):(\d{1,5})\/?$/.exec(url);
  if (!m) return 'member url must be http(s)://host:port';
  const port = Number(m[2]);
  if (port < 1 || port > 65_535) return `member url port ${port} is not 1..65535`;
  try {
    const u = new URL(url);
    if (u.hostname === '') return 'member url has no host';
  } catch {
    return 'member url is not a URL';
  }
  return null;
}
