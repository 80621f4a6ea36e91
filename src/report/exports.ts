/**
 * Writes every export of a result document into a folder, each file atomically (written beside
 * and renamed), so a reader never sees half a file:
 *
 * | file          | what                                                                 |
 * |---------------|----------------------------------------------------------------------|
 * | results.json  | the result document (versioned schema, `schemaVersion`)              |
 * | summary.csv   | key figures against targets, a row for every test (`csv.ts`)         |
 * | junit.xml     | one testcase per test, failures and skips as JUnit has them          |
 * | report.md     | the Markdown report for CI step summaries and PR comments            |
 * | report.txt    | the terminal report without colour                                   |
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultDocument } from '../api/schema.ts';
import { renderCsv } from './csv.ts';
import { renderJUnit } from './junit.ts';
import { renderMarkdown } from './markdown.ts';
import { renderReport } from './terminal.ts';

export const EXPORT_FILES = ['results.json', 'summary.csv', 'junit.xml', 'report.md', 'report.txt'] as const;

export function renderExports(doc: ResultDocument): Record<(typeof EXPORT_FILES)[number], string> {
  return {
    'results.json': JSON.stringify(doc, null, 2) + '\n',
    'summary.csv': renderCsv(doc),
    'junit.xml': renderJUnit(doc),
    'report.md': renderMarkdown(doc),
    'report.txt': renderReport(doc, { color: false }),
  };
}

/** Writes all exports into `dir` (created when missing); returns the paths written. */
export function writeExports(dir: string, doc: ResultDocument): string[] {
  mkdirSync(dir, { recursive: true });
  const files = renderExports(doc);
  const written: string[] = [];
  for (const [name, text] of Object.entries(files)) {
    const path = join(dir, name);
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
    written.push(path);
  }
  return written;
}
