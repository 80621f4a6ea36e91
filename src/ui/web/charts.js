// Charts with uPlot (served by this server from the package's node_modules: /vendor/uplot.js).
// The series come computed from src/ui/views.ts; here they are only drawn. Each series has its own
// dash pattern and marker size and a label in the legend, and every chart has its figures as a
// table under it, so colour is never the only way to tell the series apart.
import { h, num } from './dom.js';

const DASH = { line: undefined, dashed: [10, 5], dotted: [2, 5], points: undefined };
const live = new Set();

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function colours() {
  return { fg: cssVar('--fg'), grid: cssVar('--grid'), series: ['--s1', '--s2', '--s3', '--s4'].map(cssVar) };
}

/** A figure for `spec` (a ChartSpec of src/ui/views.ts); drawn by `drawCharts` once it is in the page. */
export function chartFigure(spec, opts = {}) {
  const caption = h('figcaption', {}, spec.title, opts.note ? h('span', { class: 'muted' }, ` · ${opts.note}`) : null);
  const fig = h('figure', { class: 'chart', 'data-chart': spec.id, 'data-series': spec.series.length }, caption, h('div', { class: 'plot' }), dataTable(spec));
  fig._spec = spec;
  return fig;
}

function xText(spec, v) {
  if (spec.x.categories) return spec.x.categories[v] ?? '';
  if (spec.x.time) return new Date(v * 1000).toISOString().slice(0, 16).replace('T', ' ');
  return num(v);
}

function dataTable(spec) {
  return h(
    'details',
    {},
    h('summary', {}, 'The figures'),
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, spec.x.label), spec.series.map((s) => h('th', { scope: 'col', class: 'num' }, `${s.label} (${spec.y.label})`)))),
      h(
        'tbody',
        {},
        spec.x.values.map((x, i) => h('tr', {}, h('th', { scope: 'row' }, xText(spec, x)), spec.series.map((s) => h('td', { class: 'num' }, num(s.values[i]))))),
      ),
    ),
  );
}

function options(spec, width) {
  const c = colours();
  const axis = (label) => ({ label, stroke: c.fg, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 } });
  const n = spec.x.values.length;
  const xScale = spec.x.categories
    ? { time: false, range: () => [-0.5, n - 0.5] }
    : spec.x.time
      ? { time: true }
      : spec.x.log
        ? { time: false, distr: 3, log: 2 }
        : { time: false };
  return {
    width,
    height: 260,
    scales: { x: xScale, y: spec.y.log ? { distr: 3, log: 10 } : { range: (u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.1 : 1] } },
    axes: [
      {
        ...axis(spec.x.label),
        ...(spec.x.categories ? { splits: () => spec.x.values, values: (u, splits) => splits.map((v) => spec.x.categories[v] ?? '') } : {}),
        ...(!spec.x.categories && !spec.x.time ? { splits: () => spec.x.values, values: (u, splits) => splits.map((v) => num(v)) } : {}),
      },
      // On a log scale only the decades are labelled (uPlot splits every unit between them).
      { ...axis(spec.y.label), size: 60, values: (u, splits) => splits.map((v) => (!spec.y.log || Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9 ? num(v) : '')) },
    ],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [
      { label: spec.x.label, value: (u, v) => xText(spec, v) },
      ...spec.series.map((s, i) => ({
        label: s.label,
        stroke: c.series[i % c.series.length],
        width: s.style === 'points' ? 0 : 2,
        dash: DASH[s.style],
        spanGaps: true,
        ...(s.style === 'points' ? { paths: () => null } : {}),
        points: { show: true, size: 5 + 3 * i, stroke: c.series[i % c.series.length], fill: c.series[i % c.series.length] },
        value: (u, v) => num(v),
      })),
    ],
  };
}

function draw(fig) {
  const spec = fig._spec;
  const holder = fig.querySelector('.plot');
  if (fig._plot) fig._plot.destroy();
  holder.replaceChildren();
  const width = Math.max(280, Math.floor(holder.clientWidth || fig.clientWidth || 500));
  const data = [spec.x.values, ...spec.series.map((s) => s.values)];
  fig._plot = new globalThis.uPlot(options(spec, width), data, holder);
  live.add(fig);
}

/** Draws every chart figure under `root` that is not drawn yet. */
export function drawCharts(root) {
  if (typeof globalThis.uPlot !== 'function') throw new Error('the charting library (/vendor/uplot.js) did not load');
  for (const fig of root.querySelectorAll('figure.chart')) if (!fig._plot) draw(fig);
}

/** Draws every chart again (the theme changed, the window was resized). */
export function redrawCharts() {
  for (const fig of [...live]) {
    if (!fig.isConnected) {
      fig._plot?.destroy();
      live.delete(fig);
      continue;
    }
    draw(fig);
  }
}

let resizeTimer;
globalThis.addEventListener?.('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(redrawCharts, 200);
});
