/**
 * `swarmbench runner --step NAME --params FILE --out FILE [--attempt N] [--file-sd PATH]`
 *
 * Runs one step of a plan and writes its StepResult document to --out. Progress goes to stdout
 * as JSON lines `{"event":"progress","step":..,"detail":..}`; logs go to stderr (JSON).
 * Exit code 0 when a result document was written (even one whose tests fail: judging is the
 * executor's job), 2 on bad arguments, 1 when no document could be written.
 */
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { buildPlan } from '../plan/plan.ts';
import type { Params } from '../plan/params.ts';
import { LocalPlatform } from '../platform/local/index.ts';
import { runStep } from './step.ts';

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        step: { type: 'string' },
        params: { type: 'string' },
        out: { type: 'string' },
        attempt: { type: 'string', default: '1' },
        'file-sd': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`swarmbench runner: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help || !values.step || !values.params || !values.out) {
    process.stderr.write('usage: swarmbench runner --step NAME --params FILE --out FILE [--attempt N] [--file-sd PATH]\n');
    return values.help ? 0 : 2;
  }
  const params = JSON.parse(readFileSync(values.params, 'utf8')) as Params;
  const step = buildPlan(params).find((s) => s.name === values.step);
  if (!step) {
    process.stderr.write(`swarmbench runner: step "${values.step}" is not in the plan\n`);
    return 2;
  }
  const attempt = Number(values.attempt);
  const log = createLogger({ role: 'runner', step: step.name, attempt });
  const platform = new LocalPlatform(values['file-sd'] ? { fileSdPath: values['file-sd'] } : {});
  const ac = new AbortController();
  const stop = () => ac.abort(new Error('interrupted'));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    const result = await runStep(step, params, {
      platform,
      log,
      signal: ac.signal,
      attempt,
      progress: (s, detail) => process.stdout.write(`${JSON.stringify({ event: 'progress', step: s, detail })}\n`),
    });
    const tmp = `${values.out}.tmp`;
    writeFileSync(tmp, JSON.stringify(result));
    renameSync(tmp, values.out);
    return 0;
  } finally {
    await platform.close();
  }
}
