/** Pure helpers of the monitoring category: exposition parsing, ingestion rates, target selectors. */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { countExpositionSamples, ingestionRate, instanceOf, instanceSelector } from '../../src/bench/monitoring/exposition.ts';
import { run } from '../../src/bench/monitoring/index.ts';
import { resolveParams } from '../../src/plan/params.ts';

describe('countExpositionSamples', () => {
  it('counts every sample of a real prom-client exposition', async () => {
    const reg = new Registry();
    reg.setDefaultLabels({ agent: 'a-1' });
    const c = new Counter({ name: 'x_total', help: 'h', labelNames: ['kind'], registers: [reg] });
    c.inc({ kind: 'io' }, 3);
    c.inc({ kind: 'cpu' });
    const h = new Histogram({ name: 'd_seconds', help: 'h', buckets: [0.1, 1], registers: [reg] });
    h.observe(0.5);
    // 2 counter series + histogram: 3 buckets (0.1, 1, +Inf) + sum + count.
    expect(countExpositionSamples(await reg.metrics())).toBe(7);
  });

  it('accepts labels with escaped quotes, special values and timestamps', () => {
    const text = [
      '# HELP a help',
      '# TYPE a gauge',
      'a{l="x\\"y}",m="z"} NaN',
      'b +Inf 1700000000000',
      'c -1.5e-3',
      '',
    ].join('\n');
    expect(countExpositionSamples(text)).toBe(3);
  });

  it('rejects what a scraper would reject', () => {
    expect(() => countExpositionSamples('a{l="x"} abc')).toThrow(/malformed sample value on line 1/);
    expect(() => countExpositionSamples('ok 1\n<html>')).toThrow(/malformed exposition line 2/);
  });
});

describe('ingestionRate', () => {
  it('per target: samples after the first scrape over the time between first and last', () => {
    const r = ingestionRate([
      { points: [{ t: 10, v: 100 }, { t: 11, v: 100 }, { t: 12, v: 100 }] },
      { points: [{ t: 10.5, v: 50 }, { t: 11.5, v: 50 }, { t: 12.5, v: 50 }] },
    ]);
    expect(r.perTarget).toEqual([100, 50]);
    expect(r.rate).toBe(150);
    expect(r.perRound).toEqual([150, 150]);
    expect(r.scrapes).toBe(6);
    expect(r.intervalsS).toEqual([1, 1, 1, 1]);
  });

  it('uneven intervals count as measured, and a target with one scrape adds nothing', () => {
    const r = ingestionRate([{ points: [{ t: 0, v: 10 }, { t: 2, v: 10 }, { t: 3, v: 10 }] }, { points: [{ t: 0, v: 99 }] }]);
    expect(r.perTarget).toEqual([20 / 3]);
    expect(r.perRound).toEqual([5, 10]);
  });

  it('a round counts only when every target contributed', () => {
    const r = ingestionRate([
      { points: [{ t: 0, v: 1 }, { t: 1, v: 1 }, { t: 2, v: 1 }] },
      { points: [{ t: 0, v: 1 }, { t: 1, v: 1 }] },
    ]);
    expect(r.perRound).toEqual([2]);
  });

  it('no data gives no rate (never a made-up zero)', () => {
    const r = ingestionRate([]);
    expect(r.perTarget).toEqual([]);
    expect(r.perRound).toEqual([]);
  });
});

describe('target selectors', () => {
  it('instanceOf and instanceSelector', () => {
    expect(instanceOf('http://127.1.0.2:41234')).toBe('127.1.0.2:41234');
    expect(instanceOf('http://agent.svc/')).toBe('agent.svc:80');
    expect(instanceSelector([{ url: 'http://127.1.0.3:2' }, { url: 'http://127.1.0.2:1' }, { url: 'http://127.1.0.2:1' }])).toBe(
      '{instance=~"127\\\\.1\\\\.0\\\\.2:1|127\\\\.1\\\\.0\\\\.3:2"}',
    );
  });
});

describe('run', () => {
  it('a pool that cannot start fails all five tests with the reason', async () => {
    const params = resolveParams({ mode: 'quick', categories: ['monitoring'] });
    const platform = {
      kind: 'local' as const,
      createPool: async () => {
        throw new Error('no addresses left');
      },
      close: async () => {},
    };
    const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
    const ms = await run({ params, platform, log: quiet, progress: () => {}, signal: new AbortController().signal });
    expect(ms.map((m) => m.id)).toEqual(['3.1', '3.2', '3.3', '3.4', '3.5']);
    for (const m of ms) {
      expect(m.value).toBeNull();
      expect(m.fail).toBe('could not start the monitoring pool: no addresses left');
    }
  });
});
