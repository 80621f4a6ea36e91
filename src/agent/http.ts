/**
 * The HTTP plumbing of one reference agent: its listener (`Listener`: the node:http server, the
 * sockets it holds, graceful and abrupt close) and the small helpers the routes share (JSON
 * bodies, answers, method checks, `HttpError`). Knows nothing of the contract itself: the routes
 * are in `routes.ts`.
 *
 * Decisions:
 * - Every request gets an answer: `send` catches a body that cannot be serialized (a cycle, a
 *   BigInt, a value too deep for the stack) and answers 500 `{"error"}` naming the failure
 *   instead, and an answer that cannot be written at all (headers already sent) destroys the
 *   socket, so a client never waits for an answer that will not come. Nothing a route returns or
 *   throws becomes an unhandled rejection.
 * - A request body past MAX_BODY (by its `content-length`, or by the bytes read) is answered
 *   413 `{"error", "limit": "requestBodyBytes", "value", "max"}` with `connection: close` as soon
 *   as the cap is passed: reading stops (the request is paused, nothing more is buffered), the
 *   answer is written while the client may still be sending, and the socket is closed once the
 *   answer is flushed (Node's own close of a `connection: close` answer), or after
 *   BODY_TOO_LARGE_CLOSE_MS if the client never takes it. The client reads a 413 rather than a
 *   reset connection, and the body is never read to its end (an endless body costs nothing).
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { UNAUTHORIZED_BODY } from './auth.ts';
import { errorMessage } from '../errors.ts';

/** Largest request body read (4 MiB); a larger one is answered 413 and the connection closed. */
export const MAX_BODY = 4 * 1024 * 1024;
/** A socket whose 413 answer (body too large) is not flushed within this time is destroyed. */
const BODY_TOO_LARGE_CLOSE_MS = 5000;

/** What a route answers: a status and a JSON body. */
export interface Outcome {
  status: number;
  body: unknown;
  /** Extra response headers (e.g. `www-authenticate` of a 401). */
  headers?: Record<string, string>;
}

/** Thrown by a route to answer `{ error: message }` with this status. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * A request body past MAX_BODY (thrown by `readJson`): answered 413 with `connection: close`,
 * and the socket closed after the answer (see the module comment).
 */
export class BodyTooLarge extends HttpError {
  readonly value: number;
  readonly max: number;
  constructor(value: number, max: number) {
    super(413, `request body: at least ${value} bytes is over the limit requestBodyBytes = ${max}`);
    this.name = 'BodyTooLarge';
    this.value = value;
    this.max = max;
  }
}

/** A route: an Outcome to send as JSON, or null when it answered `res` itself. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, receivedAt: number) => Promise<Outcome | null>;
export type UpgradeHandler = (req: http.IncomingMessage, socket: Socket, head: Buffer) => void;

/** One agent's listener: a keep-alive HTTP server that tracks its sockets so it can drop them. */
export class Listener {
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();

  constructor(handle: Handler, upgrade: UpgradeHandler) {
    this.server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
      const receivedAt = performance.now();
      handle(req, res, receivedAt).then(
        (out) => {
          if (out) send(res, out.status, out.body, out.headers);
        },
        (err: unknown) => {
          if (err instanceof BodyTooLarge) answerTooLarge(res, err);
          else if (err instanceof HttpError) send(res, err.status, { error: err.message });
          else send(res, 500, { error: errorMessage(err) });
        },
      );
    });
    this.server.on('connection', (s: Socket) => {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', upgrade);
  }

  /** Listen on host:port (0: any free port); resolves to the port bound. */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port, backlog: 1024 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address();
    return typeof addr === 'object' && addr ? addr.port : port;
  }

  /** Stop accepting, let answers in progress finish; sockets still open after 200 ms are dropped. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 200).unref();
    });
  }

  /** Drop every socket and the listener at once. */
  destroy(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

/** The answer to a request without the agent's bearer token (agent contract, "Authentication"). */
export function unauthorized(): Outcome {
  return { status: 401, body: UNAUTHORIZED_BODY, headers: { 'www-authenticate': 'Bearer' } };
}

/** Refuses a WebSocket upgrade without the token: a plain 401 answer, then the socket is closed. */
export function refuseUpgrade(socket: Socket): void {
  const text = JSON.stringify(UNAUTHORIZED_BODY);
  socket.once('finish', () => socket.destroy());
  socket.once('error', () => socket.destroy());
  // A peer that never reads does not hold the socket open.
  setTimeout(() => socket.destroy(), 1000).unref();
  socket.end(
    'HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer\r\nconnection: close\r\ncontent-type: application/json\r\n' +
      `content-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

/** Throws 405 unless the method is `want`; true otherwise (for `expect(m, 'POST') && body`). */
export function expect(method: string, want: string): true {
  if (method !== want) throw new HttpError(405, `method not allowed (use ${want})`);
  return true;
}

/**
 * Answer `status` with `body` as JSON. Never throws: a body that cannot be serialized is answered
 * 500 `{"error": "answer could not be serialized: ..."}` instead, and when even that cannot be
 * written (the route had already sent headers) the socket is destroyed, so the client sees the
 * connection end rather than waiting.
 */
export function send(res: http.ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  if (res.writableEnded || res.destroyed) return;
  let text: string;
  try {
    text = JSON.stringify(body) ?? 'null';
  } catch (err) {
    status = 500;
    headers = undefined;
    text = JSON.stringify({ error: `answer could not be serialized: ${errorMessage(err)}` });
  }
  try {
    res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  } catch {
    res.destroy();
  }
}

/**
 * The 413 of a body past MAX_BODY: `connection: close`, so Node closes the socket once the answer
 * is flushed; a client that never takes the answer loses the socket after BODY_TOO_LARGE_CLOSE_MS.
 */
function answerTooLarge(res: http.ServerResponse, err: BodyTooLarge): void {
  const socket = res.socket;
  if (socket) {
    const t = setTimeout(() => socket.destroy(), BODY_TOO_LARGE_CLOSE_MS);
    t.unref();
    socket.once('close', () => clearTimeout(t));
  }
  send(res, 413, { error: err.message, limit: 'requestBodyBytes', value: err.value, max: err.max }, { connection: 'close' });
}

/** Read and discard a request body. */
export function drain(req: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    req.resume();
    req.on('end', resolve);
    req.on('error', () => resolve());
  });
}

/**
 * A JSON request body (`{}` when empty); 400 when it is not JSON. Past `max` bytes (default
 * MAX_BODY) it rejects with `BodyTooLarge` at once: reading stops (the request is paused and what
 * was buffered is released), and the Listener answers 413 and closes the connection.
 */
export function readJson(req: http.IncomingMessage, max = MAX_BODY): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // A declared length past the cap is refused before a byte of the body is read.
    const declared = Number(req.headers['content-length']);
    if (Number.isSafeInteger(declared) && declared > max) {
      req.pause();
      reject(new BodyTooLarge(declared, max));
      return;
    }
    let chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > max) {
        req.off('data', onData);
        req.pause();
        chunks = [];
        reject(new BodyTooLarge(size, max));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('error', reject);
    req.on('end', () => {
      const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
      if (text.length === 0) return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new HttpError(400, 'body is not JSON'));
      }
    });
  });
}
