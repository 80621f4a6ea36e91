/**
 * Tests 3.2 (scrape duration) and 3.5 (metrics volume) are computed together by a scrape source
 * that runs through the category's whole window: Prometheus (`prometheus-source.ts`) or, without
 * one, the runner's own scrapes (`direct-scrape.ts`). This file holds what both share: the
 * source's interface and the failed-scrape threshold.
 */
import type { Measurement } from '../../api/schema.ts';

/** More than this fraction of failed scrapes in the window fails 3.2 and 3.5. */
export const MAX_FAILED_SCRAPE_FRACTION = 0.01;

/** The failure reason when more than MAX_FAILED_SCRAPE_FRACTION of the scrapes failed. */
export function scrapeFailure(failedN: number, total: number, first: string): string | undefined {
  if (total === 0 || failedN / total <= MAX_FAILED_SCRAPE_FRACTION) return undefined;
  return `${failedN} of ${total} scrapes failed (more than ${MAX_FAILED_SCRAPE_FRACTION * 100}%)${first ? `; first: ${first}` : ''}`;
}

export interface ScrapeResults {
  m32: Measurement;
  m35: Measurement;
}

export interface ScrapeSource {
  readonly mode: 'prometheus' | 'direct-scrape';
  /** Ends the window and computes 3.2 and 3.5. */
  finish(): Promise<ScrapeResults>;
  stop(): void;
}
