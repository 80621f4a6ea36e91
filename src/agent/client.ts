/**
 * Typed HTTP client of the agent contract v1, for the benchmark runner (high request rates) and
 * for the agents themselves (gossip, forwarding, echo).
 *
 * Lean on purpose: node:http with one keep-alive `http.Agent`, no retries, no validation of
 * answers (the conformance check does that). Every call returns `{ status, body }`: 4xx and 5xx
 * (429 included) are answers, not exceptions. Only a transport failure (connection refused or
 * reset, timeout, unreadable body) rejects, with an `AgentClientError` carrying a `code`.
 * One client serves any number of agents: pass the agent's base URL to each call.
 * An agent's own clients (gossip, forwarding, workflow steps, pings, joins) carry the `slow-peers`
 * defect as `sendDelayMs` (src/agent/defects.ts); the runner's never do.
 * Every request carries `Authorization: Bearer <token>` (option `token`, default `agentToken()`,
 * this process's token: src/agent/auth.ts), `/healthz` and `/readyz` included (harmless there).
 * The token stays in a private field: never in errors or in anything the client exposes.
 * Answers are read bounded: at most `maxResponseBytes` (default 16 MiB, DEFAULT_MAX_RESPONSE_BYTES)
 * per answer, by its `content-length` or by the bytes read; past it the request is destroyed and
 * the call rejects with code `ERESPONSETOOLARGE` (what is read so far is released), so an agent
 * that answers without end (one a user runs: `swarmbench run --agent-url`) cannot exhaust the
 * harness's memory. The benchmark's largest answers sit far below the cap: a dispatch query of
 * 2000 ids (~0.5 MB: its results are short payload echoes and 64-hex digests), /metrics (tens of
 * KiB), a state value (<= 64 KiB); a caller that reads more passes a larger cap.
 * A body that cannot be serialized (a cycle, a BigInt) rejects the call (`EREQUEST`), never
 * throws out of `request`.
 */
import http from 'node:http';
import { agentToken, bearer, validateToken } from './auth.ts';
import type {
  AgentInfo,
  DispatchAccepted,
  DispatchQueryResult,
  DispatchTask,
  ErrorBody,
  Faults,
  MarkResult,
  MembersResult,
  PingResult,
  SaturatedBody,
  StateEntry,
  TaskRequest,
  TaskResult,
  WorkflowRequest,
  WorkflowResult,
} from './types.ts';
import { sleep } from './util.ts';

export interface ClientOptions {
  /** Sockets per agent (host:port). Default 64. */
  maxSockets?: number;
  /** Sockets over all agents. Default: unlimited. */
  maxTotalSockets?: number;
  /** Idle sockets kept per agent. Default 16. */
  maxFreeSockets?: number;
  /** Deadline of a whole request (connect to last byte) in ms. Default 10000. */
  timeoutMs?: number;
  /** Keep connections alive between calls. Default true. */
  keepAlive?: boolean;
  /**
   * Every request waits this long before it is sent (not counted in its deadline). Default 0:
   * sent at once. The agents' own clients take it from the `slow-peers` defect.
   */
  sendDelayMs?: number;
  /**
   * The agents' bearer token. Default: `agentToken()` (SWARMBENCH_AGENT_TOKEN, or this process's
   * generated one). `null`: send no `authorization` header (the conformance check's refused calls).
   */
  token?: string | null;
  /**
   * Largest answer read, in bytes (DEFAULT_MAX_RESPONSE_BYTES: 16 MiB). Past it the call rejects
   * with `AgentClientError` code `ERESPONSETOOLARGE`.
   */
  maxResponseBytes?: number;
}

/** The default `maxResponseBytes`: 16 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/**
 * Largest message a harness client takes from an agent's event stream (`/v1/events`): 1 MiB, the
 * `maxPayload` of its WebSocket (a larger frame closes the stream with 1009 before it is
 * buffered). Events are a few hundred bytes (a mark's token is at most 1024 characters), so only
 * a hostile agent comes near it. Used by src/agent/conformance.ts and the dashboard's
 * `AgentEventStream` (src/bench/monitoring/dashboard.ts).
 */
export const MAX_EVENT_MESSAGE_BYTES = 1024 * 1024;

export interface Reply<T> {
  status: number;
  body: T;
}

export class AgentClientError extends Error {
  readonly code: string;
  readonly url: string;
  constructor(code: string, url: string, message?: string) {
    super(message ?? `${code} ${url}`);
    this.name = 'AgentClientError';
    this.code = code;
    this.url = url;
  }
}

interface Target {
  hostname: string;
  port: number;
  base: string;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

export class AgentClient {
  readonly agent: http.Agent;
  readonly timeoutMs: number;
  readonly sendDelayMs: number;
  readonly maxResponseBytes: number;
  private readonly targets = new Map<string, Target>();
  private closed = false;
  readonly #authorization: string | null;

  constructor(opts: ClientOptions = {}) {
    this.#authorization = opts.token === null ? null : bearer(opts.token !== undefined ? validateToken(opts.token, 'ClientOptions.token') : agentToken());
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.sendDelayMs = opts.sendDelayMs ?? 0;
    const maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 1) {
      throw new RangeError(`ClientOptions.maxResponseBytes must be a positive integer, got ${String(maxResponseBytes)}`);
    }
    this.maxResponseBytes = maxResponseBytes;
    this.agent = new http.Agent({
      keepAlive: opts.keepAlive ?? true,
      maxSockets: opts.maxSockets ?? 64,
      maxFreeSockets: opts.maxFreeSockets ?? 16,
      ...(opts.maxTotalSockets !== undefined ? { maxTotalSockets: opts.maxTotalSockets } : {}),
      scheduling: 'lifo',
    });
  }

  private target(url: string): Target {
    let t = this.targets.get(url);
    if (!t) {
      const u = new URL(url);
      if (u.protocol !== 'http:') throw new AgentClientError('EPROTO', url, `only http:// agent URLs are supported: ${url}`);
      t = { hostname: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80), base: `${u.protocol}//${u.host}` };
      if (this.targets.size > 10_000) this.targets.clear();
      this.targets.set(url, t);
    }
    return t;
  }

  /**
   * One request. `body` is sent as JSON (a string is sent as is). The answer is parsed as JSON
   * when the server says so, else returned as text. With `sendDelayMs` the request is sent that
   * much later (a slow path to the peer); its deadline starts when it is sent.
   */
  request<T = unknown>(method: string, url: string, path: string, body?: unknown, timeoutMs?: number): Promise<Reply<T>> {
    if (this.sendDelayMs > 0) return sleep(this.sendDelayMs).then(() => this.attempt<T>(method, url, path, body, timeoutMs, true));
    return this.attempt<T>(method, url, path, body, timeoutMs, true);
  }

  /**
   * One try. A kept-alive socket the server closed while it sat idle fails at once with
   * ECONNRESET/EPIPE before any answer: the server never saw that request, so it is sent again
   * once on a fresh connection (Node's documented `reusedSocket` pattern). Without this a peer
   * would be suspected for an idle-timeout race.
   */
  private attempt<T>(method: string, url: string, path: string, body: unknown, timeoutMs: number | undefined, mayRetry: boolean): Promise<Reply<T>> {
    if (this.closed) return Promise.reject(new AgentClientError('ECLOSED', url, 'client closed'));
    let t: Target;
    try {
      t = this.target(url);
    } catch (err) {
      return Promise.reject(err);
    }
    let payload: string | undefined;
    try {
      payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    } catch (err) {
      return Promise.reject(new AgentClientError('EREQUEST', t.base + path, `request body could not be serialized: ${(err as Error).message}`));
    }
    const max = this.maxResponseBytes;
    const deadline = timeoutMs ?? this.timeoutMs;
    const headers: http.OutgoingHttpHeaders = payload === undefined ? {} : { ...JSON_HEADERS, 'content-length': Buffer.byteLength(payload) };
    if (this.#authorization !== null) headers.authorization = this.#authorization;
    return new Promise<Reply<T>>((resolve, reject) => {
      let done = false;
      const fail = (code: string, message?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(new AgentClientError(code, t.base + path, message));
      };
      const req = http.request(
        {
          agent: this.agent,
          hostname: t.hostname,
          port: t.port,
          method,
          path,
          headers,
        },
        (res) => {
          let chunks: Buffer[] = [];
          let size = 0;
          const tooLarge = (n: number): void => {
            chunks = [];
            fail('ERESPONSETOOLARGE', `answer of at least ${n} bytes is over maxResponseBytes = ${max}`);
            req.destroy();
          };
          const declared = Number(res.headers['content-length']);
          if (Number.isSafeInteger(declared) && declared > max) {
            tooLarge(declared);
            return;
          }
          res.on('data', (c: Buffer) => {
            if (done) return;
            size += c.length;
            if (size > max) tooLarge(size);
            else chunks.push(c);
          });
          res.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'ERESPONSE', err.message));
          res.on('aborted', () => fail('ECONNRESET', 'response aborted'));
          res.on('end', () => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
            const ct = res.headers['content-type'] ?? '';
            let parsed: unknown = text;
            if (ct.startsWith('application/json') && text.length > 0) {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = text;
              }
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T });
          });
        },
      );
      const timer = setTimeout(() => {
        fail('ETIMEDOUT', `no answer within ${deadline} ms`);
        req.destroy();
      }, deadline);
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!done && mayRetry && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          done = true;
          clearTimeout(timer);
          this.attempt<T>(method, url, path, body, timeoutMs, false).then(resolve, reject);
          return;
        }
        fail(err.code ?? 'EREQUEST', err.message);
      });
      if (payload !== undefined) req.end(payload);
      else req.end();
    });
  }

  healthz(url: string): Promise<Reply<{ ok: boolean }>> {
    return this.request('GET', url, '/healthz');
  }
  readyz(url: string): Promise<Reply<{ ready: boolean } | ErrorBody>> {
    return this.request('GET', url, '/readyz');
  }
  info(url: string): Promise<Reply<AgentInfo>> {
    return this.request('GET', url, '/v1/info');
  }
  time(url: string): Promise<Reply<{ now: number }>> {
    return this.request('GET', url, '/v1/time');
  }
  task(url: string, task: TaskRequest, timeoutMs?: number): Promise<Reply<TaskResult | SaturatedBody | ErrorBody>> {
    return this.request('POST', url, '/v1/tasks', task, timeoutMs);
  }
  dispatch(url: string, task: TaskRequest): Promise<Reply<DispatchAccepted | SaturatedBody | ErrorBody>> {
    return this.request('POST', url, '/v1/dispatch', task);
  }
  dispatchStatus(url: string, id: string): Promise<Reply<DispatchTask>> {
    return this.request('GET', url, `/v1/dispatch/${encodeURIComponent(id)}`);
  }
  dispatchQuery(url: string, ids: string[]): Promise<Reply<DispatchQueryResult>> {
    return this.request('POST', url, '/v1/dispatch/query', { ids });
  }
  members(url: string): Promise<Reply<MembersResult>> {
    return this.request('GET', url, '/v1/members');
  }
  putState(url: string, key: string, value: unknown): Promise<Reply<StateEntry | ErrorBody>> {
    return this.request('PUT', url, `/v1/state/${encodeURIComponent(key)}`, { value });
  }
  getState(url: string, key: string): Promise<Reply<StateEntry | ErrorBody>> {
    return this.request('GET', url, `/v1/state/${encodeURIComponent(key)}`);
  }
  ping(url: string, peer: string, count = 10): Promise<Reply<PingResult | ErrorBody>> {
    return this.request('POST', url, '/v1/ping', { peer, count }, this.timeoutMs + count * 1000);
  }
  workflow(url: string, wf: WorkflowRequest): Promise<Reply<WorkflowResult | ErrorBody>> {
    return this.request('POST', url, '/v1/workflows', wf);
  }
  mark(url: string, token: string): Promise<Reply<MarkResult>> {
    return this.request('POST', url, '/v1/events/mark', { token });
  }
  metrics(url: string): Promise<Reply<string>> {
    return this.request('GET', url, '/metrics');
  }
  putFaults(url: string, faults: Faults): Promise<Reply<Faults | ErrorBody>> {
    return this.request('PUT', url, '/v1/faults', faults);
  }
  clearFaults(url: string): Promise<Reply<Faults>> {
    return this.request('DELETE', url, '/v1/faults');
  }

  /** Close idle sockets and refuse further calls. Idempotent. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }
}

/** Is `body` a completed task result (a 200 answer)? */
export function isTaskResult(body: unknown): body is TaskResult {
  return typeof body === 'object' && body !== null && typeof (body as TaskResult).result === 'string';
}
