/**
 * The runner process SIGTERMed mid-step (a deleted pod, a cancelled run) writes its partial
 * result before closing its pools, within a 30 s grace period (runner/cli.ts, runner/step.ts):
 * the tests it finished, and an `error` saying it was interrupted. Local platform, real agents.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { StepResult } from '../../src/api/schema.ts';
import { CLI_ENTRY } from '../../src/paths.ts';
import { resolveParams } from '../../src/plan/params.ts';

const dir = mkdtempSync(join(tmpdir(), 'swarmbench-runner-signal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runner SIGTERMed mid-step', () => {
  it('writes the measurements finished so far and the interruption, within the grace period', async () => {
    const params = resolveParams({ mode: 'quick', trials: 1, agents: { poolSize: 3 } }, ['distributed']);
    const paramsFile = join(dir, 'params.json');
    const out = join(dir, 'out.json');
    writeFileSync(paramsFile, JSON.stringify(params));
    const child = spawn(process.execPath, [CLI_ENTRY, 'runner', '--step', 'distributed', '--params', paramsFile, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr: string[] = [];
    createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    // 1.4 starts once 1.1 and 1.3 are finished: the signal goes in the middle of 1.4.
    let signalledAt = 0;
    let agentPids: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`1.4 never started: ${stderr.slice(-5).join(' | ')}`)), 90_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        const ev = JSON.parse(line) as { step?: string; detail?: string };
        if (signalledAt === 0 && ev.step?.startsWith('1.4') && ev.detail?.startsWith('write 3/')) {
          clearTimeout(timer);
          agentPids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
          signalledAt = Date.now();
          child.kill('SIGTERM');
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`the runner exited before 1.4: ${stderr.slice(-5).join(' | ')}`)));
    });
    const [code, signal] = await exited;
    const tookMs = Date.now() - signalledAt;
    expect(signal, stderr.slice(-5).join('\n')).toBeNull();
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(30_000);
    expect(existsSync(out)).toBe(true);
    const result = StepResult.parse(JSON.parse(readFileSync(out, 'utf8')));
    expect(result.measurements.map((m) => m.id)).toEqual(['1.1', '1.3']);
    for (const m of result.measurements) expect(m.value, m.id).toBeGreaterThan(0);
    // The pools were closed (after the write): the agent host processes it had are gone, and
    // the abandoned category started none behind the close.
    expect(agentPids.length).toBeGreaterThan(0);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(agentPids.filter(alive)).toEqual([]);
    expect(result.error).toBe('step distributed was interrupted (received SIGTERM): 2 of 6 tests finished (1.1, 1.3) before it');
  });
});
