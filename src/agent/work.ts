/**
 * The work an agent does: task bodies and workflow step operations. Exported so callers (the
 * runner, the conformance check) compute the expected results themselves and check the answers.
 */
import { createHash } from 'node:crypto';
import type { WorkflowOp, WorkflowStep } from './types.ts';

/**
 * The cpu task: `rounds` rounds of SHA-256 over a 1 KiB buffer seeded by `payload`.
 * The buffer starts as SHA-256(payload) repeated 32 times; round i hashes the whole buffer and
 * writes the 32-byte digest at offset (i * 32) mod 1024. The result is the hex of the last digest
 * (SHA-256(payload) itself for 0 rounds).
 */
export function cpuTaskResult(payload: string, rounds: number): string {
  let digest = createHash('sha256').update(payload, 'utf8').digest();
  const buf = Buffer.allocUnsafe(1024);
  for (let off = 0; off < 1024; off += 32) digest.copy(buf, off);
  for (let i = 0; i < rounds; i++) {
    digest = createHash('sha256').update(buf).digest();
    digest.copy(buf, (i * 32) % 1024);
  }
  return digest.toString('hex');
}

/** The io task's result: the payload, echoed (the work is the wait). */
export function ioTaskResult(payload: string): string {
  return payload;
}

export const WORKFLOW_OPS: readonly WorkflowOp[] = ['upper', 'reverse', 'sha256', 'append'];

/**
 * One workflow step. `upper`: toUpperCase; `reverse`: reverses Unicode code points;
 * `sha256`: hex SHA-256 of the UTF-8 input; `append`: input + arg.
 */
export function applyStep(op: WorkflowOp, input: string, arg?: string): string {
  switch (op) {
    case 'upper':
      return input.toUpperCase();
    case 'reverse':
      return Array.from(input).reverse().join('');
    case 'sha256':
      return createHash('sha256').update(input, 'utf8').digest('hex');
    case 'append':
      return input + (arg ?? '');
  }
}

/** The expected output of a whole workflow (what a caller checks the agent's answer against). */
export function expectedWorkflowOutput(input: string, steps: WorkflowStep[]): string {
  return steps.reduce((acc, s) => applyStep(s.op, acc, s.arg), input);
}
