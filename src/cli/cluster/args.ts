/**
 * Argument parsing shared by the commands that talk to a cluster: the connection options every
 * one of them takes (`--kubeconfig`, `--context`, `-n/--namespace`, `--request-timeout`), durations
 * (`--timeout 30m`), run names, and the program's name as the user typed it (`swarmbench` or, as
 * a kubectl plugin, `kubectl swarmbench`). Bad input is a CliError with exit code 2 that names the
 * option.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './errors.ts';
import { prog } from './prog.ts';
import { EXIT } from './exit.ts';

export { prog };

export const CONNECTION_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  'request-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export const CONNECTION_HELP = `connection (as kubectl):
      --kubeconfig FILE      the kubeconfig (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)
      --context NAME         the kubeconfig context (default: its current context)
  -n, --namespace NS         the namespace (default: the context's, else "default")
      --request-timeout D    give up on one API request after D (default 30s)
`;

export interface ConnectionArgs {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  requestTimeoutMs: number;
}

/** The longest wait a duration option takes: 48 h. */
export const MAX_DURATION_MS = 48 * 3_600_000;

/**
 * A duration: `30m`, `1h30m`, `90s`, `250ms`, or a bare number of seconds. `allowZero` for
 * options where 0 turns something off.
 */
export function parseDurationOption(name: string, text: string, allowZero = false): number {
  const t = text.trim();
  let ms: number | undefined;
  if (/^\d+$/.test(t)) ms = Number(t) * 1000;
  else if (/^(\d+(ms|s|m|h))+$/.test(t)) {
    ms = 0;
    for (const m of t.matchAll(/(\d+)(ms|s|m|h)/g)) {
      const n = Number(m[1]);
      ms += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    }
  }
  if (ms === undefined) throw new CliError(`--${name}: "${text.slice(0, 40)}" is not a duration; write it like 30s, 10m or 1h30m`, EXIT.invalid);
  if (ms === 0 && !allowZero) throw new CliError(`--${name}: must be longer than zero`, EXIT.invalid);
  if (ms > MAX_DURATION_MS) throw new CliError(`--${name}: at most 48h`, EXIT.invalid);
  return ms;
}

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A run name given on the command line (the argument RUN, or an option's value): a DNS-1123 label. */
export function runNameArg(name: string | undefined, option?: string): string {
  const pre = option ? `${option}: ` : '';
  if (!name) throw new CliError(`${pre}give the run's name (RUN); list the runs with ${prog()} get`, EXIT.invalid);
  if (name.length > 63 || !NAME_RE.test(name)) {
    throw new CliError(`${pre}"${name.slice(0, 70)}" is not a run name (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)`, EXIT.invalid);
  }
  return name;
}

/** The values parseArgs gives for a set of options. */
export type Values<O> = {
  [K in keyof O]: O[K] extends { type: 'boolean' } ? boolean | undefined : O[K] extends { multiple: true } ? string[] | undefined : string | undefined;
};

export interface Parsed<O> {
  values: Values<O & typeof CONNECTION_OPTIONS>;
  positionals: string[];
  connection: ConnectionArgs;
}

/**
 * Parses a command's arguments: its own options plus the connection options. Unknown options and
 * bad values are CliErrors (exit 2) that name them.
 */
export function parseCommand<O extends NonNullable<ParseArgsConfig['options']>>(command: string, argv: string[], options: O, maxPositionals: number): Parsed<O> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...CONNECTION_OPTIONS, ...options }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new CliError(`${(err as Error).message.split('\n')[0]}; see ${prog()} ${command} --help`, EXIT.invalid);
  }
  const v = parsed.values as Record<string, unknown>;
  if (!v.help && parsed.positionals.length > maxPositionals) {
    throw new CliError(`unexpected argument "${parsed.positionals[maxPositionals]!.slice(0, 80)}"; see ${prog()} ${command} --help`, EXIT.invalid);
  }
  const connection: ConnectionArgs = {
    requestTimeoutMs: typeof v['request-timeout'] === 'string' ? parseDurationOption('request-timeout', v['request-timeout']) : 30_000,
    ...(typeof v.kubeconfig === 'string' ? { kubeconfig: v.kubeconfig } : {}),
    ...(typeof v.context === 'string' ? { context: v.context } : {}),
    ...(typeof v.namespace === 'string' ? { namespace: namespaceArg(v.namespace) } : {}),
  };
  return { values: parsed.values as never, positionals: parsed.positionals, connection };
}

function namespaceArg(ns: string): string {
  if (ns.length > 63 || !NAME_RE.test(ns)) throw new CliError(`--namespace: "${ns.slice(0, 70)}" is not a namespace name`, EXIT.invalid);
  return ns;
}
