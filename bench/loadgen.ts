/**
 * Section `loadgen`: the load generator's maximum rate against autocannon, on the same agent and
 * the same number of connections.
 *
 * One reference agent (`swarmbench agent`, src/agent/cli.ts) runs in a child process. Both clients
 * run in this process, one at a time, alternating which goes first per trial (bench/lib.ts
 * `paired`), each for the same duration against the same `POST /v1/tasks`:
 *
 * - subject: SwarmBench's open-loop generator (src/bench/load/generator.ts `startLoad`, mode
 *   `tasks`: the answer is the completion, parsed and checked by src/bench/load/verify.ts). It is
 *   offered far more than the agent can serve, with `maxOutstanding` = CONNECTIONS: arrivals while
 *   CONNECTIONS requests are open are dropped (reported, not sent), so at most CONNECTIONS requests,
 *   hence keep-alive connections, are open at once. Its figure is `ok` answers per second of the
 *   schedule (`LoadRun.throughput`). The closed loop (src/bench/load/closed.ts) is not used: it goes
 *   through `/v1/dispatch` and polls for completion, so its rate is bounded by the polling, not by
 *   the generator.
 * - reference: autocannon with CONNECTIONS connections (pipelining 1), the same body shape
 *   (`{"id","kind":"io","ioMs":0,"payload"}`, a fresh id per request: the agent answers a repeated
 *   id from its cache) and the same bearer token; its figure is 2xx answers per second.
 *
 * The task is an io task with `ioMs` 0: the agent echoes the payload at once (src/agent/tasks.ts),
 * so the figure is the HTTP path of client and agent, not the agent's work.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startLoad } from '../src/bench/load/generator.ts';
import { median } from '../src/stats.ts';
import { startServer, type Server } from './child.ts';
import { figure, paired, type RunOptions, type Section } from './lib.ts';

/** Connections of both clients (autocannon's `connections`, the generator's `maxOutstanding`). */
export const CONNECTIONS = 32;
/**
 * The generator's offered rate: OVERDRIVE times the rate autocannon reached in the warm-up, and at
 * least MIN_OFFERED_PER_S, so it stays far above what the agent serves on any host.
 */
const OVERDRIVE = 4;
const MIN_OFFERED_PER_S = 20_000;
/** The agent's capacity: above CONNECTIONS, so it never answers 429 here. */
const CAPACITY = 256;

const BIN = fileURLToPath(new URL('../bin/swarmbench.js', import.meta.url));

/** The part of autocannon's programmatic API used here (the package ships no types). */
interface AutocannonOptions {
  url: string;
  connections: number;
  pipelining: number;
  duration: number;
  timeout: number;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
  idReplacement: boolean;
}
interface AutocannonResult {
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}
type Autocannon = (opts: AutocannonOptions, cb: (err: Error | null, res: AutocannonResult) => void) => unknown;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface Counts {
  generator: { sent: number; ok: number; wrong: number; error: number; timeout: number; rejected: number; dropped: number; lagP99Ms: number[] };
  autocannon: { ok: number; non2xx: number; errors: number; timeouts: number };
}

/** A run's rate and every answer it counted (for the CPU spent per answer). */
interface Rate {
  perSecond: number;
  answers: number;
}

/** One generator run; ok answers per second of its schedule. */
async function generatorRate(url: string, token: string, offered: number, durationMs: number, seed: number, counts?: Counts['generator']): Promise<Rate> {
  const h = startLoad({
    targets: [url],
    rate: offered,
    durationMs,
    mode: 'tasks',
    mix: { io: 1, cpu: 0 },
    ioMs: 0,
    maxOutstanding: CONNECTIONS,
    timeoutMs: 10_000,
    seed,
    token,
  });
  const run = await h.done;
  if (counts) {
    const c = run.counts;
    counts.sent += c.sent;
    counts.ok += c.ok;
    counts.wrong += c.wrong;
    counts.error += c.error;
    counts.timeout += c.timeout;
    counts.rejected += c.rejected;
    counts.dropped += c.dropped;
    counts.lagP99Ms.push(run.lag.p99);
  }
  // Answers after the schedule's end are not in the rate (autocannon stops counting at its end too).
  return { perSecond: run.throughput(0, run.scheduleEndMs), answers: run.counts.ok };
}

/** One autocannon run; 2xx answers per second of its measured duration. */
function autocannonRate(url: string, token: string, durationMs: number, counts?: Counts['autocannon']): Promise<Rate> {
  const base = randomBytes(4).readUInt32BE(0).toString(36);
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/v1/tasks`,
        connections: CONNECTIONS,
        pipelining: 1,
        duration: durationMs / 1000,
        timeout: 10,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        // The generator's body shape (src/bench/load/generator.ts). autocannon puts a fresh unique id
        // (hyperid) in place of [<id>] in every request, so no answer comes from the agent's cache.
        body: `{"id":"[<id>]","kind":"io","ioMs":0,"payload":"${base}.ac"}`,
        idReplacement: true,
      },
      (err, res) => {
        if (err) return reject(err);
        if (counts) {
          counts.ok += res['2xx'];
          counts.non2xx += res.non2xx;
          counts.errors += res.errors;
          counts.timeouts += res.timeouts;
        }
        if (!(res.duration > 0)) return reject(new Error('autocannon: no duration'));
        resolve({ perSecond: res['2xx'] / res.duration, answers: res['2xx'] });
      },
    );
  });
}

/** CPU seconds (user + system) of process `pid` so far, from /proc; null where unreadable. */
function procCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime is field 14, stime 15 (clock ticks, 100 a second).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? ticks / 100 : null;
  } catch {
    return null;
  }
}

/** The io tasks the agent says it ran (its `/metrics` counter), a check that no answer came from its cache. */
async function agentTasksRun(url: string, token: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`agent /metrics: http ${res.status}`);
  const line = text.split('\n').find((l) => l.startsWith('swarmbench_agent_tasks_total{') && l.includes('kind="io"') && l.includes('outcome="ok"'));
  const v = Number(line?.slice(line.lastIndexOf(' ') + 1));
  if (!Number.isFinite(v)) throw new Error('agent /metrics: no io ok task counter');
  return v;
}

/** Per side: CPU µs per answer of this process (the client) and of the agent; answers counted and tasks the agent ran. */
interface SideCost {
  client: number[];
  agent: number[];
  answers: number;
  ran: number;
}

/** Runs `side` and records the CPU this process and the agent spent per answer it counted. */
async function measured(url: string, token: string, agentPid: number, into: SideCost, side: () => Promise<Rate>): Promise<number> {
  const ran0 = await agentTasksRun(url, token);
  const c0 = process.cpuUsage();
  const a0 = procCpuSeconds(agentPid);
  const r = await side();
  const c = process.cpuUsage(c0);
  const a1 = procCpuSeconds(agentPid);
  into.answers += r.answers;
  into.ran += (await agentTasksRun(url, token)) - ran0;
  if (r.answers > 0) {
    into.client.push((c.user + c.system) / r.answers);
    if (a0 !== null && a1 !== null) into.agent.push(((a1 - a0) * 1e6) / r.answers);
  }
  return r.perSecond;
}

const medianOf = (a: number[]): string => (a.length ? median(a).toFixed(0) : 'n/a');

export async function run(opts: RunOptions): Promise<Section> {
  const t0 = performance.now();
  const trials = opts.trials ?? (opts.tiny ? 1 : 5);
  const durationMs = opts.tiny ? 1000 : 5000;
  const warmMs = opts.tiny ? 300 : 1000;
  const token = randomBytes(32).toString('base64url');
  let agent: Server | undefined;
  try {
    agent = await startServer(
      'reference agent',
      [BIN, 'agent', '--host', '127.0.0.1', '--port', '0', '--id', 'bench-loadgen', '--capacity', String(CAPACITY)],
      { ...process.env, SWARMBENCH_AGENT_TOKEN: token },
    );
    const url = agent.url;
    opts.log(`agent ${url} (pid ${agent.pid}); warm-up ${warmMs} ms each`);
    const warm = (await autocannonRate(url, token, warmMs)).perSecond;
    const offered = Math.max(MIN_OFFERED_PER_S, Math.ceil((OVERDRIVE * warm) / 1000) * 1000);
    await generatorRate(url, token, offered, warmMs, 999);
    opts.log(`autocannon warm-up ${warm.toFixed(0)} 2xx/s; the generator is offered ${offered} tasks/s`);
    const counts: Counts = {
      generator: { sent: 0, ok: 0, wrong: 0, error: 0, timeout: 0, rejected: 0, dropped: 0, lagP99Ms: [] },
      autocannon: { ok: 0, non2xx: 0, errors: 0, timeouts: 0 },
    };
    const cost = (): SideCost => ({ client: [], agent: [], answers: 0, ran: 0 });
    const cpu = { generator: cost(), autocannon: cost() };
    const pid = agent.pid;
    const r = await paired(
      trials,
      async (i) => {
        const v = await measured(url, token, pid, cpu.generator, () => generatorRate(url, token, offered, durationMs, i + 1, counts.generator));
        opts.log(`trial ${i + 1}/${trials}: generator ${v.toFixed(0)} ok/s`);
        return v;
      },
      async (i) => {
        const v = await measured(url, token, pid, cpu.autocannon, () => autocannonRate(url, token, durationMs, counts.autocannon));
        opts.log(`trial ${i + 1}/${trials}: autocannon ${v.toFixed(0)} 2xx/s`);
        return v;
      },
    );
    for (const [name, c] of Object.entries(cpu)) {
      if (c.ran < c.answers) throw new Error(`loadgen: ${name} counted ${c.answers} answers but the agent ran ${c.ran} tasks: some came from its cache`);
    }
    const g = counts.generator;
    const a = counts.autocannon;
    const lagP99 = g.lagP99Ms.length ? Math.max(...g.lagP99Ms) : 0;
    return {
      id: 'loadgen',
      title: 'Load generator maximum rate',
      method:
        `One reference agent (\`swarmbench agent\`, capacity ${CAPACITY}) in a child process; both clients run in the bench process, one at a time, ` +
        `alternating which goes first, ${durationMs / 1000} s each, ${CONNECTIONS} connections, \`POST /v1/tasks\` with the same body shape ` +
        `(an io task with ioMs 0: the payload echoed), a fresh id per request and the same bearer token. ` +
        `Subject: the open-loop generator (src/bench/load/generator.ts) offered ${offered} tasks/s (${OVERDRIVE} x autocannon's warm-up rate, at least ${MIN_OFFERED_PER_S}) with at most ${CONNECTIONS} open requests, ` +
        `counting checked \`ok\` answers per second; reference: autocannon 2xx answers per second.`,
      figures: [
        figure({
          id: 'loadgen.max-rate',
          title: `Max completions/s, ${CONNECTIONS} connections`,
          unit: 'tasks/s',
          subject: { label: 'SwarmBench generator', samples: r.subject },
          reference: { label: 'autocannon', samples: r.reference },
          ratios: r.ratios,
          goal: { text: 'generator >= 0.9 x autocannon', of: 'ratio', op: '>=', value: 0.9 },
          notes: [
            `The host's ${availableParallelism()} CPUs are shared by the client (this process) and the agent (one Node process, one event loop): the rate is bounded by ` +
              'whichever saturates first, and both sides compete for the same CPU; other processes on the host show up as noise, on both sides alike.',
            'The generator parses and checks every answer (src/bench/load/verify.ts: id, executor, payload echo) and keeps per-task records; ' +
              'autocannon parses the HTTP answer but never looks at its body. That cost is part of the subject.',
            'The generator sends on its schedule\'s timer (at most once a millisecond, src/bench/load/generator.ts `tick`): a request slot freed between two ' +
              'ticks waits for the next one, where autocannon sends the next request on a connection as soon as its answer is in.',
            `Generator over all trials: ${g.ok} ok of ${g.sent} sent, ${g.wrong} wrong, ${g.error} errors, ${g.timeout} timeouts, ${g.rejected} rejected; ` +
              `${g.dropped} arrivals not sent because ${CONNECTIONS} requests were open (the cap that stands for the connections); ` +
              `sent arrivals were at most ${lagP99.toFixed(1)} ms behind their schedule at p99 (worst trial).`,
            `autocannon over all trials: ${a.ok} 2xx, ${a.non2xx} non-2xx, ${a.errors} errors, ${a.timeouts} timeouts.`,
            `CPU per answer (median over trials; this process from process.cpuUsage, the agent from /proc): generator ${medianOf(cpu.generator.client)} µs ` +
              `client + ${medianOf(cpu.generator.agent)} µs agent; autocannon ${medianOf(cpu.autocannon.client)} µs client + ${medianOf(cpu.autocannon.agent)} µs agent.`,
            `The agent's own task counter (/metrics) over the measured runs: ${cpu.generator.ran} io tasks run for ${cpu.generator.answers} generator ok answers, ` +
              `${cpu.autocannon.ran} for ${cpu.autocannon.answers} autocannon 2xx (tasks run >= answers: none came from the agent's cache of repeated ids).`,
          ],
        }),
      ],
      wallSeconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await agent?.stop();
  }
}
