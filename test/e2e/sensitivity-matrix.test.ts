/**
 * The committed sensitivity matrix (docs/sensitivity.md, from a full `swarmbench calibrate` of the
 * quick manifest) cannot rot: this test runs a smaller real calibration on this machine (the
 * categories and profiles below, chosen to be quick and to hold their results by a wide margin)
 * and checks that every cell it ran has the result the committed matrix shows, read from the
 * page's machine-readable block. A missing page, a page without the block, or a block without
 * one of these runs is a failure that says so, never a skip.
 *
 * The cells it re-derives (about 1.5 min here), each holding its result by a wide margin in every
 * calibration so far: integration and monitoring on the clean agent (5.1 about 7 ms against
 * < 5000 ms, 5.2 about 0.2 s against < 10 s, 5.3 about 10 MB against < 50 MB; 3.1 a few ms against
 * < 50 ms, 3.3 hundreds of updates/s against >= 1, 3.5 thousands of samples/s against >= 1000),
 * `memory-leak` on 5.3 (about 150 MB) and `slow-metrics` on 3.2 (about 300 ms against < 100 ms) and
 * 3.5 (about 350 samples/s). Under a profile only the tests it is meant to break (`breaks`) are
 * compared: a profile's side effects on other tests are reported by calibrate, not promised.
 * Categories whose cells do not yet hold that firmly stay out: distributed (1.2's p50 of 5 warm
 * batches moves with the host's load), gpu (2.5's trend fit may extend and end inconclusive on a
 * busy host), scalability and stress (minutes per run). Add one here once every cell of its runs
 * holds by a wide margin in several calibrations.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defectProfile } from '../../src/agent/defects.ts';
import { parseSensitivityBlock, type SensitivityBlock } from '../../src/cli/calibrate/matrix.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';

const CATEGORIES = ['integration', 'monitoring'];
const PROFILES = ['memory-leak', 'slow-metrics'];
/** Cells compared: 3 + 5 tests on the clean agent, 5.3 under memory-leak, 3.2 and 3.5 under slow-metrics. */
const CELLS = 11;
const PAGE = join(REPO_ROOT, 'docs/sensitivity.md');

const work = mkdtempSync(join(tmpdir(), 'swarmbench-sensitivity-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function committed(): SensitivityBlock {
  if (!existsSync(PAGE)) {
    throw new Error(
      'docs/sensitivity.md does not exist: generate it with "swarmbench calibrate -f examples/benchmarkrun-quick.yaml --out DIR" and copy DIR/sensitivity.md there (docs/cli.md, "calibrate")',
    );
  }
  try {
    return parseSensitivityBlock(readFileSync(PAGE, 'utf8'));
  } catch (err) {
    throw new Error(`docs/sensitivity.md: ${(err as Error).message}; regenerate it with swarmbench calibrate`);
  }
}

describe('docs/sensitivity.md', () => {
  it('is a calibration page with the runs this test re-derives', () => {
    const b = committed();
    for (const c of ['clean', ...PROFILES]) expect(b.columns, `docs/sensitivity.md has no "${c}" column: regenerate it with every profile`).toContain(c);
    for (const c of CATEGORIES) expect(b.categories, `docs/sensitivity.md did not calibrate ${c}`).toContain(c);
  });

  it('a fresh, smaller calibration on this machine gives every cell it runs the committed result', () => {
    const b = committed();
    const out = join(work, 'cal');
    const r = spawnSync(
      process.execPath,
      [CLI_ENTRY, 'calibrate', '-f', join(REPO_ROOT, 'examples/benchmarkrun-quick.yaml'), '--categories', CATEGORIES.join(','), '--profiles', PROFILES.join(','), '--quiet', '--out', out],
      { cwd: REPO_ROOT, encoding: 'utf8', timeout: 290_000 },
    );
    expect(r.status === 0 || r.status === 1, `calibrate exited ${r.status}: ${r.stderr}`).toBe(true);
    const fresh = parseSensitivityBlock(readFileSync(join(out, 'sensitivity.md'), 'utf8'));
    // Each profile ran at the value the committed page ran it at.
    for (const c of fresh.columns) expect(fresh.defects[c], `${c}: the committed page ran it as ${b.defects[c]}`).toBe(b.defects[c]);
    const differences: string[] = [];
    let compared = 0;
    for (const [id, row] of Object.entries(fresh.cells)) {
      for (const [col, result] of Object.entries(row)) {
        if (result === 'not run') continue;
        // Under a profile, only the tests it is meant to break.
        if (col !== 'clean' && !(defectProfile(col)?.breaks ?? []).includes(id)) continue;
        const was = b.cells[id]?.[col];
        if (was === undefined || was === 'not run') {
          differences.push(`${id} under ${col}: ${result} here, not run in docs/sensitivity.md`);
          continue;
        }
        compared++;
        if (was !== result) differences.push(`${id} under ${col}: ${result} here, ${was} in docs/sensitivity.md`);
      }
    }
    expect(differences, `the fresh calibration (${join(out, 'sensitivity.md')}) differs from the committed one`).toEqual([]);
    expect(compared).toBe(CELLS);
  }, 300_000);
});
