/**
 * Fault injection of one agent (`PUT /v1/faults`). Deterministic so a test that injects a 10 %
 * error rate sees exactly 10 % errors: task n (1-based, counted since the faults were set) fails
 * when floor(n * rate) > floor((n - 1) * rate), i.e. the failures are spread evenly (every k-th
 * task for rate 1/k).
 * Every field is bounded (400 naming it): latencyMs 0..60000, errorRate 0..1, loseAccepted
 * 0..MAX_LOSE_ACCEPTED (src/agent/limits.ts), a finite healthScore.
 */
import { MAX_LOSE_ACCEPTED } from './limits.ts';
import type { Faults } from './types.ts';

export function errorAt(n: number, rate: number): boolean {
  if (!(rate > 0)) return false;
  if (rate >= 1) return true;
  return Math.floor(n * rate) > Math.floor((n - 1) * rate);
}

export interface ParsedFaults {
  latencyMs: number;
  errorRate: number;
  breach: { healthScore?: number } | null;
  loseAccepted: number;
}

/** Validate a faults body; returns an error message or the parsed faults. */
export function parseFaults(body: unknown): ParsedFaults | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body must be an object';
  const b = body as Record<string, unknown>;
  const known = new Set(['latencyMs', 'errorRate', 'breach', 'loseAccepted']);
  for (const k of Object.keys(b)) if (!known.has(k)) return `unknown fault "${k}"`;
  const out: ParsedFaults = { latencyMs: 0, errorRate: 0, breach: null, loseAccepted: 0 };
  if (b.latencyMs !== undefined) {
    if (typeof b.latencyMs !== 'number' || !(b.latencyMs >= 0) || b.latencyMs > 60_000) return 'latencyMs must be 0..60000';
    out.latencyMs = b.latencyMs;
  }
  if (b.errorRate !== undefined) {
    if (typeof b.errorRate !== 'number' || !(b.errorRate >= 0) || b.errorRate > 1) return 'errorRate must be 0..1';
    out.errorRate = b.errorRate;
  }
  if (b.loseAccepted !== undefined) {
    if (!Number.isInteger(b.loseAccepted) || (b.loseAccepted as number) < 0 || (b.loseAccepted as number) > MAX_LOSE_ACCEPTED) {
      return `loseAccepted must be an integer 0..${MAX_LOSE_ACCEPTED}`;
    }
    out.loseAccepted = b.loseAccepted as number;
  }
  if (b.breach !== undefined && b.breach !== null) {
    if (typeof b.breach !== 'object' || Array.isArray(b.breach)) return 'breach must be an object';
    const br = b.breach as Record<string, unknown>;
    for (const k of Object.keys(br)) if (k !== 'healthScore') return `unknown breach gauge "${k}" (known: healthScore)`;
    if (br.healthScore !== undefined && (typeof br.healthScore !== 'number' || !Number.isFinite(br.healthScore))) {
      return 'breach.healthScore must be a number';
    }
    out.breach = br.healthScore === undefined ? {} : { healthScore: br.healthScore as number };
  }
  return out;
}

export class FaultState {
  latencyMs = 0;
  errorRate = 0;
  breach: { healthScore?: number } | null = null;
  /** Dispatched tasks still to drop. */
  loseAccepted = 0;
  private taskCount = 0;

  set(f: ParsedFaults): void {
    this.latencyMs = f.latencyMs;
    this.errorRate = f.errorRate;
    this.breach = f.breach;
    this.loseAccepted = f.loseAccepted;
    this.taskCount = 0;
  }

  clear(): void {
    this.set({ latencyMs: 0, errorRate: 0, breach: null, loseAccepted: 0 });
  }

  /** Counts a task and says whether the error fault hits it. */
  nextTaskErrors(): boolean {
    if (this.errorRate <= 0) return false;
    this.taskCount++;
    return errorAt(this.taskCount, this.errorRate);
  }

  /** Consumes one planted loss; true when this dispatched task must be dropped. */
  takeLoss(): boolean {
    if (this.loseAccepted <= 0) return false;
    this.loseAccepted--;
    return true;
  }

  toJSON(): Faults {
    const out: Faults = {};
    if (this.latencyMs > 0) out.latencyMs = this.latencyMs;
    if (this.errorRate > 0) out.errorRate = this.errorRate;
    if (this.breach) out.breach = this.breach;
    if (this.loseAccepted > 0) out.loseAccepted = this.loseAccepted;
    return out;
  }
}
