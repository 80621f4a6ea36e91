/**
 * The step-deadline tables of docs/operator.md ("Step deadlines") hold what `stepDeadline`
 * (src/plan/deadlines.ts) computes for quick and full mode with the default targets: every part's
 * name and seconds, and each category's totals. A change of a bound that is not carried into the
 * docs fails here, with the figure to write.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CATEGORIES, type BenchmarkRunSpec } from '../../src/api/schema.ts';
import { stepDeadline } from '../../src/plan/deadlines.ts';
import { resolveParams } from '../../src/plan/params.ts';

const doc = readFileSync(new URL('../../docs/operator.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('## Step deadlines'), doc.indexOf('\n## ', doc.indexOf('## Step deadlines') + 5));
const seconds = (ms: number): number => Math.round(ms / 1000);

describe('docs/operator.md step-deadline tables', () => {
  it('has a table for each category', () => {
    for (const c of CATEGORIES) expect(section, c).toContain(`**${c}**: quick `);
  });

  for (const c of CATEGORIES) {
    it(`${c}: parts and totals as stepDeadline computes them`, () => {
      const q = stepDeadline(c, resolveParams({ mode: 'quick' } as BenchmarkRunSpec));
      const f = stepDeadline(c, resolveParams({ mode: 'full' } as BenchmarkRunSpec));
      const head = new RegExp(`\\*\\*${c}\\*\\*: quick (\\d+) s, full (\\d+) s`).exec(section);
      expect(head, `the heading line of ${c}`).not.toBeNull();
      expect([Number(head![1]), Number(head![2])], `${c} totals (quick, full)`).toEqual([seconds(q.totalMs), seconds(f.totalMs)]);
      const start = section.indexOf(head![0]);
      const end = section.indexOf('\n\n', section.indexOf('| part |', start));
      const rows = section.slice(start, end).split('\n').filter((l) => /^\| (?!part |---)/.test(l));
      const got = rows.map((r) => {
        const cells = r.split('|').map((x) => x.trim());
        return [cells[1], Number(cells[2]!.replace(/ s$/, '')), Number(cells[3]!.replace(/ s$/, ''))];
      });
      const want = f.parts.map((p, i) => [p.name, seconds(q.parts[i]?.ms ?? Number.NaN), seconds(p.ms)]);
      expect(got, `${c}: rows [part, quick s, full s]`).toEqual(want);
    });
  }
});
