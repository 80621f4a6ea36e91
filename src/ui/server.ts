/**
 * The results UI's server: one HTTP server that serves the page (web/), uPlot from the package's
 * own node_modules (no CDN: clusters are often offline), a read-only JSON API over a `UiSource`
 * (source.ts) and a WebSocket of its events. The local commands host it (`swarmbench ui`,
 * `swarmbench run --ui`); the operator hosts the same server over its own source (operator/ui-server.ts).
 *
 * Safe by default (docs/ui.md, "Security"):
 * - read-only: GET and HEAD only, anything else 405; no route writes anything;
 * - bound to 127.0.0.1 unless told otherwise; bound to a loopback address, a request whose Host is
 *   not a loopback name is refused (421), so a web page cannot reach it by DNS rebinding, and a
 *   WebSocket whose Origin is not this server's is refused (a page of another site cannot read
 *   the events); with `allowedHosts` (the operator's host, bound to every address) the Host must
 *   be one of those names, whatever the address;
 * - bounded: a URL of at most 2048 characters (414), headers of at most 8 KiB, no request body
 *   (413), timeouts on headers and requests, at most 64 WebSocket clients of at most 1 KiB
 *   messages (which are ignored);
 * - no path from a request reaches the file system: static files are a fixed list, runs are named
 *   by opaque ids, exports by their five names;
 * - a strict Content-Security-Policy (no inline script or style, nothing from another origin),
 *   `nosniff`, no framing, no referrer; exports go out as text (never HTML), sandboxed.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../errors.ts';
import { EXPORT_FILES } from '../report/exports.ts';
import type { ExportName, UiEvent, UiSource } from './source.ts';
import { chartsOf, compareDocs, headlineOf, trendsOfDocs } from './views.ts';
import type { ResultDocument } from '../api/schema.ts';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8765;
export const MAX_URL = 2048;
export const MAX_HEADER_BYTES = 8192;
export const MAX_WS_CLIENTS = 64;
export const MAX_WS_PAYLOAD = 1024;
/** Runs a trend page reads at most (each test keeps at most 500 points anyway). */
export const MAX_TREND_RUNS = 500;

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

interface Asset {
  type: string;
  body: Buffer;
}

const require = createRequire(import.meta.url);
const web = (name: string) => fileURLToPath(new URL(`./web/${name}`, import.meta.url));

/** The page and its files: a fixed list, read once. */
function loadAssets(): Map<string, Asset> {
  const js = 'text/javascript; charset=utf-8';
  const files: [string, string, string][] = [
    ['/', web('index.html'), 'text/html; charset=utf-8'],
    ['/static/app.js', web('app.js'), js],
    ['/static/dom.js', web('dom.js'), js],
    ['/static/pages.js', web('pages.js'), js],
    ['/static/charts.js', web('charts.js'), js],
    ['/static/style.css', web('style.css'), 'text/css; charset=utf-8'],
    ['/vendor/uplot.js', require.resolve('uplot/dist/uPlot.iife.min.js'), js],
    ['/vendor/uplot.css', require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'],
  ];
  return new Map(files.map(([route, file, type]) => [route, { type, body: readFileSync(file) }]));
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
const isLoopback = (host: string): boolean => LOOPBACK_NAMES.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

/** `--ui-allowed-hosts`-style entries, checked: a host name or address, optionally with a port. */
export function parseAllowedHosts(entries: readonly string[], what = 'allowed hosts'): string[] {
  return entries.map((raw) => {
    const e = raw.trim().toLowerCase();
    if (!/^(\[[0-9a-f:.]+\]|[a-z0-9]([-a-z0-9.]*[a-z0-9])?)(:\d{1,5})?$/.test(e)) throw new Error(`${what}: "${raw}" is not a host name or address, with an optional :port`);
    return e;
  });
}

/** Whether a Host header is one of `allowed` (see UiServerOptions.allowedHosts). */
export function hostAllowed(header: string | undefined, allowed: readonly string[]): boolean {
  const h = (header ?? '').trim().toLowerCase();
  const name = hostName(h);
  if (!name) return false;
  return allowed.some((a) => a === h || (a === name && !/^(\[[^\]]*\]|[^:\[]*):\d+$/.test(a)));
}

/** The host name of a Host header (`localhost:8765` → `localhost`, `[::1]:80` → `[::1]`). */
function hostName(header: string | undefined): string {
  if (!header) return '';
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(header.trim().toLowerCase());
  return m ? m[1]! : '';
}

export interface UiServerOptions {
  source: UiSource;
  host?: string;
  port?: number;
  /**
   * The Host names the server answers to (`name` or `name:port`, case-insensitive; a name without
   * a port allows any port, as `kubectl port-forward` may listen on another local port), whatever
   * address it is bound to; any other Host is refused (421), so no page can reach it by DNS
   * rebinding. Absent: bound to a loopback address, only loopback names; else any Host.
   */
  allowedHosts?: readonly string[];
  /** What the page says it is served by (`swarmbench ui`, `swarmbench run --ui`, the operator). */
  title?: string;
}

export interface UiServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const host = o.host ?? DEFAULT_HOST;
  const assets = loadAssets();
  const allowed = o.allowedHosts?.length ? parseAllowedHosts(o.allowedHosts) : undefined;
  const loopbackOnly = !allowed && isLoopback(host);
  // Whether a Host header is one this server answers to (421 otherwise).
  const hostOk = (header: string | undefined): boolean => (allowed ? hostAllowed(header, allowed) : !loopbackOnly || isLoopback(hostName(header)));
  const hostRefusal = allowed ? `this server answers only to ${allowed.join(', ')} (its allowed hosts)` : 'this server answers only to a loopback host name (127.0.0.1, localhost)';
  const source = o.source;

  const send = (req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}) => {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(buf.length), 'cache-control': 'no-store', ...extra });
    res.end(req.method === 'HEAD' ? undefined : buf);
  };
  const json = (req: IncomingMessage, res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}) =>
    send(req, res, status, 'application/json; charset=utf-8', JSON.stringify(value), extra);

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} is not allowed: the UI is read-only (GET, HEAD)`);
    const raw = req.url ?? '/';
    if (raw.length > MAX_URL) throw new HttpError(414, `the URL is longer than ${MAX_URL} characters`);
    if (!hostOk(req.headers.host)) throw new HttpError(421, hostRefusal);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > 0 || req.headers['transfer-encoding']) throw new HttpError(413, 'the UI takes no request body');
    if (!raw.startsWith('/')) throw new HttpError(400, 'the request target must be a path');
    // Appended, not resolved: `//x/y` is the path //x/y here, never a host.
    const url = new URL(`http://ui.invalid${raw}`);
    const path = url.pathname;
    const asset = assets.get(path === '/index.html' ? '/' : path);
    if (asset) return send(req, res, 200, asset.type, asset.body, { 'cache-control': 'no-cache' });
    // The schedules come with the runs (one request for the runs page); none on the local host.
    if (path === '/api/runs') return json(req, res, 200, { ...(await source.list()), title: o.title ?? 'swarmbench ui', schedules: source.schedules ? await source.schedules() : [] });
    if (path === '/api/trends') return json(req, res, 200, await trends());
    if (path === '/api/compare') return json(req, res, 200, await compare(url.searchParams));
    if (path === '/api/schedules') return json(req, res, 200, { schedules: source.schedules ? await source.schedules() : [] });
    const s = /^\/api\/schedules\/([A-Za-z0-9-]{1,64})$/.exec(path);
    if (s) {
      const page = source.schedule ? await source.schedule(s[1]!) : undefined;
      if (!page) throw new HttpError(404, `no schedule ${s[1]}`);
      return json(req, res, 200, page);
    }
    const m = /^\/api\/runs\/([A-Za-z0-9-]{1,64})(?:\/exports\/([a-z.]{1,20}))?$/.exec(path);
    if (m) {
      const id = m[1]!;
      if (m[2] !== undefined) return exportOf(req, res, id, m[2]);
      const page = await source.page(id);
      if (!page) throw new HttpError(404, `no run ${id}`);
      return json(req, res, 200, { ...page, ...(page.doc ? { charts: chartsOf(page.doc), headline: headlineOf(page.doc) } : {}) });
    }
    throw new HttpError(404, `no such page: ${path.slice(0, 100)}`);
  }

  async function exportOf(req: IncomingMessage, res: ServerResponse, id: string, name: string): Promise<void> {
    if (!(EXPORT_FILES as readonly string[]).includes(name)) throw new HttpError(404, `no export ${name} (exports: ${EXPORT_FILES.join(', ')})`);
    const text = await source.exportFile(id, name as ExportName);
    if (text === undefined) throw new HttpError(404, `run ${id} has no ${name}`);
    // Text, never HTML; a browser shows it, sandboxed, and offers to save it under its name.
    const type = name.endsWith('.json') ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8';
    return send(req, res, 200, type, text, { 'content-security-policy': `${CSP}; sandbox`, 'content-disposition': `inline; filename="${name}"` });
  }

  async function compare(q: URLSearchParams) {
    const runId = q.get('run') ?? '';
    const baseId = q.get('baseline') ?? '';
    if (!/^[A-Za-z0-9-]{1,64}$/.test(runId)) throw new HttpError(400, 'run: give the id of a run');
    if (!/^[A-Za-z0-9-]{1,64}$/.test(baseId)) throw new HttpError(400, 'baseline: give the id of a run');
    const [cur, base] = await Promise.all([source.document(runId), source.document(baseId)]);
    if (!cur) throw new HttpError(404, `run: no run ${runId}`);
    if (!base) throw new HttpError(404, `baseline: no run ${baseId}`);
    if (!cur.ok) throw new HttpError(422, `run: ${cur.error}`);
    if (!base.ok) throw new HttpError(422, `baseline: ${base.error}`);
    return { run: cur.row, baseline: base.row, ...compareDocs(cur.doc, base.doc, base.row.source, q.get('force') === '1') };
  }

  async function trends() {
    const { runs } = await source.list();
    const finished = runs.filter((r) => r.phase === 'Succeeded' || r.phase === 'Failed').slice(0, source.maxTrendRuns ?? MAX_TREND_RUNS);
    const docs: ResultDocument[] = [];
    const skipped = runs.filter((r) => r.phase === 'Unreadable').map((r) => r.error ?? r.source);
    for (const r of finished) {
      const d = await source.document(r.id);
      if (d?.ok) docs.push(d.doc);
      else if (d) skipped.push(d.error);
    }
    const t = trendsOfDocs(docs);
    return { runs: docs.length, tests: t.tests, skipped: [...skipped, ...t.skipped] };
  }

  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
    route(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : `the UI failed: ${errorMessage(err)}`;
      if (res.headersSent) return void res.destroy();
      json(req, res, status, { error: message }, status === 405 ? { allow: 'GET, HEAD' } : {});
    });
  });
  server.maxConnections = 256;

  // The events: every event of the source goes to every page; what a page sends is ignored.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_WS_PAYLOAD });
  const clients = new Set<WebSocket>();
  let unsubscribe: (() => void) | undefined;
  const broadcast = (e: UiEvent) => {
    const text = JSON.stringify(e);
    for (const ws of clients) if (ws.bufferedAmount < 1024 * 1024) ws.send(text);
  };
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(`http://ui.invalid${(req.url ?? '/').startsWith('/') ? req.url : '/'}`);
    const host = req.headers.host ?? '';
    const origin = req.headers.origin;
    const refuse = (status: number, why: string) => {
      socket.end(`HTTP/1.1 ${status} ${why}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    if (url.pathname !== '/api/events') return refuse(404, 'Not Found');
    if (!hostOk(host)) return refuse(421, 'Misdirected Request');
    // Same origin only: the page this server served, over http or (behind a TLS ingress) https.
    if (origin !== undefined && origin !== `http://${host}` && !(allowed && origin === `https://${host}`)) return refuse(403, 'Forbidden');
    if (clients.size >= MAX_WS_CLIENTS) return refuse(503, 'Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      if (!unsubscribe) unsubscribe = source.subscribe(broadcast);
      ws.on('message', () => undefined);
      ws.on('error', () => ws.terminate());
      ws.on('close', () => {
        clients.delete(ws);
        if (clients.size === 0 && unsubscribe) {
          unsubscribe();
          unsubscribe = undefined;
        }
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? DEFAULT_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}/`,
    server,
    close: async () => {
      unsubscribe?.();
      unsubscribe = undefined;
      for (const ws of clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
