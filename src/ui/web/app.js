// The results UI: a page per route (#/, #/run/ID, #/compare/RUN/BASELINE, #/trends, #/schedule/ID), the live
// events over a WebSocket (/api/events), and the theme (system, light or dark, kept in
// localStorage). Nothing here writes to the server: the API is read-only.
import { redrawCharts } from './charts.js';
import { errorBox, replace } from './dom.js';
import { comparePage, runPage, runsPage, schedulePage, trendsPage } from './pages.js';

const main = document.getElementById('main');
const connection = document.getElementById('connection');
let onEvent = null;
let generation = 0;

async function show() {
  const mine = ++generation;
  const hash = location.hash || '#/';
  const parts = hash.slice(2).split('/').map(decodeURIComponent);
  onEvent = null;
  try {
    let handler;
    if (hash === '#/' || hash === '#') handler = await runsPage(main);
    else if (parts[0] === 'run' && parts[1]) handler = await runPage(main, parts[1]);
    else if (parts[0] === 'compare' && parts[1] && parts[2]) handler = await comparePage(main, parts[1], parts[2], parts[3] === 'force');
    else if (parts[0] === 'trends') handler = await trendsPage(main);
    else if (parts[0] === 'schedule' && parts[1]) handler = await schedulePage(main, parts[1]);
    else throw new Error(`no page ${hash.slice(0, 80)}`);
    if (mine === generation) onEvent = handler;
  } catch (err) {
    if (mine === generation) replace(main, errorBox('This page could not be shown', err instanceof Error ? err.message : String(err)));
  }
  document.body.dataset.ready = String(mine);
}

async function dispatch(e) {
  if (!onEvent) return;
  try {
    if ((await onEvent(e)) === 'reload') await show();
  } catch (err) {
    replace(main, errorBox('This page could not be updated', err instanceof Error ? err.message : String(err)));
  }
}

let retry = 500;
function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/events`);
  ws.onopen = () => {
    retry = 500;
    connection.textContent = '● live';
    connection.dataset.state = 'live';
  };
  ws.onmessage = (m) => {
    let e;
    try {
      e = JSON.parse(m.data);
    } catch {
      return;
    }
    void dispatch(e);
  };
  ws.onclose = () => {
    connection.textContent = '○ not live: reconnecting';
    connection.dataset.state = 'closed';
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10_000);
  };
}

const THEMES = ['system', 'light', 'dark'];
const themeButton = document.getElementById('theme');
function applyTheme(theme) {
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  themeButton.textContent = `Theme: ${theme}`;
}
let theme = THEMES.includes(localStorage.getItem('swarmbench-theme')) ? localStorage.getItem('swarmbench-theme') : 'system';
applyTheme(theme);
themeButton.addEventListener('click', () => {
  theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  localStorage.setItem('swarmbench-theme', theme);
  applyTheme(theme);
  redrawCharts();
});
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => redrawCharts());

addEventListener('hashchange', () => void show());
connect();
void show();
