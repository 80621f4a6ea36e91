/**
 * The bare references of bench/roundtrip.ts, one process per side (run with Node, which runs this
 * .ts file directly):
 *
 *   node bench/echo-peer.ts http-server          keep-alive HTTP server: POST answers 200 {"id":"echo"}
 *   node bench/echo-peer.ts ws-server            WebSocket server (the `ws` package): echoes each message
 *   node bench/echo-peer.ts http-client URL N W  W unmeasured, then N timed sequential POSTs of "{}"
 *   node bench/echo-peer.ts ws-client URL N W    W unmeasured, then N timed sequential "{}" ping-pongs
 *
 * A server prints `{"url":...}` once it listens (127.0.0.1, a free port) and runs until SIGTERM.
 * A client prints `{"p50","mean","p95","n"}` and exits 0: ms per round trip, as test 1.3 samples
 * them (src/bench/distributed/latency.ts): each sample is one block of GROUP (10) consecutive round
 * trips timed with performance.now() around the block, divided by GROUP; n is the number of blocks
 * (src/stats.ts `describe`, as 1.3 does). N round trips give N / GROUP samples. No authentication, no routing, no JSON parsing: the floor that an
 * HTTP or a WebSocket round trip between two Node processes costs on this host.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { describe } from '../src/stats.ts';

const ANSWER = '{"id":"echo"}';

function out(v: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

/** Round trips per sample, as test 1.3's relay (LATENCY_LONG - 1 = 10 round trips per sample). */
const GROUP = 10;

/** Times `n` round trips in blocks of GROUP; p50 and p95 over the blocks' per-round-trip means. */
async function timed(n: number, once: () => Promise<void>): Promise<Record<string, number>> {
  const ms: number[] = [];
  for (let b = 0; b < Math.max(1, Math.floor(n / GROUP)); b++) {
    const t0 = performance.now();
    for (let i = 0; i < GROUP; i++) await once();
    ms.push((performance.now() - t0) / GROUP);
  }
  const d = describe(ms);
  return { p50: d.p50, mean: d.mean, p95: d.p95, n: d.n };
}

function httpServer(): void {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
      res.end(ANSWER);
    });
  });
  server.listen(0, '127.0.0.1', () => out({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

function wsServer(): void {
  const wss: WebSocketServer = new WebSocketServer({ host: '127.0.0.1', port: 0 }, (): void => {
    out({ url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` });
  });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  process.once('SIGTERM', () => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => process.exit(0));
  });
}

async function httpClient(url: string, n: number, warm: number): Promise<void> {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = '{}';
  const once = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { agent, hostname: u.hostname, port: Number(u.port), method: 'POST', path: '/echo', headers: { 'content-type': 'application/json', 'content-length': 2 } },
        (res) => {
          if (res.statusCode !== 200) return reject(new Error(`http ${res.statusCode}`));
          res.resume();
          res.on('end', resolve);
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  for (let i = 0; i < warm; i++) await once();
  const r = await timed(n, once);
  agent.destroy();
  out(r);
}

async function wsClient(url: string, n: number, warm: number): Promise<void> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let waiter: (() => void) | null = null;
  ws.on('message', () => {
    const w = waiter;
    waiter = null;
    w?.();
  });
  ws.on('error', (e) => {
    process.stderr.write(`ws-client: ${e.message}\n`);
    process.exit(1);
  });
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      waiter = resolve;
      ws.send('{}');
    });
  for (let i = 0; i < warm; i++) await once();
  const r = await timed(n, once);
  ws.close();
  out(r);
}

const [mode, url, nArg, warmArg] = process.argv.slice(2);
const n = Number(nArg ?? 1000);
const warm = Number(warmArg ?? 100);
if ((mode === 'http-client' || mode === 'ws-client') && (!url || !Number.isInteger(n) || n < 1 || !Number.isInteger(warm) || warm < 0)) {
  process.stderr.write('usage: echo-peer.ts http-client|ws-client URL N WARM\n');
  process.exit(2);
}
switch (mode) {
  case 'http-server':
    httpServer();
    break;
  case 'ws-server':
    wsServer();
    break;
  case 'http-client':
    await httpClient(url!, n, warm);
    break;
  case 'ws-client':
    await wsClient(url!, n, warm);
    break;
  default:
    process.stderr.write('usage: echo-peer.ts http-server|ws-server|http-client URL N WARM|ws-client URL N WARM\n');
    process.exit(2);
}
