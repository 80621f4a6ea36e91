/**
 * The monitoring category's pure helpers for scrape data: the `instance` label of an agent's
 * target, a selector for a set of targets, counting (and checking) the samples of a Prometheus
 * text exposition, and the ingestion rate of per-target scrape series (3.5).
 */
import { escapeRegex } from '../../prometheus/client.ts';

/** `host:port` of an agent URL: the `instance` label Prometheus gives a target by default. */
export function instanceOf(agentUrl: string): string {
  const u = new URL(agentUrl);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.hostname}:${port}`;
}

/** `{instance=~"a|b"}` selecting the given agents' targets. */
export function instanceSelector(agents: readonly { url: string }[]): string {
  const alts = [...new Set(agents.map((a) => escapeRegex(instanceOf(a.url))))].sort();
  return `{instance=~"${alts.join('|')}"}`;
}

/**
 * Counts the samples of a Prometheus text-format exposition and checks each sample line the way a
 * scraper must (metric name, optional labels, a float value). Throws on a malformed line.
 */
export function countExpositionSamples(text: string): number {
  let n = 0;
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    const l = line.trim();
    if (l === '' || l.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(l);
    if (!m) throw new Error(`malformed exposition line ${lineNo}: ${l.slice(0, 120)}`);
    const v = m[3]!;
    if (!/^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/.test(v)) {
      throw new Error(`malformed sample value on line ${lineNo}: ${v}`);
    }
    n++;
  }
  return n;
}

/**
 * Ingestion rate of scrape series (one per target, points = per-scrape sample counts at the
 * scrape times in seconds): per target, the samples of every scrape after the first over the
 * time from its first to its last scrape; summed over targets. Also the per-round totals (round
 * k: the k-th interval of every target that has one), as the distribution of the rate.
 */
export function ingestionRate(series: readonly { points: readonly { t: number; v: number }[] }[]): {
  rate: number;
  perTarget: number[];
  perRound: number[];
  scrapes: number;
  intervalsS: number[];
} {
  const perTarget: number[] = [];
  const roundSums: number[] = [];
  const roundCounts: number[] = [];
  const intervals: number[] = [];
  let scrapes = 0;
  let usable = 0;
  for (const s of series) {
    const p = s.points;
    scrapes += p.length;
    if (p.length < 2) continue;
    usable++;
    let sum = 0;
    for (let i = 1; i < p.length; i++) {
      sum += p[i]!.v;
      const dt = p[i]!.t - p[i - 1]!.t;
      intervals.push(dt);
      if (dt > 0) {
        roundSums[i - 1] = (roundSums[i - 1] ?? 0) + p[i]!.v / dt;
        roundCounts[i - 1] = (roundCounts[i - 1] ?? 0) + 1;
      }
    }
    perTarget.push(sum / (p[p.length - 1]!.t - p[0]!.t));
  }
  // A round counts only when every usable target contributed to it.
  const perRound: number[] = [];
  for (let k = 0; k < roundSums.length; k++) if (roundCounts[k] === usable) perRound.push(roundSums[k]!);
  return { rate: perTarget.reduce((a, b) => a + b, 0), perTarget, perRound, scrapes, intervalsS: intervals };
}
