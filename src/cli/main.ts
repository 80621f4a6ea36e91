#!/usr/bin/env node
/**
 * `swarmbench <command>`: one entry point, one image, every role. The same entry is the kubectl
 * plugin (`kubectl swarmbench <command>`, bin/kubectl-swarmbench.js).
 * Each command lives in its own module and is loaded on demand, so `swarmbench agent` does not
 * pay for loading TensorFlow.js or the Kubernetes client.
 */
import { basename } from 'node:path';
import { COMMANDS } from './commands.ts';
import { errorMessage } from '../errors.ts';

/** `kubectl swarmbench` when started as the kubectl plugin, else `swarmbench`. */
const prog = (): string => (process.argv[1] && basename(process.argv[1]).startsWith('kubectl-') ? 'kubectl swarmbench' : 'swarmbench');

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    const { VERSION } = await import('../version.ts');
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (name === '__complete') {
    // The completer kubectl calls for plugins (kubectl_complete-swarmbench), and Cobra-style shells.
    const { main: completion } = await import('./completion.ts');
    return completion(['__complete', ...rest]);
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    process.stderr.write(`${prog()}: unknown command "${name.slice(0, 60)}"\n\n${usage()}`);
    return 2;
  }
  const mod = await cmd.load();
  return mod.main(rest);
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const line = ([k, c]: [string, { summary: string }]) => `  ${k.padEnd(width)}  ${c.summary}`;
  const entries = Object.entries(COMMANDS);
  const clusterCmds = entries.filter(([k, c]) => c.cluster || k === 'report').map(line);
  const local = entries.filter(([k, c]) => !c.cluster && k !== 'report').map(line);
  return `usage: ${prog()} <command> [options]

against a cluster (the current kube context, or --kubeconfig, --context, -n):
${clusterCmds.join('\n')}

on this machine, and the roles of the image:
${local.join('\n')}

exit codes: 0 passed, 1 verdict failed, 2 invalid input, 3 the run could not be carried out
(no cluster, no CRD, no permission, a step without a result, a timeout), 4 a regression against
the baseline failed the gate. Run "${prog()} <command> --help" for a command's options; docs/cli.md.
`;
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${prog()}: ${errorMessage(err)}\n`);
      process.exitCode = 3;
    },
  );
}
