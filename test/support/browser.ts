/**
 * A real headless Chromium for the browser tests (test/e2e/ui-browser.test.ts): Debian's
 * `chromium` package (or the one SWARMBENCH_CHROMIUM names), driven by playwright-core, which
 * downloads nothing. None found: the tests say so and are skipped. And a `swarmbench` child
 * process that serves something, with the URL it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The Chromium to drive, or undefined when there is none. */
export function chromiumExecutable(): string | undefined {
  const env = process.env.SWARMBENCH_CHROMIUM;
  if (env) return existsSync(env) ? env : undefined;
  return CANDIDATES.find((c) => existsSync(c));
}

export interface Served {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code once the process ended. */
  exited: Promise<number | null>;
}

/** Starts `swarmbench ARGS` and waits until it prints a URL on the stream given (at most `timeoutMs`). */
export async function serve(args: string[], stream: 'stdout' | 'stderr', timeoutMs = 60_000): Promise<Served> {
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`swarmbench ${args.join(' ')} printed no URL in ${timeoutMs} ms:\n${out}\n${err}`)), timeoutMs);
    const look = () => {
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(stream === 'stdout' ? out : err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    (stream === 'stdout' ? child.stdout! : child.stderr!).on('data', look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`swarmbench ${args.join(' ')} exited (${code}) before printing a URL:\n${out}\n${err}`));
    });
  });
  return { child, url, stdout: () => out, stderr: () => err, exited };
}

/** A plain GET of 127.0.0.1:`port` with the Host header as given (what a browser would not send), and its body. */
export function hostGet(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
