/**
 * The agents' bearer token (agent contract v1, docs/agent-contract.md, "Authentication").
 *
 * Every agent route except `/healthz` and `/readyz` requires `Authorization: Bearer <token>`
 * (401 otherwise), the WebSocket upgrade of `/v1/events` and the agents' own gossip included.
 * One token per run: the agents of a run and every client of the harness share it.
 *
 * Decisions:
 * - One token per process (`agentToken()`): `SWARMBENCH_AGENT_TOKEN` when set (16..512 visible
 *   ASCII characters, else an error naming the variable; set but empty is an error too, so a
 *   Secret that mounted nothing fails closed), otherwise 32 random bytes (base64url) generated on
 *   first use and exported into `process.env`, so every child process (runner processes, agent
 *   processes) inherits the same token. In-process agents and clients default to it, so they
 *   agree without being told.
 * - `checkBearer` compares SHA-256 digests of the offered and the expected token with
 *   `crypto.timingSafeEqual` (equal-length buffers whatever the offered length, so neither the
 *   content nor the length of the token leaks through timing).
 * - Token files (`--token-file`, `--agent-token-file`) are read bounded (4 KiB), must be regular
 *   files, and their content is trimmed. A token is never printed, logged or put into an error
 *   message: errors name the variable or the file, never the value.
 * - A scrape credential (`metricsToken()`): one Prometheus scrapes the agents of every run, and
 *   must not hold each run's token. An agent also accepts, on `GET /metrics` only, the optional
 *   read-only scrape token of `SWARMBENCH_METRICS_TOKEN` (or `swarmbench agent
 *   --metrics-token-file PATH`), validated like the run token; absent, only the run token opens
 *   `/metrics`. On every other route (the WebSocket upgrade included) the scrape token is a wrong
 *   token: 401. It unlocks only counters the agent would show any run member anyway; on a cluster
 *   the operator copies the administrator's scrape token into each run's token Secret.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, linkSync, openSync, readSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The environment variable that carries the run's agent token. */
export const TOKEN_ENV = 'SWARMBENCH_AGENT_TOKEN';
/** The environment variable that carries the optional read-only scrape token (`GET /metrics` only). */
export const METRICS_TOKEN_ENV = 'SWARMBENCH_METRICS_TOKEN';
/** What the scrape token is called in errors. */
export const METRICS_TOKEN_WHAT = 'the metrics scrape token';
export const TOKEN_MIN_LENGTH = 16;
export const TOKEN_MAX_LENGTH = 512;
/** Largest token file read. */
export const TOKEN_FILE_MAX_BYTES = 4096;
/** What a refused request is answered (401, with `www-authenticate: Bearer`). */
export const UNAUTHORIZED_BODY = { error: 'missing or wrong bearer token' } as const;
/** Routes that answer without a token (probes of kubelets and load balancers). */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** A token that is missing or malformed; the message names where it came from, never the value. */
export class AgentTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentTokenError';
  }
}

/** Why `token` is not a usable token (null: it is). */
export function tokenProblem(token: string): string | null {
  if (token.length === 0) return 'is empty';
  if (token.length < TOKEN_MIN_LENGTH || token.length > TOKEN_MAX_LENGTH) {
    return `must be ${TOKEN_MIN_LENGTH}..${TOKEN_MAX_LENGTH} characters, has ${token.length}`;
  }
  if (!/^[\x21-\x7e]+$/.test(token)) return 'must be printable ASCII without spaces or control characters';
  return null;
}

/**
 * `token` when it is usable; else throws naming `source` (a variable, a file, a flag) and `what`
 * the token is (default "the agent token").
 */
export function validateToken(token: string, source: string, what = 'the agent token'): string {
  const p = tokenProblem(token);
  if (p) throw new AgentTokenError(`${source}: ${what} ${p}`);
  return token;
}

/**
 * The optional scrape token of `SWARMBENCH_METRICS_TOKEN` (in `env`, default this process's): null
 * when the variable is absent or empty; otherwise it must be a valid token, else an error naming
 * the variable, never the value.
 */
export function metricsToken(env: NodeJS.ProcessEnv = process.env): string | null {
  const v = env[METRICS_TOKEN_ENV];
  // Empty is absent: the agent pods get it from an optional secretKeyRef, which a runtime may
  // render as an empty variable when the key is missing (the run's Secret holds no scrape token).
  return v === undefined || v === '' ? null : validateToken(v, METRICS_TOKEN_ENV, METRICS_TOKEN_WHAT);
}

/** A new random token: 32 bytes, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

let validated: string | null = null;

/**
 * This process's agent token: `SWARMBENCH_AGENT_TOKEN` when set (validated: an error names the
 * variable), else one generated now and exported into `process.env` for child processes.
 */
export function agentToken(): string {
  const v = process.env[TOKEN_ENV];
  if (v !== undefined) {
    if (v !== validated) validated = validateToken(v, TOKEN_ENV);
    return v;
  }
  const t = generateToken();
  process.env[TOKEN_ENV] = t;
  validated = t;
  return t;
}

/** Makes `token` this process's agent token (what `agentToken()` returns from now on, and children inherit). */
export function useAgentToken(token: string, source: string): void {
  process.env[TOKEN_ENV] = validateToken(token, source);
  validated = token;
}

/** The `authorization` header value that carries `token`. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
/** Digests of the expected tokens (a process has a few: the run token, maybe a scrape token). */
const expected = new Map<string, Buffer>();

/**
 * Does the `authorization` header carry `token` (`Bearer <token>`, the scheme case-insensitive)?
 * Constant time in the token: digests of equal length are compared with `timingSafeEqual`.
 */
export function checkBearer(header: string | readonly string[] | undefined, token: string): boolean {
  if (typeof header !== 'string' || token.length === 0) return false;
  const m = /^bearer +([^\s]+) *$/i.exec(header);
  if (!m) return false;
  let want = expected.get(token);
  if (want === undefined) {
    if (expected.size >= 16) expected.clear();
    want = digest(token);
    expected.set(token, want);
  }
  return timingSafeEqual(digest(m[1]!), want);
}

/**
 * The token in the file at `path`: read at most TOKEN_FILE_MAX_BYTES, trimmed, validated. Errors
 * name the file (and `flag`, the option that named it, and `what` the token is), never its content.
 */
export function readTokenFile(path: string, flag: string, what = 'the agent token'): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new AgentTokenError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new AgentTokenError(`${flag}: ${path} is not a regular file`);
    if (st.size > TOKEN_FILE_MAX_BYTES) throw new AgentTokenError(`${flag}: ${path} is larger than ${TOKEN_FILE_MAX_BYTES} bytes; it must hold the token only`);
    const buf = Buffer.alloc(TOKEN_FILE_MAX_BYTES + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > TOKEN_FILE_MAX_BYTES) throw new AgentTokenError(`${flag}: ${path} is larger than ${TOKEN_FILE_MAX_BYTES} bytes; it must hold the token only`);
    }
    return validateToken(buf.subarray(0, n).toString('utf8').trim(), `${flag} ${path}`, what);
  } finally {
    closeSync(fd);
  }
}

/**
 * The token in the file at `path`, created first (mode 0600, a new random token) when the file
 * does not exist. The creation is atomic (written to a private temporary file, then linked into
 * place), so agents started together with the same path all end up with one token.
 */
export function readOrCreateTokenFile(path: string, flag: string): string {
  try {
    return readTokenFile(path, flag);
  } catch (err) {
    if (!(err instanceof AgentTokenError) || !/: ENOENT$/.test(err.message)) throw err;
  }
  const tmp = join(dirname(path), `.swarmbench-token-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    writeFileSync(tmp, `${generateToken()}\n`, { mode: 0o600, flag: 'wx' });
    try {
      linkSync(tmp, path);
    } catch (err) {
      // Another agent created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } catch (err) {
    if (err instanceof AgentTokenError) throw err;
    throw new AgentTokenError(`${flag}: cannot create ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // never written
    }
  }
  return readTokenFile(path, flag);
}
