// Building the page without HTML strings: every value from a result document (a tenant's input:
// names, reasons, messages) becomes a text node or an attribute value, never markup. Links go only
// to this page's routes (#/...) or this server's API (/api/...).

/**
 * An element: `h('td', { class: 'num' }, 'text', child)`. Strings and numbers become text nodes;
 * `on<event>` attributes take functions (from this code only); `href` must be a route of this page.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
      continue;
    }
    if (k === 'href' && !/^(#\/|\/api\/)/.test(String(v))) throw new Error(`refused link ${String(v).slice(0, 40)}`);
    el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Figures as the reports print them (src/report/format.ts: num, signed, pct, durationText); the
// browser test checks the page against the report's own functions.
export function num(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (Number.isInteger(v) && a < 1e9) return String(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a >= 0.001) return v.toPrecision(3);
  return v.toExponential(2);
}

export function signed(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v > 0 ? `+${num(v)}` : v < 0 ? `-${num(-v)}` : '0';
}

export function pct(v, digits = 1) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return `${v > 0 ? '+' : ''}${v.toFixed(digits)} %`;
}

export function durationText(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export const valueText = (t) => (t.value === null ? '—' : `${num(t.value)} ${t.unit}`);
export const targetText = (t) => `${t.target.op}${t.target.value}`;

export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

// Status badges: a word and a symbol, then the colour.
const BADGES = {
  Passed: ['pass', '✔'],
  Succeeded: ['pass', '✔'],
  Done: ['pass', '✔'],
  Improved: ['pass', '▲'],
  Failed: ['fail', '✘'],
  Regressed: ['fail', '▼'],
  Unreadable: ['fail', '⚠'],
  Cancelled: ['skip', '■'],
  Skipped: ['skip', '–'],
  InsufficientSamples: ['none', '?'],
  NoChange: ['none', '='],
  // A lasting shift where the host's load changed too (report/trend.ts "The machine changed").
  'Machine changed': ['skip', '≈'],
  Running: ['run', '▶'],
  Pending: ['run', '…'],
};

export function badge(word) {
  const [cls, sym] = BADGES[word] ?? ['none', '·'];
  return h('span', { class: `badge ${cls}`, 'data-status': word }, `${sym} ${word}`);
}

/** A JSON GET of this server's API; throws an Error with the server's message. */
export async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  let body;
  try {
    body = await res.json();
  } catch {
    throw new Error(`${path}: the server answered ${res.status} without JSON`);
  }
  if (!res.ok) throw new Error(body && typeof body.error === 'string' ? body.error : `${path}: ${res.status}`);
  return body;
}

/** An error box: what went wrong, said in full (it names the file when a file is the problem). */
export function errorBox(title, message) {
  return h('div', { class: 'error', role: 'alert' }, h('strong', {}, title), '\n', message);
}

export const CATEGORY_ORDER = ['distributed', 'gpu', 'monitoring', 'scalability', 'integration', 'stress'];
