/**
 * Starts a real Prometheus (the Debian `prometheus` binary, `apt-get install prometheus`) for
 * end-to-end tests: its own config, data directory and loopback port; agent targets discovered
 * through `file_sd_configs` from a JSON file the local platform rewrites; Prometheus also scrapes
 * itself (job `prometheus`) so its ingestion counters can be queried. The agents require the
 * run's bearer token (src/agent/auth.ts): Prometheus scrapes them with `authorization:
 * {type: Bearer, credentials_file}`, a 0600 file in its data directory holding the token
 * (`StartOptions.token`, default this process's `agentToken()`, the one its in-process platforms
 * give their agents).
 *
 * `startPrometheus()` resolves once `/-/ready` answers 200; `stop()` sends SIGTERM (SIGKILL after
 * a deadline) and removes the data directory. A process-exit hook kills any instance still
 * running, so a failed test never leaves one behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentToken } from '../../src/agent/auth.ts';

export interface PrometheusInstance {
  url: string;
  port: number;
  pid: number;
  dataDir: string;
  configPath: string;
  /** The job name the agent targets are scraped under. */
  agentJob: string;
  /** Last lines Prometheus wrote on stderr (for test failure messages). */
  logTail(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** The file_sd JSON file (created empty if missing: Prometheus watches it). */
  fileSdPath: string;
  /** e.g. '1s'. */
  scrapeInterval?: string;
  scrapeTimeout?: string;
  binary?: string;
  readyTimeoutMs?: number;
  /** The agents' bearer token; default `agentToken()`. */
  token?: string;
}

const live = new Set<ChildProcess>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const p of live) {
      try {
        p.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/**
 * The Prometheus binary, or null (the Prometheus tests are then reported skipped). With
 * SWARMBENCH_REQUIRE_PROMETHEUS=1 (set by .ci/run, which installs it) a missing binary is an
 * error instead, so CI can never pass by skipping them.
 */
export function prometheusBinary(): string | null {
  const found = findPrometheus();
  if (!found && process.env.SWARMBENCH_REQUIRE_PROMETHEUS === '1') {
    throw new Error('SWARMBENCH_REQUIRE_PROMETHEUS=1 but no prometheus binary was found (apt-get install prometheus)');
  }
  return found;
}

function findPrometheus(): string | null {
  for (const b of [process.env.PROMETHEUS_BIN, '/usr/bin/prometheus', '/usr/local/bin/prometheus']) {
    if (b && existsSync(b)) return b;
  }
  const r = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export async function startPrometheus(opts: StartOptions): Promise<PrometheusInstance> {
  const bin = opts.binary ?? prometheusBinary();
  if (!bin) throw new Error('prometheus binary not found (apt-get install -y prometheus, or set PROMETHEUS_BIN)');
  hookExit();
  if (!existsSync(opts.fileSdPath)) writeFileSync(opts.fileSdPath, '[]\n');
  const interval = opts.scrapeInterval ?? '1s';
  const timeout = opts.scrapeTimeout ?? interval;
  const agentJob = 'swarmbench-agents';
  let lastErr: unknown;
  // The free port can be taken between probing and binding; try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'swarmbench-prom-'));
    const configPath = join(dataDir, 'prometheus.yml');
    const tokenPath = join(dataDir, 'agent-token');
    writeFileSync(tokenPath, `${opts.token ?? agentToken()}\n`, { mode: 0o600 });
    writeFileSync(
      configPath,
      [
        'global:',
        `  scrape_interval: ${interval}`,
        `  scrape_timeout: ${timeout}`,
        `  evaluation_interval: ${interval}`,
        'scrape_configs:',
        `  - job_name: ${agentJob}`,
        '    file_sd_configs:',
        `      - files: [${JSON.stringify(opts.fileSdPath)}]`,
        '        refresh_interval: 1s',
        '    authorization:',
        '      type: Bearer',
        `      credentials_file: ${JSON.stringify(tokenPath)}`,
        '  - job_name: prometheus',
        '    static_configs:',
        `      - targets: ["127.0.0.1:${port}"]`,
        '',
      ].join('\n'),
    );
    const child = spawn(
      bin,
      [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${join(dataDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    live.add(child);
    let tail = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      tail = (tail + d).slice(-4000);
    });
    child.once('exit', () => live.delete(child));
    const url = `http://127.0.0.1:${port}`;
    const deadline = performance.now() + (opts.readyTimeoutMs ?? 30_000);
    let ready = false;
    while (performance.now() < deadline && child.exitCode === null && child.signalCode === null) {
      try {
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) {
          ready = true;
          break;
        }
      } catch {
        /* not listening yet */
      }
      await waitExit(child, 100);
    }
    if (ready) {
      const stop = async (): Promise<void> => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          if (!(await waitExit(child, 10_000))) {
            child.kill('SIGKILL');
            await waitExit(child, 5000);
          }
        }
        live.delete(child);
        rmSync(dataDir, { recursive: true, force: true });
      };
      return { url, port, pid: child.pid!, dataDir, configPath, agentJob, logTail: () => tail, stop };
    }
    child.kill('SIGKILL');
    await waitExit(child, 5000);
    live.delete(child);
    rmSync(dataDir, { recursive: true, force: true });
    lastErr = new Error(`prometheus on port ${port} not ready: ${tail.slice(-1000)}`);
  }
  throw lastErr;
}
