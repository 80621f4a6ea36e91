/**
 * `swarmbench agent`: runs one or several reference agents in this process.
 *
 * ```
 * swarmbench agent [--host H] [--port P] [--id ID] [--seeds URL,URL] [--capacity 64]
 *                  [--gossip-interval-ms 100] [--failure-timeout-ms 1500]
 *                  [--count K [--hosts H1,H2,...] [--ids ID1,ID2,...]]
 *                  [--advertise-host H] [--control] [--name POOL] [--defect NAME[:VALUE],...]
 *                  [--token-file PATH] [--metrics-token-file PATH]
 * ```
 * Configuration by environment (Kubernetes): SWARMBENCH_AGENT_ID (pod name), SWARMBENCH_SEEDS,
 * SWARMBENCH_CAPACITY, SWARMBENCH_GOSSIP_INTERVAL_MS, SWARMBENCH_FAILURE_TIMEOUT_MS,
 * SWARMBENCH_DEFECTS (comma-separated defect profiles, docs/defects.md), PORT
 * (default 8080), POD_IP (the host in the agent's URL). Flags win over the environment.
 * `--defect` may be repeated or list several profiles; every agent of the process gets them.
 * Without --host the agent listens on 0.0.0.0.
 *
 * The bearer token (docs/agent-contract.md, "Authentication"; src/agent/auth.ts): every route but
 * `/healthz` and `/readyz` requires it. `--token-file PATH` reads it from PATH (at most 4 KiB,
 * trimmed); when PATH does not exist it is created first with a new random token, mode 0600
 * (atomically, so agents started together with one path share one token), and the clients are
 * given the same file (`swarmbench run --agent-token-file PATH`, `swarmbench conformance
 * --token-file PATH`). Otherwise SWARMBENCH_AGENT_TOKEN (the local platform and the operator set
 * it). With neither the process refuses to start (exit 2): an agent nobody can call, or one that
 * anybody can, is never what was meant. The token is never printed, logged or put into an error.
 * `--metrics-token-file PATH` (else SWARMBENCH_METRICS_TOKEN, else none) is the optional
 * read-only scrape token, accepted on `GET /metrics` only (a Prometheus that scrapes the agents
 * of many runs holds it instead of each run's token): read like `--token-file` (4 KiB at most,
 * trimmed, validated) but never created, since the token in it must be the one Prometheus holds.
 *
 * Every agent that listens prints `{"event":"listening","id","url","pid"}` on stdout.
 * With several agents and no seeds, the first one starts the cluster and the others join it.
 * A seed that turns out to be the agent itself (a Service that routed the join back to its own
 * pod) is skipped; an agent whose seeds are all itself starts a cluster alone.
 *
 * `--control` (used by the local platform) makes stdin a command channel, one JSON object per line:
 * `{"op":"start","agents":[{"id","host"}],"seeds":[...]}` starts more agents in this process,
 * `{"op":"leave","id"}` makes one agent leave gracefully, `{"op":"crash","id"}` kills one abruptly
 * (listener and sockets destroyed, nothing announced), `{"op":"exit"}` leaves with all agents.
 * Answers are JSON lines on stdout (`left`, `crashed`, `error`). When stdin closes (the parent
 * died) or the parent process changes, the process exits at once, so agents never outlive the
 * platform that started them.
 *
 * SIGTERM / SIGINT: every agent leaves the cluster (announces `left`), then the process exits 0.
 */
import { createInterface } from 'node:readline';
import { Agent } from './agent.ts';
import { METRICS_TOKEN_WHAT, metricsToken, readOrCreateTokenFile, readTokenFile, TOKEN_ENV, validateToken } from './auth.ts';
import { parseDefectList, type Defect } from './defects.ts';
import { errorMessage } from '../errors.ts';

interface AgentSpec {
  id: string;
  host: string;
  port: number;
}

interface Config {
  specs: AgentSpec[];
  seeds: string[];
  capacity: number;
  gossipIntervalMs: number;
  failureTimeoutMs: number;
  advertiseHost: string | undefined;
  control: boolean;
  name: string;
  defects: Defect[];
}

const USAGE = `usage: swarmbench agent [--host H] [--port P] [--id ID] [--seeds URL,...] [--capacity N]
                        [--gossip-interval-ms MS] [--failure-timeout-ms MS]
                        [--count K [--hosts H1,H2,...] [--ids ID1,ID2,...]]
                        [--advertise-host H] [--control] [--name POOL]
                        [--defect NAME[:VALUE],...]   (defect profiles, docs/defects.md)
                        [--token-file PATH]   the bearer token every route but /healthz and /readyz
                                              requires (created, mode 0600, with a new random token
                                              when PATH does not exist); default $SWARMBENCH_AGENT_TOKEN;
                                              with neither the agent refuses to start
                        [--metrics-token-file PATH]   an optional read-only scrape token, accepted on
                                              GET /metrics only (for a Prometheus shared by runs);
                                              default $SWARMBENCH_METRICS_TOKEN, else none
environment: SWARMBENCH_AGENT_ID, SWARMBENCH_SEEDS, SWARMBENCH_CAPACITY, SWARMBENCH_DEFECTS, PORT, POD_IP,
             SWARMBENCH_AGENT_TOKEN, SWARMBENCH_METRICS_TOKEN
`;

const BOOL_FLAGS = new Set(['control', 'help']);

const KNOWN = new Set([
  'host', 'port', 'id', 'seeds', 'capacity', 'gossip-interval-ms', 'failure-timeout-ms',
  'count', 'hosts', 'ids', 'advertise-host', 'control', 'name', 'help', 'defect', 'token-file',
  'metrics-token-file',
]);

/** Options that may be given several times; their values are joined with commas. */
const REPEATABLE = new Set(['defect']);

/** `--k v`, `--k=v` and boolean flags; with `known`, an unknown option is an error. */
export function parseArgs(argv: string[], known?: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h') {
      out.set('help', 'true');
      continue;
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (known && !known.has(key)) throw new Error(`unknown option --${key}`);
    let v: string;
    if (eq > 0) v = a.slice(eq + 1);
    else if (BOOL_FLAGS.has(key)) v = 'true';
    else {
      const next = argv[++i];
      if (next === undefined) throw new Error(`--${key} needs a value`);
      v = next;
    }
    const prev = out.get(key);
    out.set(key, prev !== undefined && REPEATABLE.has(key) ? `${prev},${v}` : v);
  }
  return out;
}

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function int(v: string | undefined, dflt: number, name: string, min = 0): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}`);
  return n;
}

export function resolveConfig(args: Map<string, string>, env: NodeJS.ProcessEnv): Config {
  for (const k of args.keys()) if (!KNOWN.has(k)) throw new Error(`unknown option --${k}`);
  const count = int(args.get('count'), 1, '--count', 0);
  const host = args.get('host') ?? '0.0.0.0';
  const port = int(args.get('port') ?? env.PORT, 8080, '--port');
  const id = args.get('id') ?? env.SWARMBENCH_AGENT_ID ?? `agent-${process.pid}`;
  const hosts = list(args.get('hosts'));
  const ids = list(args.get('ids'));
  if (hosts.length > 0 && hosts.length !== count) throw new Error('--hosts must list one address per agent (--count)');
  if (ids.length > 0 && ids.length !== count) throw new Error('--ids must list one id per agent (--count)');
  const specs: AgentSpec[] = [];
  for (let i = 0; i < count; i++) {
    specs.push({
      id: ids[i] ?? (count === 1 ? id : `${id}-${i}`),
      host: hosts[i] ?? host,
      // Several agents on one address need distinct ports.
      port: hosts.length > 0 || port === 0 ? port : port + i,
    });
  }
  if (new Set(specs.map((s) => s.id)).size !== specs.length) throw new Error('agent ids must be unique');
  const defectSource = args.has('defect') ? '--defect' : 'SWARMBENCH_DEFECTS';
  const parsed = parseDefectList(list(args.get('defect') ?? env.SWARMBENCH_DEFECTS), 'agent');
  const bad = parsed.errors[0];
  if (bad) throw new Error(`${defectSource}: ${bad.message}`);
  return {
    specs,
    seeds: list(args.get('seeds') ?? env.SWARMBENCH_SEEDS),
    capacity: int(args.get('capacity') ?? env.SWARMBENCH_CAPACITY, 64, '--capacity', 1),
    gossipIntervalMs: int(args.get('gossip-interval-ms') ?? env.SWARMBENCH_GOSSIP_INTERVAL_MS, 100, '--gossip-interval-ms', 5),
    failureTimeoutMs: int(args.get('failure-timeout-ms') ?? env.SWARMBENCH_FAILURE_TIMEOUT_MS, 1500, '--failure-timeout-ms', 50),
    advertiseHost: args.get('advertise-host') ?? env.POD_IP,
    control: args.get('control') === 'true',
    name: args.get('name') ?? 'agent',
    defects: parsed.defects,
  };
}

/**
 * The agents' bearer token: `--token-file PATH` (created with a new token when missing), else
 * SWARMBENCH_AGENT_TOKEN; neither is an error saying how to give one. Errors name the flag, the
 * file or the variable, never the token.
 */
export function resolveToken(args: Map<string, string>, env: NodeJS.ProcessEnv): string {
  const file = args.get('token-file');
  if (file !== undefined) {
    if (file === '') throw new Error('--token-file: give a path');
    return readOrCreateTokenFile(file, '--token-file');
  }
  const v = env[TOKEN_ENV];
  if (v !== undefined) return validateToken(v, TOKEN_ENV);
  throw new Error(
    `no agent token: give --token-file PATH (created with a new random token, mode 0600, when it does not exist; ` +
      `give the same file to every agent of the cluster and to its clients: swarmbench run --agent-token-file PATH) or set ${TOKEN_ENV}`,
  );
}

/**
 * The optional read-only scrape token: `--metrics-token-file PATH` (read bounded, never created),
 * else SWARMBENCH_METRICS_TOKEN, else null (only the run token opens `/metrics`). Errors name the
 * flag, the file or the variable, never the token.
 */
export function resolveMetricsToken(args: Map<string, string>, env: NodeJS.ProcessEnv): string | null {
  const file = args.get('metrics-token-file');
  if (file !== undefined) {
    if (file === '') throw new Error('--metrics-token-file: give a path');
    return readTokenFile(file, '--metrics-token-file', METRICS_TOKEN_WHAT);
  }
  return metricsToken(env);
}

function out(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** The agents of this process, and how to start and stop them. */
class Host {
  readonly agents = new Map<string, Agent>();
  private readonly cfg: Config;
  readonly #token: string;
  readonly #metricsToken: string | null;
  private exiting = false;

  constructor(cfg: Config, token: string, metricsToken: string | null) {
    this.cfg = cfg;
    this.#token = token;
    this.#metricsToken = metricsToken;
  }

  async start(specs: AgentSpec[], seeds: string[]): Promise<void> {
    let rest = specs;
    let seedList = seeds;
    if (seedList.length === 0 && rest.length > 0) {
      // No cluster yet: the first agent starts it, the others join it.
      const first = await this.startOne(rest[0]!, []);
      rest = rest.slice(1);
      seedList = first ? [first] : [];
    }
    await Promise.all(rest.map((s) => this.startOne(s, seedList)));
  }

  private async startOne(spec: AgentSpec, seeds: string[]): Promise<string | null> {
    if (this.agents.has(spec.id)) {
      out({ event: 'error', id: spec.id, message: 'duplicate agent id' });
      return null;
    }
    const agent = new Agent({
      id: spec.id,
      host: spec.host,
      port: spec.port,
      ...(this.cfg.advertiseHost ? { advertiseHost: this.cfg.advertiseHost } : {}),
      seeds,
      capacity: this.cfg.capacity,
      gossipIntervalMs: this.cfg.gossipIntervalMs,
      failureTimeoutMs: this.cfg.failureTimeoutMs,
      agentsInProcess: () => this.agents.size,
      defects: this.cfg.defects,
      token: this.#token,
      metricsToken: this.#metricsToken,
    });
    this.agents.set(spec.id, agent);
    try {
      const url = await agent.start();
      out({ event: 'listening', id: spec.id, url, pid: process.pid });
      return url;
    } catch (err) {
      this.agents.delete(spec.id);
      out({ event: 'error', id: spec.id, message: errorMessage(err) });
      return null;
    }
  }

  async leave(id: string): Promise<void> {
    const a = this.agents.get(id);
    if (!a) return out({ event: 'error', id, message: 'no such agent' });
    await a.leave();
    this.agents.delete(id);
    out({ event: 'left', id });
    this.maybeExit();
  }

  crash(id: string): void {
    const a = this.agents.get(id);
    if (!a) return out({ event: 'error', id, message: 'no such agent' });
    a.crash();
    this.agents.delete(id);
    out({ event: 'crashed', id });
    this.maybeExit();
  }

  /** Without a control channel, the process ends with its last agent. */
  private maybeExit(): void {
    if (!this.cfg.control && this.agents.size === 0) void this.exit(0);
  }

  async leaveAll(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((id) => this.leave(id)));
  }

  async exit(code: number): Promise<void> {
    if (this.exiting) return;
    this.exiting = true;
    process.exitCode = code;
    // Give stdout a moment to flush, then go even if a socket lingers.
    setTimeout(() => process.exit(code), 50).unref();
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    process.exit(code);
  }

  die(): never {
    for (const a of this.agents.values()) a.crash();
    process.exit(0);
  }
}

export async function main(argv: string[]): Promise<number> {
  let cfg: Config;
  let token: string;
  let scrape: string | null;
  try {
    const args = parseArgs(argv, KNOWN);
    if (args.has('help')) {
      process.stdout.write(USAGE);
      return 0;
    }
    cfg = resolveConfig(args, process.env);
    token = resolveToken(args, process.env);
    scrape = resolveMetricsToken(args, process.env);
  } catch (err) {
    process.stderr.write(`swarmbench agent: ${errorMessage(err)}\n${USAGE}`);
    return 2;
  }
  process.title = `swarmbench-agent ${cfg.name}`;
  const host = new Host(cfg, token, scrape);

  process.on('unhandledRejection', (err) => {
    process.stderr.write(`swarmbench agent: unhandled rejection: ${err instanceof Error ? err.stack : String(err)}\n`);
  });
  const onSignal = (): void => {
    void host.leaveAll().then(() => host.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  if (cfg.control) {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) host.die();
    }, 1000).unref();
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      let cmd: { op?: string; id?: string; agents?: { id: string; host: string; port?: number }[]; seeds?: string[] };
      try {
        cmd = JSON.parse(line) as typeof cmd;
      } catch {
        out({ event: 'error', message: 'control: not JSON' });
        return;
      }
      switch (cmd.op) {
        case 'start':
          void host.start(
            (cmd.agents ?? []).map((a) => ({ id: a.id, host: a.host, port: a.port ?? 0 })),
            cmd.seeds ?? [],
          );
          break;
        case 'leave':
          if (cmd.id) void host.leave(cmd.id);
          break;
        case 'crash':
          if (cmd.id) host.crash(cmd.id);
          break;
        case 'exit':
          void host.leaveAll().then(() => host.exit(0));
          break;
        default:
          out({ event: 'error', message: `control: unknown op ${String(cmd.op)}` });
      }
    });
    // The parent is gone (its end of the pipe closed): die with it.
    process.stdin.on('end', () => host.die());
    process.stdin.on('error', () => host.die());
  }

  await host.start(cfg.specs, cfg.seeds);
  if (!cfg.control && host.agents.size === 0) return 1;
  // Keep running: the listeners hold the event loop; main returns only when the process ends.
  await new Promise<void>(() => undefined);
  return 0;
}
