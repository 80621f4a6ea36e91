/**
 * The HTTP plumbing of one reference agent: its listener (`Listener`: the node:http server, the
 * sockets it holds, graceful and abrupt close) and the small helpers the routes share (JSON
 * bodies, answers, method checks, `HttpError`). Knows nothing of the contract itself: the routes
 * are in `routes.ts`.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { errorMessage } from '../errors.ts';

/** Largest request body read (4 MiB); a larger one is answered 413. */
const MAX_BODY = 4 * 1024 * 1024;

/** What a route answers: a status and a JSON body. */
export interface Outcome {
  status: number;
  body: unknown;
}

/** Thrown by a route to answer `{ error: message }` with this status. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
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
          if (out) send(res, out.status, out.body);
        },
        (err: unknown) => {
          if (err instanceof HttpError) send(res, err.status, { error: err.message });
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

/** Throws 405 unless the method is `want`; true otherwise (for `expect(m, 'POST') && body`). */
export function expect(method: string, want: string): true {
  if (method !== want) throw new HttpError(405, `method not allowed (use ${want})`);
  return true;
}

export function send(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Read and discard a request body. */
export function drain(req: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    req.resume();
    req.on('end', resolve);
    req.on('error', () => resolve());
  });
}

/** A JSON request body (`{}` when empty); 413 past MAX_BODY, 400 when it is not JSON. */
export function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
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
