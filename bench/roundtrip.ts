/**
 * Section `roundtrip`: test 1.3's round trip against a bare HTTP echo and a bare WebSocket
 * ping-pong, each between two processes.
 *
 * - subject: test 1.3 as the suite computes it (src/bench/distributed/latency.ts
 *   `crossNodeLatency`: agent A relays 1 and 11 round trips to peer B over its coordination
 *   channel, `POST /v1/ping` → `POST /v1/cluster/echo`, timed by the harness; one sample is
 *   (T11 − T1) / 10; the figure is the p50 of the samples), on a local pool (src/platform/local/)
 *   of POOL_SIZE reference agents, one host process each, formed as the suite forms it
 *   (src/bench/distributed/common.ts `formPool`). One pool serves every trial.
 * - references (bench/echo-peer.ts), each a server process and a client process: a bare Node
 *   keep-alive HTTP echo (sequential `POST` round trips) and a bare `ws` WebSocket ping-pong,
 *   sampled as 1.3 samples: each sample a block of 10 consecutive round trips divided by 10; a
 *   trial's figure is the p50 of its samples.
 *
 * The three sides run one after another in each trial, the order rotated per trial (trial i starts
 * with side i mod 3), so a drift of the host lands on all of them; each figure's ratio is per trial.
 */
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/agent/client.ts';
import type { Measurement } from '../src/api/schema.ts';
import type { BenchContext } from '../src/bench/types.ts';
import { formPool, poolOpts } from '../src/bench/distributed/common.ts';
import { crossNodeLatency } from '../src/bench/distributed/latency.ts';
import { DIST_REQUEST_TIMEOUT_MS, LATENCY_LONG } from '../src/plan/deadlines.ts';
import { resolveParams } from '../src/plan/params.ts';
import { LocalPlatform } from '../src/platform/local/index.ts';
import type { Pool } from '../src/platform/types.ts';
import { runClient, startServer, type Server } from './child.ts';
import { figure, type RunOptions, type Section } from './lib.ts';

/** Agents of the pool, one host process each: every 1.3 pair crosses a process boundary, as the references do. */
const POOL_SIZE = 2;
const PEER = fileURLToPath(new URL('./echo-peer.ts', import.meta.url));

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${what}: not a number`);
  return v;
}

/** One reference trial: a fresh client process against the running server; its p50 (ms). */
async function bare(mode: 'http-client' | 'ws-client', url: string, n: number, warm: number, means: number[]): Promise<number> {
  const r = await runClient(mode, [PEER, mode, url, String(n), String(warm)]);
  if (num(r.n, mode) !== Math.floor(n / (LATENCY_LONG - 1))) throw new Error(`${mode}: ${String(r.n)} samples of ${LATENCY_LONG - 1} round trips, expected ${Math.floor(n / (LATENCY_LONG - 1))}`);
  means.push(num(r.mean, mode));
  return num(r.p50, mode);
}

export async function run(opts: RunOptions): Promise<Section> {
  const t0 = performance.now();
  const trials = opts.trials ?? (opts.tiny ? 1 : 5);
  // 1.3 takes at most ceil(params.trials / 2) rounds over its pairs (and stops after its time
  // budget): with one pair each way, this many params.trials give about that many samples a trial.
  const relayTrials = opts.tiny ? 6 : 60;
  const roundTrips = opts.tiny ? 300 : 3000;
  const warm = opts.tiny ? 50 : 300;
  const params = resolveParams({ mode: 'quick', trials: relayTrials, agents: { poolSize: POOL_SIZE, agentsPerProcess: 1 } }, ['distributed']);
  const controller = new AbortController();
  const ctx: BenchContext = {
    params,
    platform: new LocalPlatform({ warmSpare: false }),
    log: { info() {}, warn() {}, debug() {} },
    progress() {},
    signal: controller.signal,
  };
  const client = new AgentClient({ maxSockets: 32, timeoutMs: DIST_REQUEST_TIMEOUT_MS });
  let pool: Pool | undefined;
  let http: Server | undefined;
  let ws: Server | undefined;
  try {
    [http, ws] = await Promise.all([startServer('http echo server', [PEER, 'http-server']), startServer('ws echo server', [PEER, 'ws-server'])]);
    pool = await ctx.platform.createPool(poolOpts(ctx, 'bench-rt', 1));
    await formPool(ctx, client, pool, POOL_SIZE);
    opts.log(`pool of ${POOL_SIZE} formed; references ${http.url}, ${ws.url}`);
    const httpUrl = http.url;
    const wsUrl = ws.url;
    const formed = pool;

    const m13: Measurement[] = [];
    const httpMeans: number[] = [];
    const wsMeans: number[] = [];
    const samples = { s13: [] as number[], http: [] as number[], ws: [] as number[] };
    const sides: [keyof typeof samples, () => Promise<number>][] = [
      [
        's13',
        async () => {
          const m = await crossNodeLatency(ctx, client, formed);
          if (m.fail) throw new Error(`1.3 failed: ${m.fail}`);
          if (m.skip) throw new Error(`1.3 skipped: ${m.skip}`);
          m13.push(m);
          return num(m.value, '1.3 value');
        },
      ],
      ['http', () => bare('http-client', httpUrl, roundTrips, warm, httpMeans)],
      ['ws', () => bare('ws-client', wsUrl, roundTrips, warm, wsMeans)],
    ];
    // One unmeasured 1.3 first: the agents' processes live through every trial, so their first
    // relays would otherwise carry the JIT's warm-up (each reference client warms up in its own process).
    const w = await crossNodeLatency(ctx, client, formed);
    if (w.fail) throw new Error(`1.3 failed: ${w.fail}`);
    for (let i = 0; i < trials; i++) {
      for (let k = 0; k < sides.length; k++) {
        const [name, side] = sides[(i + k) % sides.length]!;
        samples[name].push(await side());
      }
      opts.log(
        `trial ${i + 1}/${trials}: 1.3 p50 ${samples.s13[i]!.toFixed(3)} ms, http ${samples.http[i]!.toFixed(3)} ms, ws ${samples.ws[i]!.toFixed(3)} ms`,
      );
    }

    const d0 = m13[0]!.details ?? {};
    const n13 = m13.map((m) => m.samples);
    const agentP50 = m13.map((m) => Number(m.details?.agentReportedMsP50)).filter(Number.isFinite);
    const direct = m13.map((m) => Number(m.details?.harnessDirectRttMsP50)).filter(Number.isFinite);
    const med = (a: number[]): string => (a.length ? [...a].sort((x, y) => x - y)[a.length >> 1]!.toFixed(3) : 'n/a');
    const common = [
      `1.3 per trial: ${Math.min(...n13)}..${Math.max(...n13)} samples (${String(d0.pairs)} pairs, ${String(d0.crossProcessPairs)} across processes, ` +
        `${String(d0.hostProcesses)} host processes), each the mean of ${LATENCY_LONG - 1} round trips; the references are sampled alike (blocks of ${LATENCY_LONG - 1}), ${roundTrips} round trips ` +
        `(after ${warm} unmeasured), one fresh client process per trial; one unmeasured 1.3 ran before the trials.`,
      'A 1.3 round trip is a full agent request: the bearer-token check, the agent\'s router and JSON answer, its bounded-reading client ' +
        '(src/agent/client.ts), on agents that gossip in the background; the references have none of these.',
      `Beside it, not judged: the agents' own per-round-trip p50 (median over trials) ${med(agentP50)} ms; the harness's direct ` +
        `\`GET /healthz\` round trip ${med(direct)} ms; the references' means: HTTP ${med(httpMeans)} ms, WebSocket ${med(wsMeans)} ms.`,
    ];
    const subject = { label: '1.3 p50', samples: samples.s13 };
    return {
      id: 'roundtrip',
      title: 'Round trip: test 1.3 against bare HTTP and WebSocket',
      method:
        `Test 1.3 (src/bench/distributed/latency.ts) on a local pool of ${POOL_SIZE} reference agents, one host process each, against ` +
        `a bare keep-alive HTTP echo and a bare \`ws\` ping-pong (bench/echo-peer.ts), each a server process and a client process; ` +
        `${trials} trial(s), the three sides in an order rotated per trial; each side's figure per trial is its p50 round trip (ms).`,
      figures: [
        figure({
          id: 'roundtrip.vs-http',
          title: '1.3 round trip vs bare HTTP echo',
          unit: 'ms',
          subject,
          reference: { label: 'bare HTTP echo p50', samples: samples.http },
          goal: { text: '1.3 <= 1.5 x bare HTTP echo', of: 'ratio', op: '<=', value: 1.5 },
          notes: common,
        }),
        figure({
          id: 'roundtrip.vs-ws',
          title: '1.3 round trip vs bare WebSocket ping-pong',
          unit: 'ms',
          subject,
          reference: { label: 'bare ws ping-pong p50', samples: samples.ws },
          notes: ['Reported, no goal: the agents talk HTTP, not WebSocket, so this is the floor of a different transport.'],
        }),
      ],
      wallSeconds: (performance.now() - t0) / 1000,
    };
  } finally {
    controller.abort();
    client.close();
    await pool?.close().catch(() => undefined);
    await ctx.platform.close().catch(() => undefined);
    await Promise.all([http?.stop(), ws?.stop()]);
  }
}
