/**
 * `swarmbench ui [DIR|FILE…] [--host HOST] [--port N]`
 *
 * Serves the results UI (src/ui/server.ts, docs/ui.md) over the result documents in the folders
 * given (each DIR's results.json and those of its subfolders, as `swarmbench history` reads them;
 * default: the current folder), until interrupted. The folders are read again every few seconds
 * while a page is open, so a run that finishes into one appears. Read-only; bound to 127.0.0.1
 * unless --host says otherwise. `swarmbench run --ui` serves the same UI over a run as it runs.
 *
 * Exit codes: 0 stopped by SIGINT or SIGTERM; 2 invalid input (an option, a path that does not
 * exist, too many files, the address cannot be listened on).
 */
import { parseArgs } from 'node:util';
import { errorMessage } from '../errors.ts';
import { collectFiles } from '../report/files.ts';
import { LocalSource } from '../ui/local.ts';
import { DEFAULT_HOST, DEFAULT_PORT, startUiServer, type UiServer } from '../ui/server.ts';

export const OPTIONS = {
  host: { type: 'string', default: DEFAULT_HOST },
  port: { type: 'string', short: 'p', default: String(DEFAULT_PORT) },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const USAGE = `usage: swarmbench ui [DIR|FILE...] [--host HOST] [--port N]

Serves the results UI in the browser over the result documents in each DIR (DIR/results.json and
DIR/*/results.json; default: the current folder) or the FILEs given: the runs table, each run's
tests, charts, recommendations, comparison and exports, the trends. Read-only; runs until Ctrl-C.

      --host HOST    the address to listen on (default ${DEFAULT_HOST}: this machine only)
  -p, --port N       the port (default ${DEFAULT_PORT}; 0 picks a free one)

Anyone who can reach the address can read every result shown: the UI has no login of its own
(docs/ui.md). exit codes: 0 stopped; 2 invalid input.
`;

function fail(message: string): number {
  process.stderr.write(`swarmbench ui: ${message}\n`);
  return 2;
}

/** A --port value: an integer in [0, 65535], or the problem. */
export function parsePort(text: string, flag: string): number | Error {
  const v = Number(text);
  return /^\s*\d+\s*$/.test(text) && v >= 0 && v <= 65535 ? v : new Error(`${flag}: ${JSON.stringify(text.slice(0, 20))} is not a port (0 to 65535)`);
}

/** The note for a --host that is not a loopback address. */
export function exposedNote(host: string): string | undefined {
  return /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/.test(host) ? undefined : `note: listening on ${host}: anyone who can reach it can read these results; the UI has no login of its own (put it behind authentication: docs/ui.md)`;
}

/** Starts the server or returns why it could not (the address in use, a bad host). */
export async function listen(start: () => Promise<UiServer>, host: string, port: number): Promise<UiServer | Error> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return new Error(`cannot listen on ${host}:${port}: ${code === 'EADDRINUSE' ? 'the port is in use (give another, or --port 0)' : (code ?? errorMessage(err))}`);
  }
}

/** Resolves on SIGINT or SIGTERM. */
export function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

export async function main(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true }));
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const port = parsePort(values.port, '--port');
  if (port instanceof Error) return fail(port.message);
  if (!values.host.trim()) return fail('--host: give an address');
  const paths = positionals.length ? positionals : ['.'];
  const found = collectFiles(paths);
  if (found instanceof Error) return fail(found.message);

  const source = new LocalSource({ paths });
  const server = await listen(() => startUiServer({ source, host: values.host, port, title: `swarmbench ui ${paths.join(' ')}`.slice(0, 200) }), values.host, port);
  if (server instanceof Error) {
    source.close();
    return fail(server.message);
  }
  const note = exposedNote(values.host);
  if (note) process.stderr.write(`swarmbench ui: ${note}\n`);
  const { runs, problems } = await source.list();
  for (const p of problems) process.stderr.write(`swarmbench ui: ${p}\n`);
  process.stdout.write(`swarmbench ui: ${runs.length} run${runs.length === 1 ? '' : 's'} from ${paths.join(', ').slice(0, 200)}, read-only, until Ctrl-C: ${server.url}\n`);
  await untilInterrupted();
  await server.close();
  source.close();
  return 0;
}
