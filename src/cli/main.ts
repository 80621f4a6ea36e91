#!/usr/bin/env node
/**
 * `swarmbench <command>`: one entry point, one image, every role.
 * Each command lives in its own module and is loaded on demand, so `swarmbench agent` does not
 * pay for loading TensorFlow.js or the Kubernetes client.
 */
import { COMMANDS } from './commands.ts';
import { errorMessage } from '../errors.ts';

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
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`swarmbench: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const mod = await cmd.load();
  return mod.main(rest);
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`);
  return `usage: swarmbench <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "swarmbench <command> --help" for a command's options.\n`;
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`swarmbench: ${errorMessage(err)}\n`);
      process.exitCode = 3;
    },
  );
}
