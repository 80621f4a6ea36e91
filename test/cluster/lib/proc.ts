/**
 * Daemon processes of the test cluster: started detached (own process group) with output to a log
 * file, recorded in a pid file ({pid, exe}) so that `cluster:down` - or the next `cluster:up` after a
 * crash - can stop exactly the processes it started and nothing else.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, join } from 'node:path';

export interface PidRecord {
  pid: number;
  exe: string;
  name: string;
}

export function startDaemon(opts: {
  name: string;
  exe: string;
  args: string[];
  pidDir: string;
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}): PidRecord {
  mkdirSync(opts.pidDir, { recursive: true });
  mkdirSync(opts.logDir, { recursive: true });
  const log = openSync(join(opts.logDir, `${opts.name}.log`), 'a');
  const child = spawn(opts.exe, opts.args, {
    detached: true,
    stdio: ['ignore', log, log],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`cannot start ${opts.name} (${opts.exe})`);
  child.unref();
  const rec: PidRecord = { pid: child.pid, exe: opts.exe, name: opts.name };
  writeFileSync(join(opts.pidDir, `${opts.name}.pid`), JSON.stringify(rec));
  return rec;
}

/** True when `pid` is alive and is still the program we recorded (guards against pid reuse). */
export function isOurs(rec: PidRecord): boolean {
  try {
    const cmdline = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8');
    const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false; // zombie
    return cmdline.split('\0').some((a) => a === rec.exe || basename(a) === basename(rec.exe));
  } catch {
    return false;
  }
}

export function readPidFiles(dir: string): Array<PidRecord & { file: string }> {
  if (!existsSync(dir)) return [];
  const out: Array<PidRecord & { file: string }> = [];
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.pid')) continue;
    const file = join(dir, f);
    try {
      out.push({ ...(JSON.parse(readFileSync(file, 'utf8')) as PidRecord), file });
    } catch {
      rmSync(file, { force: true });
    }
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  // Our daemons lead their own process group: signal the group so helpers they started go too.
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, wait up to `graceMs`, then SIGKILL; removes the pid file. Returns whether it was running. */
export async function stopProcess(rec: PidRecord & { file?: string }, graceMs = 10_000): Promise<boolean> {
  const running = isOurs(rec);
  if (running) {
    signal(rec.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isOurs(rec) && Date.now() < deadline) await sleep(100);
    if (isOurs(rec)) {
      signal(rec.pid, 'SIGKILL');
      const d2 = Date.now() + 5000;
      while (isOurs(rec) && Date.now() < d2) await sleep(50);
    }
  }
  if (rec.file) rmSync(rec.file, { force: true });
  return running;
}

export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Listening TCP sockets on the machine whose local port is one of `ports` (from /proc/net/tcp*). */
export function listeningOn(ports: number[]): number[] {
  const found = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue; // 0A = LISTEN
      const port = parseInt(cols[1]!.split(':')[1]!, 16);
      if (ports.includes(port)) found.add(port);
    }
  }
  return [...found];
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}
