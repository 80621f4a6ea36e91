/**
 * A small PromQL client over the Prometheus HTTP API v1 (`fetch`, no dependencies).
 *
 * - `query(expr, time?)`: instant query (`/api/v1/query`); the result is normalised to a list of
 *   series: a vector gives one point per series, a matrix (a range selector such as `x[30s]`)
 *   gives every raw sample, a scalar gives one series without labels.
 * - `queryRange(expr, start, end, stepSeconds)`: range query (`/api/v1/query_range`).
 * - `targets()`, `ready()`: what a benchmark needs to wait until its targets are scraped.
 *
 * Queries are sent as POST form bodies (Prometheus accepts both; POST has no URL length limit).
 * Sample values are parsed from Prometheus's string form, including `NaN`, `+Inf` and `-Inf`.
 * Times are epoch seconds (floats), as the API uses them.
 *
 * Bounded (docs/monitoring.md "The Prometheus client"):
 * - every request has a timeout (`timeoutMs`, default 10 s) covering the answer *and* its body,
 *   and follows an optional caller AbortSignal (e.g. the one deadline of a batch,
 *   `src/prometheus/bounded.ts`; a signal aborted with a `TimeoutError`/`DeadlineError` reason is
 *   reported as a `timeout`, any other reason as `aborted`);
 * - a response body is read up to `maxBodyBytes` (default `MAX_BODY_BYTES`, 16 MiB): a larger
 *   `content-length` is refused unread, a body that grows past the cap (a server streaming without
 *   end) is cut there and the request aborted (`too-large`);
 * - failures throw `PrometheusError` carrying Prometheus's own `errorType` and `error` message when
 *   the server sent one, the HTTP status otherwise, or the network cause. Every message names the
 *   query (or the API path), and whatever text came from the server (error, errorType, an error
 *   page, warnings) is cleaned by `cleanServerText`: control and format characters replaced,
 *   whitespace collapsed, cut at 200 characters, so it can be put into a status as it is.
 */

export interface PrometheusClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:9090` or `https://prom.example/prometheus/` (a path prefix is kept). */
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  bearerToken?: string | undefined;
  /** Per-request timeout (ms), answer and body. Default 10000. */
  timeoutMs?: number | undefined;
  /** The most bytes of one response body read (default `MAX_BODY_BYTES`, 16 MiB). */
  maxBodyBytes?: number | undefined;
  /** Extra headers (e.g. a tenant header of a multi-tenant Prometheus-compatible store). */
  headers?: Record<string, string> | undefined;
  /** Injected fetch (tests); defaults to the global one. */
  fetch?: typeof fetch | undefined;
}

export interface Point {
  /** Epoch seconds. */
  t: number;
  v: number;
}

export interface Series {
  metric: Record<string, string>;
  points: Point[];
}

export interface QueryResult {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  series: Series[];
  warnings: string[];
}

export interface Target {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapeUrl: string;
  scrapePool: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
  lastScrapeDurationSeconds: number;
}

/**
 * `network`: no answer (refused, reset, DNS); `timeout`: no full answer in time (the request's own
 * timeout or the caller's deadline); `aborted`: the caller's signal for another reason;
 * `too-large`: the body passed `maxBodyBytes`; `http`/`api`: the server's error; `parse`: not an
 * API answer.
 */
export type PrometheusErrorKind = 'network' | 'timeout' | 'aborted' | 'too-large' | 'http' | 'api' | 'parse';

/** Default cap of one response body (bytes). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Server text in an error message is cut at this many characters. */
export const SERVER_TEXT_MAX = 200;
/** The query named in an error message is cut at this many characters. */
const QUERY_TEXT_MAX = 160;
/** At most this many warnings of one answer are kept. */
const MAX_WARNINGS = 20;

export class PrometheusError extends Error {
  readonly kind: PrometheusErrorKind;
  /** HTTP status when a response came back. */
  readonly status: number | undefined;
  /** Prometheus's `errorType` (bad_data, execution, timeout, canceled, internal, unavailable...). */
  readonly errorType: string | undefined;

  constructor(
    message: string,
    kind: PrometheusErrorKind,
    opts: { status?: number | undefined; errorType?: string | undefined; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PrometheusError';
    this.kind = kind;
    this.status = opts.status;
    this.errorType = opts.errorType;
  }
}

/** Parses a sample value as Prometheus writes it (`"1.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`). */
export function parseSampleValue(s: unknown): number {
  if (typeof s !== 'string') throw new PrometheusError(`sample value is not a string: ${JSON.stringify(s)}`, 'parse');
  switch (s) {
    case 'NaN':
      return Number.NaN;
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
  }
  const v = Number(s);
  if (s.trim() === '' || Number.isNaN(v)) throw new PrometheusError(`sample value is not a number: ${JSON.stringify(s)}`, 'parse');
  return v;
}

function parsePair(p: unknown): Point {
  if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'number') {
    throw new PrometheusError(`malformed sample ${JSON.stringify(p)}`, 'parse');
  }
  return { t: p[0], v: parseSampleValue(p[1]) };
}

function labelsOf(m: unknown): Record<string, string> {
  if (m === undefined || m === null) return {};
  if (typeof m !== 'object' || Array.isArray(m)) throw new PrometheusError('malformed metric labels', 'parse');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m as Record<string, unknown>)) out[k] = String(v);
  return out;
}

/**
 * Turns the `data` member of a successful query response into series. Native histograms
 * (`histogram`/`histograms` members) are not supported and are reported as a parse error rather
 * than silently dropped.
 */
export function parseQueryData(data: unknown): Omit<QueryResult, 'warnings'> {
  if (typeof data !== 'object' || data === null) throw new PrometheusError('response has no data', 'parse');
  const d = data as { resultType?: unknown; result?: unknown };
  switch (d.resultType) {
    case 'vector': {
      if (!Array.isArray(d.result)) throw new PrometheusError('vector result is not an array', 'parse');
      return {
        resultType: 'vector',
        series: d.result.map((r: { metric?: unknown; value?: unknown; histogram?: unknown }) => {
          if (r.value === undefined && r.histogram !== undefined) {
            throw new PrometheusError('native histogram samples are not supported', 'parse');
          }
          return { metric: labelsOf(r.metric), points: [parsePair(r.value)] };
        }),
      };
    }
    case 'matrix': {
      if (!Array.isArray(d.result)) throw new PrometheusError('matrix result is not an array', 'parse');
      return {
        resultType: 'matrix',
        series: d.result.map((r: { metric?: unknown; values?: unknown; histograms?: unknown }) => {
          if (r.values === undefined && r.histograms !== undefined) {
            throw new PrometheusError('native histogram samples are not supported', 'parse');
          }
          if (!Array.isArray(r.values)) throw new PrometheusError('matrix series has no values', 'parse');
          return { metric: labelsOf(r.metric), points: r.values.map(parsePair) };
        }),
      };
    }
    case 'scalar':
      return { resultType: 'scalar', series: [{ metric: {}, points: [parsePair(d.result)] }] };
    case 'string': {
      if (!Array.isArray(d.result) || d.result.length !== 2) throw new PrometheusError('malformed string result', 'parse');
      // A string result has no numeric value; keep it as NaN so a caller never reads it as zero.
      return { resultType: 'string', series: [{ metric: { value: String(d.result[1]) }, points: [{ t: Number(d.result[0]), v: Number.NaN }] }] };
    }
    default:
      throw new PrometheusError(`unknown resultType ${JSON.stringify(d.resultType)}`, 'parse');
  }
}

/** Epoch seconds from a Date, epoch seconds, or an RFC 3339 string. */
function timeParam(t: Date | number | string): string {
  if (t instanceof Date) return (t.getTime() / 1000).toFixed(3);
  if (typeof t === 'number') return t.toFixed(3);
  return t;
}

/**
 * Text that came from a server, made safe for a log line or a status: control characters (C0, C1,
 * DEL) and format characters (bidi overrides, zero-width) become spaces, whitespace runs one
 * space, and the result is cut at `max` characters (never inside a surrogate pair) with `…`.
 * Only the first `16 * max` characters are looked at, so a huge body costs no more than that.
 */
export function cleanServerText(text: string, max = SERVER_TEXT_MAX): string {
  const s = text.slice(0, 16 * max).replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, ' ').replace(/\s+/g, ' ').trim();
  if (s.length <= max && text.length <= 16 * max) return s;
  let cut = s.slice(0, max);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** Bytes as `16 MiB` / `512 KiB` / `100 bytes`. */
function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/** What a caught error from `fetch` or a body read says, for the network case. */
function networkCause(e: unknown): string {
  const err = e as { message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const why = err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
  return cleanServerText(String(why));
}

function positiveInt(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`PrometheusClient: ${field} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export class PrometheusClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxBodyBytes: number;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;

  constructor(opts: PrometheusClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch (e) {
      throw new PrometheusError(`invalid Prometheus URL ${JSON.stringify(opts.url)}`, 'network', { cause: e });
    }
    this.baseUrl = u.href.endsWith('/') ? u.href : `${u.href}/`;
    this.#token = opts.bearerToken;
    this.#timeoutMs = positiveInt('timeoutMs', opts.timeoutMs, 10_000);
    this.#maxBodyBytes = positiveInt('maxBodyBytes', opts.maxBodyBytes, MAX_BODY_BYTES);
    this.#headers = opts.headers ?? {};
    this.#fetch = opts.fetch ?? fetch;
  }

  /** Instant query. `time` defaults to the server's now. */
  async query(expr: string, time?: Date | number | string, signal?: AbortSignal): Promise<QueryResult> {
    const form: Record<string, string> = { query: expr };
    if (time !== undefined) form.time = timeParam(time);
    const body = await this.#request('api/v1/query', form, signal);
    return { ...parseQueryData(body.data), warnings: body.warnings };
  }

  /** Range query over [start, end] every `stepSeconds`. */
  async queryRange(
    expr: string,
    start: Date | number | string,
    end: Date | number | string,
    stepSeconds: number,
    signal?: AbortSignal,
  ): Promise<QueryResult> {
    if (!(stepSeconds > 0)) throw new PrometheusError(`step must be > 0, got ${stepSeconds}`, 'parse');
    const body = await this.#request(
      'api/v1/query_range',
      { query: expr, start: timeParam(start), end: timeParam(end), step: String(stepSeconds) },
      signal,
    );
    return { ...parseQueryData(body.data), warnings: body.warnings };
  }

  /** A single number from an instant query: the only point of a one-series result. */
  async scalar(expr: string, time?: Date | number | string, signal?: AbortSignal): Promise<number> {
    const r = await this.query(expr, time, signal);
    if (r.series.length !== 1 || r.series[0]!.points.length !== 1) {
      throw new PrometheusError(
        r.series.length === 0 ? `query returned no data: ${expr}` : `query returned ${r.series.length} series, expected one: ${expr}`,
        'api',
      );
    }
    return r.series[0]!.points[0]!.v;
  }

  /** Active scrape targets (`/api/v1/targets?state=active`). */
  async targets(signal?: AbortSignal): Promise<Target[]> {
    const body = await this.#request('api/v1/targets?state=active', undefined, signal);
    const d = body.data as { activeTargets?: unknown };
    if (!Array.isArray(d?.activeTargets)) throw new PrometheusError('targets response has no activeTargets', 'parse');
    return d.activeTargets.map((t: Record<string, unknown>) => ({
      labels: labelsOf(t.labels),
      discoveredLabels: labelsOf(t.discoveredLabels),
      scrapeUrl: String(t.scrapeUrl ?? ''),
      scrapePool: String(t.scrapePool ?? ''),
      health: (t.health === 'up' || t.health === 'down' ? t.health : 'unknown') as Target['health'],
      lastError: String(t.lastError ?? ''),
      lastScrape: String(t.lastScrape ?? ''),
      lastScrapeDurationSeconds: typeof t.lastScrapeDuration === 'number' ? t.lastScrapeDuration : Number.NaN,
    }));
  }

  /** True when `/-/ready` answers 200 (its body read up to 64 KiB, then dropped). Never throws. */
  async ready(signal?: AbortSignal): Promise<boolean> {
    const own = new AbortController();
    try {
      const res = await this.#fetch(new URL('-/ready', this.baseUrl), {
        headers: this.#authHeaders(),
        signal: AbortSignal.any([own.signal, this.#signal(signal).signal]),
      });
      await this.#readBody(res, own, Math.min(this.#maxBodyBytes, 64 * 1024), 'path: /-/ready');
      return res.status === 200;
    } catch {
      return false;
    }
  }

  #authHeaders(): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...this.#headers };
    if (this.#token) h.authorization = `Bearer ${this.#token}`;
    return h;
  }

  /** The request's own timeout, and it joined with the caller's signal. */
  #signal(signal?: AbortSignal): { timeout: AbortSignal; signal: AbortSignal } {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    return { timeout, signal: signal ? AbortSignal.any([timeout, signal]) : timeout };
  }

  /**
   * Reads a body up to `cap` bytes. A `content-length` above the cap is refused unread; a body that
   * grows past it is cut: the reader is cancelled and the request aborted (`own`), so a server
   * streaming without end costs at most `cap` bytes of memory.
   */
  async #readBody(res: Response, own: AbortController, cap: number, what: string): Promise<string> {
    const tooLarge = (n: string): PrometheusError => {
      own.abort();
      return new PrometheusError(
        `Prometheus's answer is larger than the ${formatBytes(cap)} cap (${n}); the request was aborted (${what})`,
        'too-large',
        { status: res.status },
      );
    };
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > cap) {
      await res.body?.cancel().catch(() => {});
      throw tooLarge(`content-length ${declared}`);
    }
    if (!res.body) return '';
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.byteLength;
      if (n > cap) {
        await reader.cancel().catch(() => {});
        throw tooLarge(`more than ${n} bytes read`);
      }
      chunks.push(value);
    }
    return Buffer.concat(chunks, n).toString('utf8');
  }

  async #request(
    path: string,
    form: Record<string, string> | undefined,
    signal?: AbortSignal,
  ): Promise<{ data: unknown; warnings: string[] }> {
    const url = new URL(path, this.baseUrl);
    const what = form?.query !== undefined ? `query: ${cleanServerText(form.query, QUERY_TEXT_MAX)}` : `path: ${url.pathname}`;
    const headers = this.#authHeaders();
    const own = new AbortController();
    const timing = this.#signal(signal);
    const init: RequestInit = { headers, signal: AbortSignal.any([own.signal, timing.signal]) };
    if (form) {
      init.method = 'POST';
      headers['content-type'] = 'application/x-www-form-urlencoded';
      init.body = new URLSearchParams(form).toString();
    }
    let res: Response;
    let text: string;
    try {
      res = await this.#fetch(url, init);
      text = await this.#readBody(res, own, this.#maxBodyBytes, what);
    } catch (e) {
      if (e instanceof PrometheusError) throw e;
      // Which signal ended it: the caller's (a deadline or a cancellation) before our own timeout.
      if (signal?.aborted) {
        const r: unknown = signal.reason;
        const rName = r instanceof Error || r instanceof DOMException ? r.name : '';
        const rMsg = cleanServerText(r instanceof Error || r instanceof DOMException ? r.message : String(r));
        if (rName === 'TimeoutError' || rName === 'DeadlineError') {
          throw new PrometheusError(`Prometheus at ${this.baseUrl} did not answer in time: ${rMsg} (${what})`, 'timeout', { cause: e });
        }
        throw new PrometheusError(`request aborted: ${rMsg} (${what})`, 'aborted', { cause: e });
      }
      if (timing.timeout.aborted || (e as Error).name === 'TimeoutError') {
        throw new PrometheusError(`Prometheus at ${this.baseUrl} did not answer within ${this.#timeoutMs} ms (${what})`, 'timeout', { cause: e });
      }
      throw new PrometheusError(`Prometheus at ${this.baseUrl} unreachable: ${networkCause(e)} (${what})`, 'network', { cause: e });
    }
    let body: { status?: unknown; data?: unknown; errorType?: unknown; error?: unknown; warnings?: unknown } | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (body && body.status === 'error') {
      const errorType = typeof body.errorType === 'string' ? cleanServerText(body.errorType, 40) : undefined;
      const msg = typeof body.error === 'string' ? cleanServerText(body.error) : 'unknown error';
      throw new PrometheusError(`Prometheus ${errorType ?? 'error'} (HTTP ${res.status}): ${msg} (${what})`, 'api', {
        status: res.status,
        errorType,
      });
    }
    if (!res.ok) {
      const page = cleanServerText(text) || cleanServerText(res.statusText);
      throw new PrometheusError(`Prometheus answered HTTP ${res.status} for ${url.pathname}: ${page} (${what})`, 'http', {
        status: res.status,
      });
    }
    if (!body || body.status !== 'success') {
      throw new PrometheusError(`not a Prometheus API response from ${url.pathname}: ${cleanServerText(text)} (${what})`, 'parse', { status: res.status });
    }
    const warnings = Array.isArray(body.warnings) ? body.warnings.slice(0, MAX_WARNINGS).map((w) => cleanServerText(String(w))) : [];
    return { data: body.data, warnings };
  }
}

/** Escapes a string for use inside a PromQL regex matcher (`=~"..."`): RE2 metacharacters and the quote. */
export function escapeRegex(s: string): string {
  const re = s.replace(/[\\.+*?()|[\]{}^$]/g, (c) => `\\${c}`);
  return re.replace(/[\\"]/g, (c) => `\\${c}`);
}

/** A PromQL duration from milliseconds (`1500ms`), never below 1 ms. */
export function promDuration(ms: number): string {
  return `${Math.max(1, Math.round(ms))}ms`;
}
