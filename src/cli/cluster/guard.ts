/**
 * The wrapper every cluster command runs in: a CliError is printed as `swarmbench <command>:
 * <message>` (or `kubectl swarmbench …`) and becomes its exit code; anything else is a bug or an
 * error nobody foresaw, printed the same way, exit 3.
 */
import { errorMessage } from '../../errors.ts';
import { prog } from './args.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';

export type CommandMain = (argv: string[]) => Promise<number>;

export function guarded(command: string, main: CommandMain, stderr: { write(s: string): unknown } = process.stderr): { main: CommandMain } {
  return {
    async main(argv: string[]): Promise<number> {
      try {
        return await main(argv);
      } catch (e) {
        const code = e instanceof CliError ? e.code : EXIT.infrastructure;
        stderr.write(`${prog()} ${command}: ${errorMessage(e)}\n`);
        return code;
      }
    },
  };
}
