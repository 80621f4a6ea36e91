/**
 * The BenchmarkSchedule API (src/api/schedule.ts): what it accepts, what it refuses (each error
 * naming the field), its defaults, the generated CRD (both committed copies) and its reference
 * (docs/reference-schedule.md).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import {
  BenchmarkScheduleSpec,
  cronProblem,
  resolveScheduleSpec,
  SCHEDULE_DEFAULTS,
  timeZoneProblem,
  validateScheduleManifest,
  validateScheduleSpec,
} from '../../src/api/schedule.ts';
import { buildScheduleCrd, renderScheduleCrd, SCHEDULE_CHART_CRD_PATH, SCHEDULE_CRD_PATH } from '../../src/api/schedule-crd.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { SCHEDULE_NOTES, SCHEDULE_REFERENCE_PATH, renderScheduleReference, scheduleFieldPaths } from '../../src/plan/reference-schedule.ts';

const base = { schedule: '0 3 * * *', runTemplate: { spec: {} } };
const manifest = (spec: unknown, extra: Record<string, unknown> = {}) => ({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkSchedule', metadata: { name: 'nightly' }, spec, ...extra });

function errorsOf(spec: unknown): string[] {
  const r = validateScheduleManifest(manifest(spec));
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

describe('BenchmarkSchedule spec', () => {
  it('accepts a minimal schedule and resolves the defaults', () => {
    const r = validateScheduleManifest(manifest(base));
    expect(r.ok ? [] : r.errors).toEqual([]);
    const spec = resolveScheduleSpec((r as { ok: true; value: { spec: BenchmarkScheduleSpec } }).value.spec);
    expect(spec).toEqual({
      schedule: '0 3 * * *',
      timeZone: 'UTC',
      suspend: false,
      concurrencyPolicy: 'Forbid',
      runTemplate: { spec: {} },
      successfulRunsHistoryLimit: 3,
      failedRunsHistoryLimit: 1,
      baseline: { policy: 'none', count: 5 },
    });
    expect(spec.startingDeadlineSeconds).toBeUndefined();
    expect(SCHEDULE_DEFAULTS.concurrencyPolicy).toBe('Forbid');
  });

  it('accepts every field at a sensible value, nicknames and names in the cron, and an alias zone', () => {
    const full = {
      schedule: '@daily',
      timeZone: 'US/Pacific',
      suspend: true,
      concurrencyPolicy: 'Replace',
      startingDeadlineSeconds: 600,
      successfulRunsHistoryLimit: 0,
      failedRunsHistoryLimit: 100,
      baseline: { policy: 'pooled', count: 10 },
      runTemplate: { metadata: { labels: { team: 'a', 'example.com/tier': 'gold' }, annotations: { note: 'x'.repeat(4096) } }, spec: { mode: 'quick', baseline: { failOnRegression: true } } },
    };
    expect(errorsOf(full)).toEqual([]);
    for (const s of ['30 2 * * MON-FRI', '*/15 * * * *', '0 3 L * *', '0 0 1 JAN,JUL *', '@hourly']) expect(errorsOf({ ...base, schedule: s }), s).toEqual([]);
    expect(errorsOf({ ...base, baseline: { policy: 'pinned', run: 'golden' } })).toEqual([]);
  });

  it.each([
    [{ schedule: '61 * * * *' }, 'spec.schedule', /minute/],
    [{ schedule: '0 3 * * * *' }, 'spec.schedule', /5 fields/],
    [{ schedule: 'every night' }, 'spec.schedule', /cron expression/],
    [{ schedule: '0 0 30 2 *' }, 'spec.schedule', /never fires/],
    [{ schedule: '@reboot' }, 'spec.schedule', /reboot/],
    [{ schedule: 'x'.repeat(200) }, 'spec.schedule', /128/],
    [{ timeZone: 'Mars/Olympus' }, 'spec.timeZone', /IANA/],
    [{ timeZone: '+01:00' }, 'spec.timeZone', /IANA/],
    [{ timeZone: 'Local' }, 'spec.timeZone', /IANA/],
    [{ timeZone: 'europe/berlin' }, 'spec.timeZone', /spelled Europe\/Berlin/],
    [{ successfulRunsHistoryLimit: -1 }, 'spec.successfulRunsHistoryLimit', /0/],
    [{ failedRunsHistoryLimit: -3 }, 'spec.failedRunsHistoryLimit', /0/],
    [{ successfulRunsHistoryLimit: 101 }, 'spec.successfulRunsHistoryLimit', /100/],
    [{ successfulRunsHistoryLimit: 1.5 }, 'spec.successfulRunsHistoryLimit', /integer/],
    [{ startingDeadlineSeconds: 5 }, 'spec.startingDeadlineSeconds', /10/],
    [{ startingDeadlineSeconds: 1e12 }, 'spec.startingDeadlineSeconds', /31536000/],
    [{ concurrencyPolicy: 'Sometimes' }, 'spec.concurrencyPolicy', /Forbid/],
    [{ suspend: 'yes' }, 'spec.suspend', /boolean/],
    [{ colour: 'blue' }, 'spec.colour', /unknown field/],
    [{ baseline: { policy: 'pinned' } }, 'spec.baseline.run', /required/],
    [{ baseline: { policy: 'previous', run: 'x' } }, 'spec.baseline.run', /pinned/],
    [{ baseline: { policy: 'previous', count: 3 } }, 'spec.baseline.count', /pooled/],
    [{ baseline: { policy: 'pooled', count: 11 } }, 'spec.baseline.count', /10/],
    [{ baseline: { policy: 'latest' } }, 'spec.baseline.policy', /previous/],
    [{ baseline: { policy: 'pinned', run: 'Not_A_Name' } }, 'spec.baseline.run', /DNS/],
  ])('refuses %j naming %s', (patch, path, message) => {
    const errs = errorsOf({ ...base, ...patch });
    const hit = errs.find((e) => e.startsWith(`${path}:`));
    expect(hit, errs.join('\n')).toBeDefined();
    expect(hit).toMatch(message);
  });

  it('requires the schedule and the run template', () => {
    const errs = errorsOf({});
    expect(errs.some((e) => e.startsWith('spec.schedule: is required'))).toBe(true);
    expect(errs.some((e) => e.startsWith('spec.runTemplate: is required'))).toBe(true);
  });

  const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i}`, 'v']));
  it.each([
    [{ labels: labels(33) }, 'spec.runTemplate.metadata.labels', /at most 32/],
    [{ labels: { team: 'x'.repeat(64) } }, 'spec.runTemplate.metadata.labels.team', /63/],
    [{ labels: { team: 'has space' } }, 'spec.runTemplate.metadata.labels.team', /label value/],
    [{ labels: { 'bad key!': 'v' } }, 'spec.runTemplate.metadata.labels.bad key!', /label key/],
    [{ labels: { ['k'.repeat(64)]: 'v' } }, `spec.runTemplate.metadata.labels.${'k'.repeat(64)}`, /63/],
    [{ labels: { 'swarmbench.io/schedule': 'other' } }, 'spec.runTemplate.metadata.labels.swarmbench.io/schedule', /set by SwarmBench/],
    [{ annotations: { note: 'x'.repeat(4097) } }, 'spec.runTemplate.metadata.annotations.note', /4096/],
    [{ annotations: labels(33) }, 'spec.runTemplate.metadata.annotations', /at most 32/],
    [{ annotations: { 'swarmbench.io/rerun': '1' } }, 'spec.runTemplate.metadata.annotations.swarmbench.io/rerun', /set by SwarmBench/],
    [{ name: 'x' }, 'spec.runTemplate.metadata.name', /unknown field/],
  ])('refuses template metadata %#, naming %s', (metadata, path, message) => {
    const errs = errorsOf({ ...base, runTemplate: { metadata, spec: {} } });
    const hit = errs.find((e) => e.startsWith(`${path}:`));
    expect(hit, errs.join('\n')).toBeDefined();
    expect(hit).toMatch(message);
  });

  it.each([
    [{ trials: 2 }, {}, 'spec.runTemplate.spec.trials', /3/],
    [{ export: { configMapName: 'shared' } }, {}, 'spec.runTemplate.spec.export.configMapName', /its own/],
    [{ suspend: true }, {}, 'spec.runTemplate.spec.suspend', /spec\.suspend/],
    [{ baseline: { runRef: 'old' } }, { baseline: { policy: 'previous' } }, 'spec.runTemplate.spec.baseline.runRef', /previous/],
    [{ baseline: { configMapRef: { name: 'cm' } } }, { baseline: { policy: 'pinned', run: 'g' } }, 'spec.runTemplate.spec.baseline.configMapRef', /pinned/],
    [{ baseline: { pool: ['a', 'b'] } }, { baseline: { policy: 'pooled' } }, 'spec.runTemplate.spec.baseline.pool', /pooled/],
  ])('refuses template spec %j (with %j) naming %s', (runSpec, patch, path, message) => {
    const errs = errorsOf({ ...base, ...patch, runTemplate: { spec: runSpec } });
    const hit = errs.find((e) => e.startsWith(`${path}:`));
    expect(hit, errs.join('\n')).toBeDefined();
    expect(hit).toMatch(message);
  });

  it('keeps a template baseline without a schedule policy (the template compares with what it names)', () => {
    expect(errorsOf({ ...base, runTemplate: { spec: { baseline: { runRef: 'golden' } } } })).toEqual([]);
  });

  it('refuses the wrong kind, unknown top-level and metadata fields', () => {
    const r = validateScheduleManifest({ ...manifest(base), kind: 'BenchmarkRun', extra: 1, metadata: { name: 'n', colour: 'x' } });
    const errs = r.ok ? [] : r.errors.map((e) => e.path);
    expect(errs).toEqual(expect.arrayContaining(['kind', 'extra', 'metadata.colour']));
    expect(validateScheduleManifest('nope').ok).toBe(false);
  });

  it('validateScheduleSpec names spec.* and refuses an alias bomb without walking it', () => {
    const r = validateScheduleSpec({ schedule: 'x', runTemplate: { spec: {} } });
    expect(r.ok ? [] : r.errors.map((e) => e.path)).toContain('spec.schedule');
    let bomb: unknown = ['x'];
    for (let i = 0; i < 20; i++) bomb = [bomb, bomb];
    const b = validateScheduleSpec({ ...base, runTemplate: { spec: { categories: bomb } } });
    expect(b.ok).toBe(false);
    expect(b.ok ? '' : b.errors[0]!.message).toMatch(/alias bomb/);
  });

  it('cronProblem and timeZoneProblem are undefined for good input and name the problem otherwise', () => {
    expect(cronProblem('0 3 * * *')).toBeUndefined();
    expect(cronProblem('0 25 * * *')).toMatch(/hour/);
    expect(timeZoneProblem('Europe/Berlin')).toBeUndefined();
    expect(timeZoneProblem('UTC')).toBeUndefined();
    expect(timeZoneProblem('Etc/GMT+5')).toBeUndefined();
    expect(timeZoneProblem('Nowhere/Special')).toMatch(/unknown zone/);
  });

  it('the example schedule validates', () => {
    const doc = load(readFileSync(join(REPO_ROOT, 'examples/nightly-schedule.yaml'), 'utf8'));
    const r = validateScheduleManifest(doc);
    expect(r.ok ? [] : r.errors).toEqual([]);
  });
});

describe('BenchmarkSchedule CRD', () => {
  it('the committed CRD is what the schema generates (run `npm run gen:crd` after changing the schema)', () => {
    expect(readFileSync(join(REPO_ROOT, SCHEDULE_CRD_PATH), 'utf8')).toBe(renderScheduleCrd());
  });

  it("the Helm chart installs it: its copy is the same bytes (`npm run gen:crd` writes both)", () => {
    expect(SCHEDULE_CHART_CRD_PATH).toBe('charts/swarmbench/crds/swarmbench.io_benchmarkschedules.yaml');
    expect(readFileSync(join(REPO_ROOT, SCHEDULE_CHART_CRD_PATH), 'utf8')).toBe(renderScheduleCrd());
  });

  it('is structural, has a status subresource, the printer columns and the group and version of BenchmarkRun', () => {
    const text = renderScheduleCrd();
    expect(text).not.toMatch(/additionalProperties: false/);
    expect(text).not.toMatch(/anyOf|oneOf|allOf|\$ref|default:/);
    expect(text).toMatch(/subresources:\n\s+status: \{\}/);
    const crd = buildScheduleCrd() as { metadata: { name: string }; spec: { group: string; names: { kind: string; shortNames: string[] }; versions: { name: string; additionalPrinterColumns: { name: string; jsonPath: string }[] }[] } };
    expect(crd.metadata.name).toBe('benchmarkschedules.swarmbench.io');
    expect(crd.spec.group).toBe('swarmbench.io');
    expect(crd.spec.names.kind).toBe('BenchmarkSchedule');
    expect(crd.spec.names.shortNames).toEqual(['bs']);
    const v = crd.spec.versions[0]!;
    expect(v.name).toBe('v1alpha1');
    expect(v.additionalPrinterColumns.map((c) => c.name)).toEqual(expect.arrayContaining(['Schedule', 'Suspend', 'Active', 'Last Schedule', 'Next', 'Last Verdict', 'Age']));
    expect(v.additionalPrinterColumns.find((c) => c.name === 'Next')).toMatchObject({ type: 'string', jsonPath: '.status.nextScheduleTime' });
  });

  it('holds the run template as a full BenchmarkRun spec (the same bounds as the BenchmarkRun CRD)', () => {
    const text = renderScheduleCrd();
    expect(text).toMatch(/runTemplate:[\s\S]*spec:[\s\S]*trials:\n\s+type: integer\n\s+minimum: 3\n\s+maximum: 10000/);
  });
});

describe('docs/reference-schedule.md', () => {
  it('is what the schema generates (run `npm run gen:reference` after changing the schema)', () => {
    expect(readFileSync(join(REPO_ROOT, SCHEDULE_REFERENCE_PATH), 'utf8')).toBe(renderScheduleReference());
  });

  it('describes every field, and no field that does not exist; the template spec links to the run reference', () => {
    const paths = scheduleFieldPaths();
    expect(paths.filter((p) => !SCHEDULE_NOTES[p])).toEqual([]);
    expect(Object.keys(SCHEDULE_NOTES).filter((k) => !paths.includes(k))).toEqual([]);
    expect(paths.some((p) => p.startsWith('spec.runTemplate.spec.'))).toBe(false);
    const md = renderScheduleReference();
    expect(md).toMatch(/\| `spec\.concurrencyPolicy` \| string \| `Forbid` \|  \| one of `Forbid`, `Replace`, `Allow` \|/);
    expect(md).toMatch(/\| `spec\.runTemplate\.spec` \| object \|.*\(reference\.md#spec\)/);
    expect(md.split('\n').filter((l) => /^\| `(spec|status)\./.test(l) && /\|\s*\|$/.test(l))).toEqual([]);
  });
});
