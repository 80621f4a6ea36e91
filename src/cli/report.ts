/**
 * `swarmbench report RESULTS.json [--baseline OLD.json ...] [--out DIR] [--format F] [--fail-on-regression]
 *  [--alpha A] [--min-effect PCT] [--min-samples N] [--force-compare] [--rules]`
 *
 * Renders the report of a result document from the file alone: without options it prints the
 * terminal report that `swarmbench run` printed for that document. With `--baseline` it compares
 * the run with an earlier result document (Mann-Whitney U, Hodges–Lehmann shift and confidence
 * interval; see src/report/baseline.ts) and reports Improved / Regressed / NoChange /
 * InsufficientSamples per test; a baseline not measured like the run (their fingerprints differ
 * in something that matters, src/report/fingerprint.ts) is refused unless `--force-compare`.
 * `--out DIR` writes every export (results.json, summary.csv, junit.xml, report.md, report.txt);
 * `--format` prints one of them instead of the terminal report.
 *
 * Exit codes: 0 the verdict passed; 1 it failed (a regression fails it with --fail-on-regression
 * or when the run's spec asked for it); 2 invalid input (a file that cannot be read, is over
 * 64 MiB, or is not a valid result document; a baseline not measured alike without
 * --force-compare).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_BASELINE_POOL, type ResultDocument } from '../api/schema.ts';
import { DEFAULT_ALPHA, DEFAULT_MIN_EFFECT_PCT, DEFAULT_MIN_SAMPLES } from '../report/baseline.ts';
import { renderCsv } from '../report/csv.ts';
import { ComparisonRefusedError } from '../report/fingerprint.ts';
import { completeDocument, readResultFile, ResultFileError } from '../report/document.ts';
import { writeExports } from '../report/exports.ts';
import { renderJUnit } from '../report/junit.ts';
import { renderMarkdown } from '../report/markdown.ts';
import { RULES } from '../report/recommend.ts';
import { renderReport, styleFor } from '../report/terminal.ts';
import { summarizeDocument } from '../report/verdict.ts';

const FORMATS = ['terminal', 'markdown', 'csv', 'junit', 'json'] as const;
type Format = (typeof FORMATS)[number];

const USAGE = `usage: swarmbench report RESULTS.json [--baseline OLD.json] [--out DIR] [--format F] [options]

  -b, --baseline FILE        compare with an earlier result document, test by test; given more than
                             once (at most ${MAX_BASELINE_POOL}): a pooled baseline, the files' samples joined
  -o, --out DIR              write results.json, summary.csv, junit.xml, report.md, report.txt
  -f, --format F             print ${FORMATS.join(' | ')} instead of the terminal report
      --fail-on-regression   a Regressed test fails the verdict (exit 1)
      --alpha A              significance level of the Mann-Whitney test (default ${DEFAULT_ALPHA})
      --min-effect PCT       smallest shift, in % of the baseline median, that counts (default ${DEFAULT_MIN_EFFECT_PCT})
      --min-samples N        fewer samples in a run give InsufficientSamples (default ${DEFAULT_MIN_SAMPLES})
      --force-compare        compare even when the runs were not measured alike (machine, kernel,
                             inference backend, sizes...); the differences become warnings
      --rules                list the recommendation rules and exit
`;

function fail(message: string): number {
  process.stderr.write(`swarmbench report: ${message}\n`);
  return 2;
}


function numberOption(name: string, text: string | undefined, ok: (v: number) => boolean): number | undefined | Error {
  if (text === undefined) return undefined;
  const v = Number(text);
  return text.trim() !== '' && Number.isFinite(v) && ok(v) ? v : new Error(`--${name}: invalid value ${JSON.stringify(text)}`);
}

export async function main(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        baseline: { type: 'string', short: 'b', multiple: true },
        out: { type: 'string', short: 'o' },
        format: { type: 'string', short: 'f', default: 'terminal' },
        'fail-on-regression': { type: 'boolean', default: false },
        alpha: { type: 'string' },
        'min-effect': { type: 'string' },
        'min-samples': { type: 'string' },
        'force-compare': { type: 'boolean', default: false },
        rules: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.rules) {
    for (const r of RULES) process.stdout.write(`${r.name.padEnd(22)} ${r.category.padEnd(12)} ${r.description}\n`);
    return 0;
  }
  if (positionals.length !== 1) return fail(`give exactly one result document (results.json)\n\n${USAGE}`);
  const format = values.format as Format;
  if (!FORMATS.includes(format)) return fail(`--format: unknown format "${values.format}" (known: ${FORMATS.join(', ')})`);
  const alpha = numberOption('alpha', values.alpha, (v) => v > 0 && v < 1);
  const minEffect = numberOption('min-effect', values['min-effect'], (v) => v >= 0 && v <= 1000);
  const minSamples = numberOption('min-samples', values['min-samples'], (v) => Number.isInteger(v) && v >= 2 && v <= 100_000);
  for (const o of [alpha, minEffect, minSamples]) if (o instanceof Error) return fail(o.message);
  const baselineFiles = values.baseline ?? [];
  if (baselineFiles.length > MAX_BASELINE_POOL) return fail(`--baseline: at most ${MAX_BASELINE_POOL} files make a pooled baseline, got ${baselineFiles.length}`);
  if (baselineFiles.length === 0 && (alpha !== undefined || minEffect !== undefined || minSamples !== undefined || values['force-compare'])) {
    return fail('--alpha, --min-effect, --min-samples and --force-compare need --baseline');
  }

  let doc: ResultDocument;
  let baselines: ResultDocument[];
  try {
    doc = readResultFile(positionals[0]!);
    baselines = baselineFiles.map(readResultFile);
  } catch (err) {
    if (err instanceof ResultFileError) return fail(err.message);
    throw err;
  }

  const baseline = baselines[0];
  if (baseline) {
    try {
      doc = completeDocument(doc, {
        baseline,
        compare: {
          ...(typeof alpha === 'number' ? { alpha } : {}),
          ...(typeof minEffect === 'number' ? { minEffectPct: minEffect } : {}),
          ...(typeof minSamples === 'number' ? { minSamples } : {}),
          failOnRegression: values['fail-on-regression'] || (doc.comparison?.method.failOnRegression ?? false),
          source: baselineFiles.join(', '),
          force: values['force-compare'],
          pool: baselines.slice(1),
        },
      });
    } catch (err) {
      if (err instanceof ComparisonRefusedError) return fail(`--baseline ${baselineFiles[0]}: ${err.message}`);
      throw err;
    }
  } else if (values['fail-on-regression'] && doc.comparison && !doc.comparison.method.failOnRegression) {
    // The document's own comparison, now gated.
    const comparison = { ...doc.comparison, method: { ...doc.comparison.method, failOnRegression: true } };
    doc = { ...doc, comparison };
    doc = { ...doc, summary: summarizeDocument(doc) };
  }

  if (values.out) {
    try {
      writeExports(resolve(values.out), doc);
    } catch (err) {
      return fail(`cannot write to ${values.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const text =
    format === 'terminal'
      ? renderReport(doc, styleFor(process.stdout))
      : format === 'markdown'
        ? renderMarkdown(doc)
        : format === 'csv'
          ? renderCsv(doc)
          : format === 'junit'
            ? renderJUnit(doc)
            : JSON.stringify(doc, null, 2) + '\n';
  process.stdout.write(text);
  return doc.summary.verdict === 'Passed' ? 0 : 1;
}
