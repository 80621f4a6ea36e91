// The pages: the runs table, one run, a comparison of two runs, the trends, a schedule's trends. Each page renders into
// `main` from this server's JSON API and returns a handler for the live events (src/ui/source.ts
// `UiEvent`) while it is shown.
import { chartFigure, drawCharts } from './charts.js';
import { badge, CATEGORY_ORDER, durationText, errorBox, getJson, h, num, pct, replace, signed, targetText, valueText, when } from './dom.js';

const PHASES = ['Running', 'Pending', 'Succeeded', 'Failed', 'Cancelled', 'Unreadable'];
const FINISHED = new Set(['Succeeded', 'Failed', 'Cancelled']);

const progressText = (p) => `${p.completed}/${p.total} steps${p.current ? ` · ${p.current}` : ''}${p.detail ? `: ${p.detail}` : ''}`;

function progressCell(row) {
  if (!row.progress || !['Running', 'Pending'].includes(row.phase)) return h('td', { class: 'progress' }, '—');
  const p = row.progress;
  const text = progressText(p);
  return h(
    'td',
    { class: 'progress', 'data-completed': p.completed, 'data-total': p.total },
    h('progress', { max: p.total, value: p.completed, 'aria-label': `${p.completed} of ${p.total} steps done` }),
    h('span', { class: 'progress-text' }, text),
  );
}

function runRow(row) {
  const name = row.namespace ? `${row.namespace}/${row.name}` : row.name;
  return h(
    'tr',
    { 'data-run-id': row.id, 'data-phase': row.phase },
    h('td', {}, row.namespace || '—'),
    h(
      'th',
      { scope: 'row' },
      h('a', { href: `#/run/${row.id}`, 'aria-label': `run ${name}` }, row.name),
      row.attempt > 1 ? h('span', { class: 'muted' }, ` #${row.attempt}`) : null,
      row.error ? h('span', { class: 'progress-text' }, row.error) : null,
      row.schedule ? h('a', { class: 'schedule-link', href: `#/schedule/${row.schedule.id}`, 'aria-label': `schedule ${row.schedule.name}` }, `schedule ${row.schedule.name}`) : null,
    ),
    h('td', {}, badge(row.phase)),
    progressCell(row),
    h('td', {}, row.verdict ? badge(row.verdict) : '—', row.regressions ? h('span', { class: 'muted' }, ` · ${row.regressions} regressed`) : null),
    h('td', { class: 'num' }, row.successRate === null ? '—' : `${row.successRate.toFixed(1)} %`, row.total !== null && row.passed !== null && FINISHED.has(row.phase) ? h('span', { class: 'muted' }, ` (${row.passed}/${row.total})`) : null),
    h('td', {}, when(row.startedAt)),
    h('td', { class: 'num' }, durationText(row.durationMs)),
  );
}

/** The runs table, filterable, kept up to date by the events. */
export async function runsPage(main) {
  let data = await getJson('/api/runs');
  const schedules = data.schedules ?? [];
  const filter = { text: '', phase: '', verdict: '' };
  const tbody = h('tbody');
  const caption = h('caption', { 'aria-live': 'polite' });
  const problems = h('div');
  const compareBox = h('div');

  const matches = (r) =>
    (!filter.text || `${r.namespace}/${r.name}`.toLowerCase().includes(filter.text.toLowerCase())) &&
    (!filter.phase || r.phase === filter.phase) &&
    (!filter.verdict || r.verdict === filter.verdict);

  function render() {
    const shown = data.runs.filter(matches);
    replace(tbody, shown.map(runRow));
    replace(caption, `${shown.length} of ${data.runs.length} runs`);
    replace(problems, data.problems.map((p) => errorBox('A folder could not be read', p)));
    replace(compareBox, comparePicker(data.runs));
  }

  const input = h('input', { type: 'search', id: 'filter-text', placeholder: 'namespace/name', oninput: (e) => ((filter.text = e.target.value), render()) });
  const select = (id, values, key) =>
    h('select', { id, onchange: (e) => ((filter[key] = e.target.value), render()) }, h('option', { value: '' }, 'all'), values.map((v) => h('option', { value: v }, v)));
  replace(
    main,
    h('h1', {}, 'Runs'),
    h('p', { class: 'muted' }, data.title),
    problems,
    h(
      'div',
      { class: 'filters', role: 'search' },
      h('label', { for: 'filter-text' }, 'Name', input),
      h('label', { for: 'filter-phase' }, 'Phase', select('filter-phase', PHASES, 'phase')),
      h('label', { for: 'filter-verdict' }, 'Verdict', select('filter-verdict', ['Passed', 'Failed'], 'verdict')),
    ),
    h(
      'table',
      { id: 'runs' },
      caption,
      h(
        'thead',
        {},
        h('tr', {}, ['Namespace', 'Name', 'Phase', 'Progress', 'Verdict', 'Success rate', 'Started', 'Duration'].map((c) => h('th', { scope: 'col', class: c === 'Success rate' || c === 'Duration' ? 'num' : null }, c))),
      ),
      tbody,
    ),
    compareBox,
    schedules.length
      ? h(
          'section',
          { 'aria-labelledby': 'schedules-title', id: 'schedules' },
          h('h2', { id: 'schedules-title' }, 'Schedules'),
          h('ul', {}, schedules.map((sc) => h('li', { 'data-schedule-id': sc.id }, h('a', { href: `#/schedule/${sc.id}` }, `${sc.namespace}/${sc.name}`), h('span', { class: 'muted' }, ` · its trends (${sc.source})`)))),
        )
      : null,
  );
  render();
  performance.mark('runs-rendered');

  return async (e) => {
    if (e.type === 'row') {
      const i = data.runs.findIndex((r) => r.id === e.row.id);
      if (i >= 0) data.runs[i] = e.row;
      else data.runs.unshift(e.row);
      const old = tbody.querySelector(`tr[data-run-id="${CSS.escape(e.row.id)}"]`);
      if (old && matches(e.row)) old.replaceWith(runRow(e.row));
      else render();
    } else if (e.type === 'list') {
      data = await getJson('/api/runs');
      render();
    }
  };
}

function comparePicker(runs) {
  const finished = runs.filter((r) => FINISHED.has(r.phase));
  if (finished.length < 2) return null;
  const option = (r) => h('option', { value: r.id }, `${r.namespace ? `${r.namespace}/` : ''}${r.name} · ${when(r.startedAt)}`);
  const run = h('select', { id: 'compare-run' }, finished.map(option));
  const base = h('select', { id: 'compare-baseline' }, finished.map(option));
  base.selectedIndex = 1;
  return h(
    'section',
    { 'aria-labelledby': 'compare-title' },
    h('h2', { id: 'compare-title' }, 'Compare two runs'),
    h(
      'div',
      { class: 'compare-pick' },
      h('label', { for: 'compare-run' }, 'This run ', run),
      h('label', { for: 'compare-baseline' }, 'against the baseline ', base),
      h('button', { type: 'button', onclick: () => (location.hash = `#/compare/${run.value}/${base.value}`) }, 'Compare'),
    ),
  );
}

function testsTable(tests, caption) {
  return h(
    'table',
    { class: 'tests' },
    h('caption', {}, caption),
    h(
      'thead',
      {},
      h('tr', {}, ['Test', 'Result', 'Value', 'Target', 'Statistic', 'Samples', 'p50 / p95 / p99', 'Reason'].map((c) => h('th', { scope: 'col', class: ['Value', 'Samples', 'p50 / p95 / p99'].includes(c) ? 'num' : null }, c))),
    ),
    h(
      'tbody',
      {},
      tests.map((t) =>
        h(
          'tr',
          { 'data-test': t.id, 'data-result': t.result },
          h('th', { scope: 'row' }, `${t.id} ${t.name}`),
          h('td', {}, badge(t.result)),
          h('td', { class: 'num value', 'data-value': t.value === null ? 'null' : String(t.value) }, valueText(t)),
          h('td', {}, `${targetText(t)} ${t.unit}`),
          h('td', {}, t.statistic),
          h('td', { class: 'num samples' }, `${t.samples}${t.sampleUnit ? ` ${t.sampleUnit}` : ''}`),
          h('td', { class: 'num' }, t.distribution ? `${num(t.distribution.p50)} / ${num(t.distribution.p95)} / ${num(t.distribution.p99)}` : '—'),
          h('td', { class: 'reason' }, t.result === 'Passed' ? '' : (t.reason ?? '')),
        ),
      ),
    ),
  );
}

function testsByCategory(tests) {
  return CATEGORY_ORDER.flatMap((cat) => {
    const of = tests.filter((t) => t.category === cat);
    if (!of.length) return [];
    const passed = of.filter((t) => t.result === 'Passed').length;
    return [testsTable(of, `${cat}: ${passed}/${of.length} passed`)];
  });
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function comparisonTable(c) {
  const rows = c.metrics.map((m) =>
    h(
      'tr',
      { 'data-test': m.id, 'data-verdict': m.verdict },
      h('th', { scope: 'row' }, `${m.id} ${m.name}`),
      h('td', {}, badge(m.verdict)),
      h('td', { class: 'num' }, `${num(m.baseline.median)} (n=${m.baseline.n})`),
      h('td', { class: 'num' }, `${num(m.current.median)} (n=${m.current.n})`),
      h('td', { class: 'num' }, m.shift === null ? '—' : `${signed(m.shift)} ${m.unit}`),
      h('td', { class: 'num' }, m.ci ? `[${signed(m.ci[0])}, ${signed(m.ci[1])}]` : '—'),
      h('td', { class: 'num' }, pct(m.changePct)),
      h('td', { class: 'num' }, m.p === null ? '—' : m.p < 0.001 ? m.p.toExponential(1) : m.p.toFixed(3)),
      h('td', {}, `${m.better} is better${m.gated ? '' : ' (not gated)'}`),
      h('td', { class: 'reason' }, m.note ?? ''),
    ),
  );
  return h(
    'div',
    {},
    h('p', {}, `${c.regressed.length} regressed, ${c.improved.length} improved, ${c.unchanged.length} unchanged, ${c.insufficient.length} with too few samples; Mann–Whitney U at α=${c.method.alpha}, Hodges–Lehmann shift with its ${Math.round(c.method.confidence * 100)} % interval, at least ${c.method.minEffectPct} % and ${c.method.minSamples} samples.`),
    c.warnings.length ? h('ul', { class: 'warnings' }, c.warnings.map((w) => h('li', {}, `⚠ ${w}`))) : null,
    h(
      'table',
      { class: 'comparison' },
      h('caption', {}, `Against ${c.baseline.name} (attempt ${c.baseline.attempt}, ${c.baseline.mode}, started ${when(c.baseline.startedAt)})${c.baseline.pool?.length ? ` pooled with ${c.baseline.pool.map((r) => r.name).join(', ')}` : ''}${c.baseline.source ? ` · ${c.baseline.source}` : ''}`),
      h('thead', {}, h('tr', {}, ['Test', 'Verdict', 'Baseline median', 'This run median', 'Shift', 'Interval', 'Change', 'p', 'Direction', 'Note'].map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows),
    ),
  );
}

function liveSection(live) {
  const steps = h(
    'ul',
    { class: 'steps', id: 'live-steps' },
    live.steps.map((s) =>
      h(
        'li',
        { 'data-step': s.name, 'data-state': s.state },
        badge({ pending: 'Pending', running: 'Running', done: 'Done', failed: 'Failed' }[s.state]),
        ` ${s.name} (${s.tests.length} tests)`,
        s.detail ? h('span', { class: 'progress-text' }, s.detail) : null,
        s.error ? h('span', { class: 'progress-text' }, s.error) : null,
      ),
    ),
  );
  return h('section', { id: 'live' }, h('h2', {}, 'Steps'), steps, h('h2', {}, `Tests so far (${live.tests.length})`), testsByCategory(live.tests));
}

/** One run: its tests, headline, charts, recommendations, comparison, fingerprint and exports; live while it runs. */
export async function runPage(main, id) {
  const page = await getJson(`/api/runs/${encodeURIComponent(id)}`);
  const row = page.row;
  const title = row.namespace ? `${row.namespace}/${row.name}` : row.name;
  const header = [h('h1', {}, title, ' ', badge(row.phase))];
  if (row.phase === 'Unreadable') {
    replace(main, header, errorBox('This run’s result cannot be read', row.error ?? row.source));
    return null;
  }
  const doc = page.doc;
  const headerFacts = h('div', { id: 'run-facts' });
  const renderFacts = (r) =>
    replace(
      headerFacts,
      facts([
        ['Verdict', r.verdict ? badge(r.verdict) : '—'],
        ['Success rate', r.successRate === null ? '—' : `${r.successRate.toFixed(1)} %${r.total !== null ? ` (${r.passed}/${r.total} passed)` : ''}`],
        ['Progress', r.progress && !FINISHED.has(r.phase) ? progressText(r.progress) : null],
        ['Mode', r.mode],
        ['Attempt', String(r.attempt)],
        ['Started', when(r.startedAt)],
        ['Duration', durationText(r.durationMs)],
        ['Result', r.source],
      ]),
    );
  renderFacts(row);
  const sections = [];
  if (page.live && (!doc || page.live.steps.length)) sections.push(h('div', { id: 'live-holder' }, doc ? null : liveSection(page.live)));
  if (doc) {
    sections.push(
      h('h2', {}, 'Headline metrics'),
      h(
        'div',
        { class: 'cards' },
        page.headline.map((m) =>
          h('div', { class: 'card' }, h('div', { class: 'label' }, m.label, ' ', badge(m.result)), h('div', { class: 'value' }, m.value === null ? '—' : `${num(m.value)} ${m.unit}`), h('div', { class: 'muted' }, `target ${m.target} ${m.unit} · ${m.note}`)),
        ),
      ),
      h('h2', {}, `Tests (${doc.tests.length})`),
      testsByCategory(doc.tests),
      page.charts.length ? [h('h2', {}, 'Charts'), h('div', { class: 'charts' }, page.charts.map((c) => chartFigure(c)))] : null,
      h('h2', {}, 'Recommendations'),
      doc.recommendations?.length
        ? doc.recommendations.map((r) =>
            h(
              'div',
              { class: `rec ${r.priority.toLowerCase()}` },
              h('strong', {}, `${r.priority} · ${r.category}`),
              ' ',
              r.message,
              h('ul', {}, r.evidence.map((e) => h('li', {}, e))),
              h('p', {}, h('em', {}, 'Suggestion: '), r.suggestion),
            ),
          )
        : h('p', { class: 'muted' }, 'None: no rule fired on the measurements.'),
      h('h2', { id: 'comparison' }, 'Baseline comparison'),
      doc.comparison ? comparisonTable(doc.comparison) : h('p', { class: 'muted' }, 'This run was not compared with a baseline. Pick one in the runs table to compare.'),
      h('h2', {}, 'Fingerprint'),
      doc.fingerprint
        ? facts([
            ['Id', doc.fingerprint.id],
            ['SwarmBench', doc.fingerprint.swarmbenchVersion],
            ['Platform', doc.fingerprint.platform],
            ['Node.js', doc.fingerprint.node],
            ['OS', doc.fingerprint.os],
            ['CPU', `${doc.fingerprint.cpus ?? '?'} × ${doc.fingerprint.cpuModel ?? '?'}${doc.fingerprint.effectiveCpus !== undefined ? ` (${num(doc.fingerprint.effectiveCpus)} usable)` : ''}`],
            ['Inference', doc.fingerprint.inference ? `${doc.fingerprint.inference.backend}${doc.fingerprint.inference.gpuInUse ? ' on a GPU' : ''}` : null],
            ['Agents', `${doc.fingerprint.agents.kind}${doc.fingerprint.agents.images.map((i) => ` ${i.image}${i.digest ? `@${i.digest}` : ''}`).join(',')}`],
            ['Nodes', `${doc.fingerprint.nodeCount}: ${doc.fingerprint.nodes.map((n) => n.name).join(', ')}`],
            ['Workload', `${doc.fingerprint.spec.mode}${doc.fingerprint.spec.hash ? ` · ${doc.fingerprint.spec.hash.slice(0, 16)}…` : ''}`],
          ])
        : h('p', { class: 'muted' }, 'This document was written before fingerprints were recorded.'),
      h('h2', {}, 'Environment'),
      facts([
        ['Platform', doc.environment.platform],
        ['Machine', `${doc.environment.cpus} × ${doc.environment.cpuModel}, ${(doc.environment.memoryBytes / 2 ** 30).toFixed(0)} GiB, ${doc.environment.os} ${doc.environment.arch}`],
        ['Node.js', doc.environment.node],
        ['Agent image', doc.environment.agentImage],
        ['Categories', doc.run.categories.join(', ')],
      ]),
    );
  }
  sections.push(
    h('h2', {}, 'Exports'),
    page.exports.length ? h('p', { class: 'exports' }, page.exports.map((f) => h('a', { href: `/api/runs/${encodeURIComponent(id)}/exports/${f}` }, f))) : h('p', { class: 'muted' }, 'No export files yet.'),
  );
  replace(main, header, headerFacts, sections);
  drawCharts(main);

  if (FINISHED.has(row.phase)) return null;
  return async (e) => {
    if (e.type === 'row' && e.row.id === id) {
      if (FINISHED.has(e.row.phase)) return 'reload';
      renderFacts(e.row);
      replace(main.querySelector('h1'), title, ' ', badge(e.row.phase));
    } else if (e.type === 'live' && e.id === id) {
      const holder = main.querySelector('#live-holder');
      if (holder) replace(holder, liveSection(e.live));
    }
  };
}

/** Two runs compared on the server (report/baseline.ts compareRuns). */
export async function comparePage(main, runId, baseId, force) {
  const q = new URLSearchParams({ run: runId, baseline: baseId, ...(force ? { force: '1' } : {}) });
  const r = await getJson(`/api/compare?${q}`);
  const name = (row) => `${row.namespace ? `${row.namespace}/` : ''}${row.name}`;
  const head = [
    h('h1', {}, 'Comparison'),
    h('p', {}, h('a', { href: `#/run/${r.run.id}` }, name(r.run)), ` (${when(r.run.startedAt)}) against `, h('a', { href: `#/run/${r.baseline.id}` }, name(r.baseline)), ` (${when(r.baseline.startedAt)})`),
  ];
  if (!r.ok) {
    replace(main, head, errorBox('These runs were not measured alike, so they are not compared', r.refused), h('p', {}, h('a', { href: `#/compare/${runId}/${baseId}/force` }, 'Compare them anyway'), ' (the differences become warnings).'));
    return null;
  }
  replace(main, head, r.forced ? h('p', { class: 'muted' }, 'Compared although not measured alike.') : null, comparisonTable(r.comparison));
  return null;
}

/** One chart per test, its lasting shift marked; the tests with a shift first. */
function trendFigures(tests) {
  const figures = tests.map((test) => {
    const since = test.shift ? test.points.map((p, i) => (i >= test.shift.index ? p.value : null)) : null;
    const spec = {
      id: `trend-${test.id}`,
      title: `${test.id} ${test.name}`,
      x: { label: 'run started', values: test.points.map((p) => p.time / 1000), time: true },
      y: { label: test.unit },
      series: [{ label: 'value', values: test.points.map((p) => p.value), style: 'line' }, ...(since ? [{ label: `since ${test.shift.run} (${test.shift.direction})`, values: since, style: 'dashed' }] : [])],
    };
    // A shift where the host's load changed too is the machine's (report/trend.ts "The machine changed").
    const machine = test.shift && test.shift.machine;
    const note = !test.shift
      ? `${test.points.length} runs, no lasting shift`
      : machine
        ? `shift from ${test.shift.run}: ${pct(test.shift.changePct)}, p=${test.shift.pAdjusted.toPrecision(2)} (corrected); the machine changed: other processes ${machine.before.toFixed(1)} % → ${machine.after.toFixed(1)} % of the CPUs` +
          (machine.follows
            ? `, and the figure follows them run by run (ρ ${machine.follows.rho.toFixed(2)}); without their part the shift is ${
                machine.follows.adjusted.changePct === null ? 'gone' : pct(machine.follows.adjusted.changePct)
              }`
            : '')
        : `${test.shift.direction === 'worse' ? 'regression' : 'improvement'} from ${test.shift.run}: ${pct(test.shift.changePct)}, p=${test.shift.pAdjusted.toPrecision(2)} (corrected)`;
    const fig = chartFigure(spec, { note });
    fig.setAttribute('data-shift', !test.shift ? 'none' : machine ? 'machine' : test.shift.direction);
    if (test.shift) fig.querySelector('figcaption').append(' ', badge(machine ? 'Machine changed' : test.shift.direction === 'worse' ? 'Regressed' : 'Improved'));
    return { test, fig };
  });
  figures.sort((a, b) => Number(Boolean(b.test.shift)) - Number(Boolean(a.test.shift)));
  return h('div', { class: 'trend-grid' }, figures.map((f) => f.fig));
}

/** Each test's value over the runs, with its lasting shift marked (report/trend.ts). */
export async function trendsPage(main) {
  const t = await getJson('/api/trends');
  replace(
    main,
    h('h1', {}, 'Trends'),
    h('p', { class: 'muted' }, `${t.runs} finished runs; each test's value by run, and the lasting shift where there is one (docs/trends.md): the runs since it against those before, Mann–Whitney U corrected for the splits examined.`),
    t.skipped.map((s) => errorBox('Left out', s)),
    trendFigures(t.tests),
  );
  drawCharts(main);
  return null;
}

/** A schedule: each test's trend over its history (the history ConfigMap), shifts marked, and its runs. */
export async function schedulePage(main, id) {
  const s = await getJson(`/api/schedules/${encodeURIComponent(id)}`);
  const shifted = s.trends.filter((t) => t.shift);
  const runsBody = h('tbody', {}, s.runRows.map(runRow));
  replace(
    main,
    h('h1', {}, `Schedule ${s.row.namespace}/${s.row.name}`),
    h('p', { class: 'muted' }, `${s.runs} runs in its history (${s.row.source}); ${shifted.length ? `${shifted.length} tests moved to a lasting new level` : 'no lasting shift'} (docs/trends.md).`),
    s.problems.map((p) => errorBox('History', p)),
    h('h2', {}, 'Trends'),
    s.trends.length ? trendFigures(s.trends) : h('p', { class: 'muted' }, 'No figures yet.'),
    h('h2', {}, `Runs (${s.runRows.length})`),
    h(
      'table',
      { id: 'schedule-runs' },
      h('thead', {}, h('tr', {}, ['Namespace', 'Name', 'Phase', 'Progress', 'Verdict', 'Success rate', 'Started', 'Duration'].map((c) => h('th', { scope: 'col' }, c)))),
      runsBody,
    ),
  );
  drawCharts(main);
  return async (e) => {
    if (e.type === 'row') {
      const old = runsBody.querySelector(`tr[data-run-id="${CSS.escape(e.row.id)}"]`);
      if (old) old.replaceWith(runRow(e.row));
    } else if (e.type === 'list') return 'reload';
  };
}
