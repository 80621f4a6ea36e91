/**
 * `swarmbench conformance --url URL [--peer URL] [--json] [--timeout-ms MS] [--dispatch-tasks N] [--token-file PATH]`:
 * checks an agent against the agent contract v1 and prints a table. Exit 0 when every check
 * passes, 1 when one fails, 2 on bad usage (an unreadable token file or a malformed token
 * included). The agent's bearer token: `--token-file PATH` (read, never created), else
 * SWARMBENCH_AGENT_TOKEN; with neither, a random one, so an agent that requires a token refuses
 * every call and the checks say to give it (src/agent/auth.ts). The token is never printed.
 */
import { agentToken, readTokenFile } from './auth.ts';
import { parseArgs } from './cli.ts';
import { runConformance, type CheckResult } from './conformance.ts';
import { errorMessage } from '../errors.ts';

const USAGE =
  'usage: swarmbench conformance --url URL [--peer URL] [--json] [--timeout-ms MS] [--dispatch-tasks N] [--token-file PATH]\n' +
  '  --token-file PATH   the agent\'s bearer token (default: $SWARMBENCH_AGENT_TOKEN)\n';

export function formatTable(results: CheckResult[]): string {
  const w = Math.max(5, ...results.map((r) => r.name.length));
  const lines = results.map((r) => `${r.ok ? 'PASS' : 'FAIL'}  ${r.name.padEnd(w)}  ${r.detail}`);
  const failed = results.filter((r) => !r.ok).length;
  lines.push('', `${results.length - failed}/${results.length} checks passed${failed ? `, ${failed} failed` : ''}`);
  return `${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  let args: Map<string, string>;
  try {
    args = parseArgs(
      argv.map((a) => (a === '--json' ? '--json=true' : a)),
      new Set(['url', 'peer', 'json', 'timeout-ms', 'dispatch-tasks', 'token-file', 'help']),
    );
  } catch (err) {
    process.stderr.write(`swarmbench conformance: ${errorMessage(err)}\n${USAGE}`);
    return 2;
  }
  if (args.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const url = args.get('url');
  if (!url) {
    process.stderr.write(`swarmbench conformance: --url is required\n${USAGE}`);
    return 2;
  }
  const timeout = args.get('timeout-ms');
  const tasks = args.get('dispatch-tasks');
  for (const [flag, v, min] of [['--timeout-ms', timeout, 1], ['--dispatch-tasks', tasks, 0]] as const) {
    if (v !== undefined && (!/^\d+$/.test(v) || Number(v) < min || Number(v) > 100_000)) {
      process.stderr.write(`swarmbench conformance: ${flag} must be an integer ${min}..100000, got "${v}"\n${USAGE}`);
      return 2;
    }
  }
  let token: string;
  try {
    const file = args.get('token-file');
    token = file !== undefined ? readTokenFile(file, '--token-file') : agentToken();
  } catch (err) {
    process.stderr.write(`swarmbench conformance: ${errorMessage(err)}\n`);
    return 2;
  }
  const results = await runConformance(url, {
    token,
    ...(args.get('peer') ? { peer: args.get('peer')! } : {}),
    ...(timeout ? { timeoutMs: Number(timeout) } : {}),
    ...(tasks !== undefined ? { dispatchTasks: Number(tasks) } : {}),
  });
  if (args.get('json') === 'true') process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else process.stdout.write(formatTable(results));
  return results.every((r) => r.ok) ? 0 : 1;
}
