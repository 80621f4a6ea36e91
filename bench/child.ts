/**
 * Child processes of the benchmarks (bench/loadgen.ts, bench/roundtrip.ts): a server that prints
 * one JSON line with a `url` once it listens (the reference agent's `{"event":"listening",...}`,
 * bench/echo-peer.ts's servers), and a client that prints one JSON line with its result and exits.
 * Both run with this process's Node (`process.execPath`, which runs the .ts sources directly).
 * A child still running when this process exits is killed with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Last bytes of a child's stderr kept for an error message. */
const STDERR_KEEP = 4096;

const live = new Set<ChildProcess>();
let hooked = false;
function track(p: ChildProcess): void {
  live.add(p);
  p.once('exit', () => live.delete(p));
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

function tail(buf: string): string {
  const t = buf.trim();
  return t ? `: ${t.slice(-800)}` : '';
}

export interface Server {
  url: string;
  pid: number;
  /** The first JSON line that carried the url. */
  hello: Record<string, unknown>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `args` (after the Node binary) and waits for a stdout JSON line with a string `url`. */
export function startServer(what: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<Server> {
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_KEEP);
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async (graceMs = 3000): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  return new Promise<Server>((resolve, reject) => {
    let done = false;
    const fail = (why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void stop(0);
      reject(new Error(`${what}: ${why}${tail(stderr)}`));
    };
    const timer = setTimeout(() => fail(`no url within ${timeoutMs} ms`), timeoutMs);
    proc.once('error', (e) => fail(e.message));
    proc.once('exit', (code, sig) => fail(`exited (${sig ?? code}) before listening`));
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      if (done) return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        return;
      }
      const o = v as Record<string, unknown>;
      if (typeof o?.url !== 'string') return;
      done = true;
      clearTimeout(timer);
      resolve({ url: o.url, pid: proc.pid!, hello: o, stop });
    });
  });
}

/**
 * Runs `args` (after the Node binary) to its end; resolves with the last JSON object it printed on
 * stdout. A non-zero exit, a signal, no JSON or `timeoutMs` passing rejects.
 */
export function runClient(what: string, args: string[], timeoutMs = 120_000): Promise<Record<string, unknown>> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    stdout = (stdout + d).slice(-65_536);
  });
  proc.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_KEEP);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${e.message}`));
    });
    proc.once('close', (code, sig) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${what}: exited (${sig ?? code})${tail(stderr)}`));
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        const v = JSON.parse(last) as unknown;
        if (typeof v === 'object' && v !== null) return resolve(v as Record<string, unknown>);
      } catch {
        // fall through
      }
      reject(new Error(`${what}: no JSON result on stdout${tail(stderr)}`));
    });
  });
}
