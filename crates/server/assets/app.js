// The sluice dashboard: one page, five views chosen by the URL fragment. It reads only the
// documented API (/api/v1/openapi.json) and follows /api/v1/events for every job change.
// Charts and the map are plain SVG drawn here; no library, no build step.
'use strict';

// ---- errors the browser tests read (window.__dash.errors) ----
const DASH = (window.__dash = { errors: [], ready: null });
window.addEventListener('error', (e) => DASH.errors.push(String(e.message || e)));
document.addEventListener('securitypolicyviolation', (e) => DASH.errors.push('CSP: ' + e.violatedDirective + ' ' + e.blockedURI));
window.addEventListener('unhandledrejection', (e) => DASH.errors.push('unhandled: ' + String(e.reason)));
const consoleError = console.error.bind(console);
console.error = (...a) => { DASH.errors.push(a.map(String).join(' ')); consoleError(...a); };

// ---- small helpers ----
const $ = (sel, root = document) => root.querySelector(sel);
const SVGNS = 'http://www.w3.org/2000/svg';
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const k of kids.flat()) if (k != null) e.append(k instanceof Node ? k : String(k));
  return e;
}
function s(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  for (const k of kids.flat()) if (k != null) e.append(k instanceof Node ? k : String(k));
  return e;
}
// Replaces el's children, skipping null/undefined (replaceChildren would print them).
function put(el, ...kids) { el.replaceChildren(...kids.flat().filter((k) => k != null)); }
function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
}
const fmt = new Intl.NumberFormat('en');
const num = (v, d = 0) => (v == null || Number.isNaN(v) ? '–' : fmt.format(Number(v.toFixed ? v.toFixed(d) : v)));
function bytes(n) {
  if (n == null) return '–';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}
function ago(iso) {
  if (!iso) return '–';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 90) return Math.max(0, Math.round(s)) + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  if (s < 129600) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' days ago';
}
const isoMin = (iso) => (iso ? iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z').replace(/(\d\d:\d\d)Z$/, '$1 UTC') : '–');
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#9333ea', '#475569'];

function flash(msg) {
  const f = $('#flash');
  if (!msg) { f.hidden = true; return; }
  f.textContent = msg;
  f.hidden = false;
}

// ---- API access (token in sessionStorage; JSON bodies with their content type) ----
const tokenInput = $('#token');
tokenInput.value = sessionStorage.getItem('sluice.token') || '';
tokenInput.addEventListener('change', () => sessionStorage.setItem('sluice.token', tokenInput.value.trim()));
function authHeaders() {
  const t = (sessionStorage.getItem('sluice.token') || '').trim();
  return t ? { Authorization: 'Bearer ' + t } : {};
}
async function problem(res) {
  let detail = res.status + ' ' + res.statusText;
  try { const p = await res.json(); detail = p.detail || p.title || detail; } catch (_) { /* not JSON */ }
  return new Error(detail);
}
async function api(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw await problem(res);
  return res.json();
}
async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders() },
    body: JSON.stringify(body ?? {}),
  });
  if (!res.ok) throw await problem(res);
  return res.json();
}
function fail(where) {
  return (e) => { flash(where + ': ' + e.message); console.error(where + ': ' + e.message); };
}

// ---- live job events: one EventSource for the whole page ----
const jobs = new Map(); // id -> job
const jobListeners = new Set();
function onJob(fn) { jobListeners.add(fn); return () => jobListeners.delete(fn); }
function applyJob(job, kind) {
  const prev = jobs.get(job.id);
  // Listed jobs (/api/v1/jobs) come without per-file results and rejections: keep those
  // already known for the same counts.
  const ps = prev && prev.summary, js = job.summary;
  if (ps && js && !(js.rejections || []).length && (ps.rejections || []).length && js.rows_rejected === ps.rows_rejected) {
    js.rejections = ps.rejections;
    if (!(js.files || []).length) js.files = ps.files;
  }
  const now = performance.now();
  if (prev && prev._t && job.progress && prev.progress && job.progress.done > prev.progress.done) {
    const dt = (now - prev._t) / 1000;
    if (dt > 0) job._rate = (job.progress.done - prev.progress.done) / dt;
  } else if (prev) job._rate = prev._rate;
  job._t = now;
  jobs.set(job.id, job);
  for (const fn of jobListeners) fn(job, kind);
}
function connectEvents() {
  const live = $('#live');
  const es = new EventSource('/api/v1/events');
  // Leaving the page ends the stream at once: a stream left open would hold one of the
  // browser's few connections to this host (HTTP/1.1) until the server notices.
  window.addEventListener('pagehide', () => es.close());
  let opened = false;
  es.onopen = () => {
    live.textContent = '● live';
    live.classList.add('on');
    // Events sent while we were away are gone: re-read the recent jobs once reconnected.
    if (opened) api('/api/v1/jobs?limit=50').then((list) => list.reverse().forEach((j) => applyJob(j, 'job.snapshot'))).catch(fail('jobs'));
    opened = true;
  };
  es.onerror = () => { live.textContent = '○ reconnecting'; live.classList.remove('on'); };
  for (const k of ['job.queued', 'job.running', 'job.progress', 'job.succeeded', 'job.failed', 'job.cancelled', 'job.snapshot']) {
    es.addEventListener(k, (m) => {
      try { applyJob(JSON.parse(m.data).job, k); } catch (e) { console.error('bad event: ' + e); }
    });
  }
}
const terminal = (st) => st === 'succeeded' || st === 'failed' || st === 'cancelled';

// A progress bar element that follows one job.
function jobBar(job) {
  const bar = h('div', { class: 'bar' }, h('div'));
  updateBar(bar, job);
  return bar;
}
function updateBar(bar, job) {
  const p = job.progress || {};
  const fill = bar.firstChild;
  bar.classList.toggle('done', job.state === 'succeeded');
  bar.classList.toggle('failed', job.state === 'failed' || job.state === 'cancelled');
  const indet = !terminal(job.state) && !p.total;
  bar.classList.toggle('indet', indet);
  let pct = p.total ? (100 * p.done) / p.total : 0;
  if (terminal(job.state)) pct = 100;
  if (!indet) fill.style.width = Math.min(100, pct).toFixed(1) + '%';
  bar.dataset.state = job.state;
  bar.dataset.pct = pct.toFixed(1);
}

function jobItem(job) {
  const li = h('li', { class: 'job', 'data-job': job.id });
  renderJobItem(li, job);
  return li;
}
function renderJobItem(li, job) {
  const p = job.progress || {};
  const sum = job.summary || {};
  const extra = sum.extra || {};
  const rate = extra.rows_per_second != null ? num(extra.rows_per_second) + ' rows/s'
    : job._rate && !terminal(job.state) ? num(job._rate) + ' ' + (p.unit || '') + '/s' : '';
  const files = (sum.files || []).length;
  li.replaceChildren(...[
    h('div', { class: 'head' },
      h('b', null, job.domain + ' ' + job.kind),
      h('span', { class: 'state ' + job.state, 'data-state': job.state }, job.state),
      h('span', { class: 'muted' }, p.total ? `${num(p.done)} / ${num(p.total)} ${p.unit}` : p.done ? `${num(p.done)} ${p.unit}` : ''),
      h('span', { class: 'muted' }, rate),
      h('span', { class: 'id' }, job.id.slice(0, 8))),
    jobBar(job),
    terminal(job.state)
      ? h('div', { class: 'muted' },
        job.error ? h('span', { class: 'state failed' }, job.error) : null,
        ` ${files ? files + ' file(s), ' : ''}${num(sum.rows_accepted || 0)} rows accepted, ${num(sum.rows_rejected || 0)} rejected` +
        (job.finished_at && job.started_at ? ` in ${((Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000).toFixed(2)} s` : ''))
      : null,
    (sum.rejections || []).length
      ? h('ul', { class: 'rej' }, sum.rejections.slice(0, 3).map((r) => h('li', null, `${r.file}:${r.line} ${r.reason}`)))
      : null,
  ].filter(Boolean));
}

// ---- charts: time series as SVG paths, one <path class="series"> per series ----
function niceTicks(lo, hi, n) {
  if (hi <= lo) hi = lo + 1;
  const step0 = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(v);
  return out;
}
function shortNum(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
  if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + 'k';
  return String(Math.round(v * 100) / 100);
}
// xs: numbers (ms since epoch, or indexes); series: [{name, values: [number|null]}]
function lineChart({ xs, series, width = 900, height = 280, xLabel = (x) => x, yTitle = '' }) {
  const m = { l: 56, r: 28, t: 14, b: 28 };
  const W = width - m.l - m.r, H = height - m.t - m.b;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, class: 'chart', 'data-series': series.length });
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const all = series.flatMap((sr) => sr.values.filter((v) => v != null));
  const yMax = all.length ? Math.max(...all) : 1;
  let yt = niceTicks(0, yMax * 1.05, 5);
  const step = yt.length > 1 ? yt[1] - yt[0] : 1;
  while (yt[yt.length - 1] < yMax) yt = [...yt, yt[yt.length - 1] + step];
  const y1 = yt[yt.length - 1] || 1;
  const X = (x) => m.l + (x1 === x0 ? W / 2 : ((x - x0) / (x1 - x0)) * W);
  const Y = (y) => m.t + H - (y / y1) * H;
  const grid = s('g', { class: 'grid' });
  const axis = s('g', { class: 'axis' });
  for (const v of yt) {
    grid.append(s('line', { x1: m.l, x2: m.l + W, y1: Y(v), y2: Y(v) }));
    axis.append(s('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end' }, shortNum(v)));
  }
  const nx = Math.min(xs.length, 8);
  for (let i = 0; i < nx; i++) {
    const x = xs[Math.round((i * (xs.length - 1)) / Math.max(1, nx - 1))];
    axis.append(s('text', { x: X(x), y: m.t + H + 18, 'text-anchor': 'middle' }, xLabel(x)));
  }
  axis.append(s('line', { x1: m.l, x2: m.l + W, y1: m.t + H, y2: m.t + H }));
  if (yTitle) axis.append(s('text', { x: 4, y: 10 }, yTitle));
  svg.append(grid, axis);
  series.forEach((sr, i) => {
    let d = '';
    let pen = false;
    sr.values.forEach((v, j) => {
      if (v == null) { pen = false; return; }
      d += (pen ? 'L' : 'M') + X(xs[j]).toFixed(1) + ' ' + Y(v).toFixed(1);
      pen = true;
    });
    const path = s('path', { class: 'series', d, stroke: COLORS[i % COLORS.length], 'data-name': sr.name }, s('title', null, sr.name));
    svg.append(path);
  });
  const legend = h('div', { class: 'legend' },
    series.map((sr, i) => h('span', null, h('i', { class: 'sw' }), sr.name)));
  legend.querySelectorAll('i.sw').forEach((el, i) => { el.style.background = COLORS[i % COLORS.length]; });
  return h('div', { class: 'chartbox' }, svg, legend);
}

function tableOf(cols, rows, attrs) {
  return h('table', attrs,
    h('thead', null, h('tr', null, cols.map((c) => h('th', { class: c.num ? 'num' : null }, c.title)))),
    h('tbody', null, rows.map((r) => h('tr', null, cols.map((c) => h('td', { class: c.num ? 'num' : null }, c.show ? c.show(r) : r[c.key]))))));
}
// ---- views ----
let teardown = [];
function ready(view) { DASH.ready = view; document.body.dataset.ready = view; }
function unready() { DASH.ready = null; delete document.body.dataset.ready; }
const views = { overview, network, trips, streams, uptime };
function route() {
  for (const t of teardown) t();
  teardown = [];
  flash(null);
  unready();
  const name = (location.hash.replace(/^#\/?/, '').split('?')[0]) || 'overview';
  const view = views[name] || overview;
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.view === (views[name] ? name : 'overview')));
  const main = $('#main');
  main.replaceChildren();
  view(main).catch(fail(name));
}

// Overview: each domain's data, the live job feed, drag-and-drop uploads.
async function overview(main) {
  const cards = h('div', { class: 'cards', id: 'domains' });
  const feed = h('ul', { class: 'jobs', id: 'feed' });
  const domainSel = h('select', { id: 'upload-domain' }, ['network', 'trips', 'uptime'].map((d) => h('option', { value: d }, d)));
  const picker = h('input', { type: 'file', id: 'upload-file', multiple: true });
  const drop = h('div', { class: 'drop', id: 'drop' }, 'Drop CSV files here (or ', picker, ') to upload them to ', domainSel);
  const uploads = h('ul', { class: 'uploads', id: 'uploads' });
  main.append(h('h2', null, 'Overview'), cards,
    h('div', { class: 'row' },
      h('section', { class: 'grow' }, h('h3', null, 'Upload'), drop, uploads),
      h('section', { class: 'grow' }, h('h3', null, 'Jobs (live)'), feed)));

  const upload = (file) => uploadFile(domainSel.value, file, uploads);
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); [...e.dataTransfer.files].forEach(upload); });
  picker.addEventListener('change', () => { [...picker.files].forEach(upload); picker.value = ''; });

  const list = await api('/api/v1/jobs?limit=20');
  const items = new Map();
  for (const j of list) { applyJob(j, 'job.snapshot'); }
  const show = (j) => {
    let li = items.get(j.id);
    if (!li) {
      li = jobItem(j);
      items.set(j.id, li);
      feed.prepend(li);
      while (feed.children.length > 30) { const last = feed.lastChild; items.delete(last.dataset.job); last.remove(); }
    } else renderJobItem(li, j);
  };
  for (const j of [...list].reverse()) show(jobs.get(j.id));
  // The list leaves out the first rejections: read them for the jobs that rejected rows.
  for (const j of list.filter((x) => terminal(x.state) && x.summary && x.summary.rows_rejected > 0)) {
    api('/api/v1/jobs/' + j.id).then((full) => applyJob(full, 'job.snapshot')).catch(fail('jobs'));
  }
  let refresh = null;
  teardown.push(onJob((j) => {
    show(j);
    if (terminal(j.state)) { clearTimeout(refresh); refresh = setTimeout(() => domainCards(cards).catch(fail('overview')), 500); }
  }));
  teardown.push(() => clearTimeout(refresh));
  await domainCards(cards);
  ready('overview');
}

async function domainCards(cards) {
  const files = (d) => api(`/api/v1/${d}/files?limit=1000`);
  const [nf, nk, tc, tf, tw, sr, us, uf] = await Promise.all([
    files('network'),
    api('/api/v1/network/kpis/top_services?interval=1h&limit=1&page_size=1000'),
    api('/api/v1/trips/counts?by=region'),
    files('trips'),
    api('/api/v1/trips/weekly-average?bbox=-180,-90,180,90&match=either&weeks=span'),
    api('/api/v1/streams/runs?limit=50'),
    api('/api/v1/uptime/summary'),
    files('uptime'),
  ]);
  const latest = (fs) => fs.reduce((m, f) => (f.ingested_at > m ? f.ingested_at : m), '');
  const card = (name, rows) => h('div', { class: 'card', 'data-domain': name },
    h('h3', null, h('a', { href: '#/' + name }, name)),
    h('dl', null, rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])));
  const ni = nk.items;
  const runs = sr.runs;
  cards.replaceChildren(
    card('network', [
      ['files', num(nf.length) + (nf.length >= 1000 ? '+' : '')],
      ['rows', num(nf.reduce((a, f) => a + f.rows_accepted, 0))],
      ['hours', num(ni.length)],
      ['range', ni.length ? `${isoMin(ni[0].interval_start)} → ${isoMin(ni[ni.length - 1].interval_end)}` : '–'],
      ['fresh', ago(latest(nf))]]),
    card('trips', [
      ['trips', num(tc.reduce((a, r) => a + r.trips, 0))],
      ['regions', num(tc.length)],
      ['weeks', tw.trips ? `${tw.from_week} → ${tw.to_week}` : '–'],
      ['files', num(tf.length)],
      ['fresh', ago(latest(tf))]]),
    card('streams', [
      ['runs', num(runs.length) + (runs.length >= 50 ? '+' : '')],
      ['events', num(runs.reduce((a, r) => a + (r.events_total || 0), 0))],
      ['range', runs.length ? `${isoMin(runs[runs.length - 1].started_at)} → ${isoMin(runs[0].finished_at || runs[0].started_at)}` : '–'],
      ['fresh', ago(runs.length ? runs[0].finished_at || runs[0].started_at : null)]]),
    card('uptime', [
      ['stores', num(us.stores)],
      ['polls', num(us.polls)],
      ['latest poll', isoMin(us.latest_poll)],
      ['files', num(uf.length)],
      ['fresh', ago(latest(uf))]]),
  );
}

function uploadFile(domain, file, into) {
  const bar = h('div', { class: 'bar' }, h('div'));
  const status = h('span', { class: 'state queued', 'data-state': 'uploading' }, 'uploading');
  const li = h('li', { class: 'job upload', 'data-name': file.name }, h('div', { class: 'head' }, h('b', null, file.name), status, h('span', { class: 'muted' }, bytes(file.size) + ' → ' + domain)), bar);
  into.prepend(li);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', `/api/v1/${domain}/uploads?name=${encodeURIComponent(file.name)}`);
  const type = /\.gz$/i.test(file.name) ? 'application/gzip' : 'text/csv';
  xhr.setRequestHeader('Content-Type', type);
  xhr.setRequestHeader('Accept', 'application/json');
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.addEventListener('progress', (e) => {
    if (e.lengthComputable) { bar.firstChild.style.width = ((100 * e.loaded) / e.total).toFixed(1) + '%'; bar.dataset.pct = ((100 * e.loaded) / e.total).toFixed(1); }
  });
  // Every state this upload went through, for whoever reads the page (and the browser tests).
  li.dataset.seen = 'uploading';
  const setState = (st, text) => {
    if (!li.dataset.seen.split(',').includes(st)) li.dataset.seen += ',' + st;
    status.className = 'state ' + st; status.dataset.state = st; status.textContent = text || st;
  };
  xhr.addEventListener('load', () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status >= 300 || !body) { setState('failed', 'failed: ' + ((body && body.detail) || xhr.status)); return; }
    const job = body.job || body;
    li.dataset.job = job.id;
    const follow = (j) => {
      if (j.id !== job.id) return;
      updateBar(bar, j);
      setState(j.state);
      if (terminal(j.state)) {
        const sm = j.summary || {};
        li.append(h('div', { class: 'muted' }, `${num(sm.rows_accepted || 0)} rows accepted, ${num(sm.rows_rejected || 0)} rejected` + (j.error ? ' — ' + j.error : '')));
        off();
      }
    };
    const off = onJob(follow);
    follow(jobs.get(job.id) && terminal(jobs.get(job.id).state) ? jobs.get(job.id) : job);
    // The job may have finished before its events reached us: read its stored state once.
    api('/api/v1/jobs/' + job.id).then((j) => { if (!terminal(status.dataset.state)) { applyJob(j, 'job.snapshot'); } }).catch(fail('upload'));
  });
  xhr.addEventListener('error', () => setState('failed', 'failed: network error'));
  xhr.send(file);
}

// network: top-N services and cells over a day.
async function network(main) {
  const hourly = await api('/api/v1/network/kpis/top_services?interval=1h&limit=1&page_size=1000');
  const days = [...new Set(hourly.items.map((i) => i.interval_start.slice(0, 10)))].sort();
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const day = h('select', { id: 'net-day' }, days.map((d) => h('option', { value: d }, d)));
  day.value = q.get('day') || days[days.length - 1] || '';
  const hours = [...Array(25).keys()].map((i) => String(i).padStart(2, '0') + ':00');
  const from = h('select', { id: 'net-from' }, hours.slice(0, 24).map((t) => h('option', { value: t }, t)));
  const to = h('select', { id: 'net-to' }, hours.slice(1).map((t) => h('option', { value: t }, t === '24:00' ? '24:00' : t)));
  from.value = '00:00';
  to.value = '24:00';
  const interval = h('select', { id: 'net-interval' }, h('option', { value: '5m' }, '5 minutes'), h('option', { value: '1h' }, 'hourly'));
  interval.value = q.get('interval') || '5m';
  const n = h('select', { id: 'net-n' }, [...Array(10).keys()].map((i) => h('option', { value: i + 1 }, i + 1)));
  n.value = q.get('n') || '5';
  const out = h('div', { id: 'net-out' });
  main.append(h('h2', null, 'network'),
    h('div', { class: 'controls' },
      h('label', null, 'day', day), h('label', null, 'from', from), h('label', null, 'to', to),
      h('label', null, 'interval', interval), h('label', null, 'top N', n)),
    out);
  if (!days.length) { out.append(h('p', { class: 'muted' }, 'No network data yet: upload flow files on the overview.')); ready('network'); return; }
  let seq = 0;
  const load = async () => {
    const my = ++seq;
    const d = day.value;
    const endDay = to.value === '24:00' ? new Date(Date.parse(d + 'T00:00:00Z') + 86400e3).toISOString().slice(0, 10) + 'T00:00:00Z' : `${d}T${to.value}:00Z`;
    const qs = `from=${d}T${from.value}:00Z&to=${endDay}&interval=${interval.value}&limit=${n.value}&page_size=1000`;
    const [sv, cl] = await Promise.all([api('/api/v1/network/kpis/top_services?' + qs), api('/api/v1/network/kpis/top_cells?' + qs)]);
    if (my !== seq) return;
    out.replaceChildren(
      kpiSection('Top services by bytes', 'services', sv.items, 'service_id', 'total_bytes', 'bytes', '/api/v1/network/kpis/top_services?' + qs),
      kpiSection('Top cells by unique users', 'cells', cl.items, 'cell_id', 'unique_users', 'users', '/api/v1/network/kpis/top_cells?' + qs));
    ready('network');
  };
  for (const c of [day, from, to, interval, n]) c.addEventListener('change', () => { unready(); load().catch(fail('network')); });
  let t = null;
  teardown.push(onJob((j) => {
    if (j.domain === 'network' && j.state === 'succeeded') { clearTimeout(t); t = setTimeout(() => load().catch(fail('network')), 300); }
  }));
  teardown.push(() => clearTimeout(t));
  await load();
}

function kpiSection(title, id, items, key, value, unit, query) {
  const xs = items.map((i) => Date.parse(i.interval_start));
  const ids = [];
  for (const i of items) for (const t of i.top) if (!ids.includes(t[key])) ids.push(t[key]);
  // Keep the series of the items that rank highest overall (at most 10 lines).
  const total = new Map(ids.map((k) => [k, 0]));
  for (const i of items) for (const t of i.top) total.set(t[key], total.get(t[key]) + t[value]);
  const shown = ids.sort((a, b) => total.get(b) - total.get(a)).slice(0, 10);
  const series = shown.map((k) => ({ name: `${key.replace('_id', '')} ${k}`, values: items.map((i) => { const t = i.top.find((e) => e[key] === k); return t ? t[value] : null; }) }));
  const rows = items.flatMap((i) => i.top.map((t) => ({ interval_start: i.interval_start, interval_end: i.interval_end, rank: t.rank, [key]: t[key], [value]: t[value], rows: i.rows })));
  const cols = [
    { key: 'interval_start', title: 'interval start', show: (r) => isoMin(r.interval_start) },
    { key: 'interval_end', title: 'end', show: (r) => isoMin(r.interval_end).slice(11) },
    { key: 'rank', title: 'rank', num: true },
    { key, title: key, num: true },
    { key: value, title: value, num: true, show: (r) => (unit === 'bytes' ? bytes(r[value]) : num(r[value])) },
    { key: 'rows', title: 'rows in interval', num: true, show: (r) => num(r.rows) },
  ];
  const hhmm = (x) => new Date(x).toISOString().slice(11, 16);
  // The server's own CSV of the same query (the table's rows).
  const dl = h('a', { class: 'button', id: `csv-${id}`, href: query + '&format=csv', download: '' }, 'Download CSV');
  const span = items.length ? { 'data-from': items[0].interval_start, 'data-to': items[items.length - 1].interval_end } : {};
  return h('section', { class: 'kpi', id: `kpi-${id}`, ...span },
    h('h3', null, title, ' ', dl),
    xs.length ? lineChart({ xs, series, xLabel: hhmm, yTitle: unit }) : h('p', { class: 'muted' }, 'no intervals in this range'),
    h('div', { class: 'scroll' }, tableOf(cols, rows, { id: `table-${id}` })));
}

// ---- trips: map with outlines, density, box selection ----
let topo = null;
async function countries() {
  if (topo) return topo;
  const t = await api('/dashboard/countries-110m.json');
  const [sx, sy] = t.transform.scale, [tx, ty] = t.transform.translate;
  const arcs = t.arcs.map((arc) => { let x = 0, y = 0; return arc.map(([dx, dy]) => { x += dx; y += dy; return [x * sx + tx, y * sy + ty]; }); });
  const ring = (ids) => { const pts = []; for (const i of ids) { const a = i < 0 ? arcs[~i].slice().reverse() : arcs[i]; pts.push(...(pts.length ? a.slice(1) : a)); } return pts; };
  topo = t.objects.countries.geometries.map((g) => ({
    name: (g.properties || {}).name,
    polys: g.type === 'Polygon' ? [g.arcs.map(ring)] : g.type === 'MultiPolygon' ? g.arcs.map((p) => p.map(ring)) : [],
  }));
  return topo;
}
function projection(ext, W, H) {
  const [lo0, la0, lo1, la1] = ext;
  const latc = (la0 + la1) / 2, lonc = (lo0 + lo1) / 2;
  const c = Math.cos((latc * Math.PI) / 180);
  const k = Math.min(W / ((lo1 - lo0) * c), H / (la1 - la0));
  return {
    fwd: (lon, lat) => [W / 2 + (lon - lonc) * c * k, H / 2 - (lat - latc) * k],
    inv: (x, y) => [lonc + (x - W / 2) / (c * k), latc - (y - H / 2) / k],
  };
}
async function trips(main) {
  const counts = await api('/api/v1/trips/counts?by=region');
  const region = h('select', { id: 'trip-region' }, h('option', { value: '' }, 'all regions'), counts.map((r) => h('option', { value: r.name }, `${r.name} (${num(r.trips)})`)));
  const densEnd = h('select', { id: 'trip-end' }, h('option', { value: 'origin' }, 'origins'), h('option', { value: 'destination' }, 'destinations'));
  const weeks = h('select', { id: 'trip-weeks' }, h('option', { value: 'span' }, 'span (every week of the range)'), h('option', { value: 'active' }, 'active weeks only'));
  const W = 900, H = 520;
  const svg = s('svg', { class: 'map', id: 'map', viewBox: `0 0 ${W} ${H}`, width: W, height: H });
  const info = h('p', { class: 'muted', id: 'map-info' }, 'Loading trips…');
  const result = h('div', { id: 'trip-result' }, h('p', { class: 'muted' }, 'Drag a box on the map to get its weekly average in every match mode and the similar-trip groups inside.'));
  main.append(h('h2', null, 'trips'),
    h('div', { class: 'controls' }, h('label', null, 'region', region), h('label', null, 'density of', densEnd), h('label', null, 'weeks', weeks)),
    h('div', { class: 'row' }, h('div', null, svg, info), h('div', { class: 'grow' }, result)));
  const outlines = await countries();
  let sample = [];
  let ext = [-12, 35, 30, 60];
  let proj = projection(ext, W, H);
  let box = null; // [minlon, minlat, maxlon, maxlat]
  const layers = { land: s('g'), dens: s('g', { id: 'density' }), groups: s('g'), labels: s('g'), sel: s('g') };
  svg.append(layers.land, layers.dens, layers.groups, layers.labels, layers.sel);

  const drawLand = () => {
    layers.land.replaceChildren(...outlines.map((c) => {
      let d = '';
      for (const poly of c.polys) for (const r of poly) {
        r.forEach(([lon, lat], i) => { const [x, y] = proj.fwd(lon, lat); d += (i ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1); });
        d += 'Z';
      }
      return s('path', { class: 'country', d }, s('title', null, c.name));
    }));
  };
  // Trips per grid cell from /api/v1/trips/density (the rollups: exact, every trip), at the
  // finest level whose cells are at least 4 px wide on this view.
  let dens = null;
  const loadDensity = async () => {
    const [lo0, la1] = proj.inv(0, 0), [lo1, la0] = proj.inv(W, H);
    const c = (v, m) => Math.max(-m, Math.min(m, v)).toFixed(4);
    const pxPerDeg = W / (lo1 - lo0);
    let level = 2;
    while (level < 8 && (4 ** level / 1024) * pxPerDeg < 4) level++;
    const url = `/api/v1/trips/density?end=${densEnd.value}&level=${level}&bbox=${c(lo0, 180)},${c(la0, 90)},${c(lo1, 180)},${c(la1, 90)}`;
    dens = await api(url);
    dens.url = url;
  };
  const drawDensity = () => {
    layers.dens.replaceChildren();
    if (!dens) return;
    layers.dens.dataset.url = dens.url;
    layers.dens.dataset.trips = dens.trips;
    const side = dens.cell_degrees;
    const max = Math.max(1, ...dens.cells.map((d) => d.trips));
    layers.dens.append(...dens.cells.map((d) => {
      const [x0, y0] = proj.fwd(d.lon, d.lat + side), [x1, y1] = proj.fwd(d.lon + side, d.lat);
      return s('rect', { class: 'density', x: x0.toFixed(1), y: y0.toFixed(1), width: Math.max(1, x1 - x0).toFixed(1), height: Math.max(1, y1 - y0).toFixed(1), 'fill-opacity': (0.15 + 0.85 * Math.sqrt(d.trips / max)).toFixed(2), 'data-trips': d.trips },
        s('title', null, `${num(d.trips)} trips ${densEnd.value === 'origin' ? 'start' : 'end'} in ${d.lon.toFixed(3)},${d.lat.toFixed(3)} (+${side}°)`));
    }));
    const byRegion = new Map();
    for (const t of sample) { const a = byRegion.get(t.region) || [0, 0, 0]; a[0] += t.origin[0]; a[1] += t.origin[1]; a[2]++; byRegion.set(t.region, a); }
    layers.labels.replaceChildren(...[...byRegion].map(([name, [x, y, c]]) => { const [px, py] = proj.fwd(x / c, y / c); return s('text', { class: 'city', x: px + 8, y: py - 8 }, name); }));
  };
  const drawBox = () => {
    layers.sel.replaceChildren();
    if (!box) return;
    const [x0, y0] = proj.fwd(box[0], box[3]);
    const [x1, y1] = proj.fwd(box[2], box[1]);
    layers.sel.append(s('rect', { class: 'selbox', x: x0, y: y0, width: x1 - x0, height: y1 - y0 }));
  };
  const redraw = () => { proj = projection(ext, W, H); drawLand(); drawDensity(); drawBox(); };
  const loadSample = async () => {
    info.textContent = 'Loading trips…';
    // The view's extent and region labels come from a sample: 5 pages of 1000 trips taken
    // at 5 points spread over the id range (ids follow ingestion order).
    const total = counts.reduce((a, r) => a + r.trips, 0);
    const r = region.value ? '&region=' + encodeURIComponent(region.value) : '';
    const pages = await Promise.all([0, 1, 2, 3, 4].map((k) => api(`/api/v1/trips/trips?limit=1000&after=${Math.floor((k * total) / 5)}${r}`)));
    const seen = new Set();
    sample = pages.flatMap((p) => p.items).filter((t) => !seen.has(t.id) && seen.add(t.id));
    if (sample.length) {
      const lons = sample.map((t) => t.origin[0]), lats = sample.map((t) => t.origin[1]);
      let [a, b, c, d] = [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
      const pad = Math.max(0.05, (c - a) * 0.08, (d - b) * 0.08);
      ext = [a - pad, b - pad, c + pad, d + pad];
    }
    proj = projection(ext, W, H);
    await loadDensity();
    info.textContent = `Trips ${densEnd.value === 'origin' ? 'starting' : 'ending'} in each cell of ${dens.cell_degrees}° (all regions, every week: ${num(dens.trips)} trips in view); outlines: Natural Earth 1:110m.`;
    redraw();
  };

  // Drag a box.
  let start = null;
  const pt = (e) => { const r = svg.getBoundingClientRect(); return [((e.clientX - r.left) * W) / r.width, ((e.clientY - r.top) * H) / r.height]; };
  svg.addEventListener('pointerdown', (e) => { start = pt(e); svg.setPointerCapture(e.pointerId); e.preventDefault(); });
  svg.addEventListener('pointermove', (e) => {
    if (!start) return;
    const p = pt(e);
    const [lo0, la1] = proj.inv(Math.min(start[0], p[0]), Math.min(start[1], p[1]));
    const [lo1, la0] = proj.inv(Math.max(start[0], p[0]), Math.max(start[1], p[1]));
    box = [lo0, la0, lo1, la1];
    drawBox();
  });
  svg.addEventListener('pointerup', (e) => {
    if (!start) return;
    const p = pt(e);
    const small = Math.abs(p[0] - start[0]) < 3 || Math.abs(p[1] - start[1]) < 3;
    start = null;
    if (small) return;
    const clamp = (v, m) => Math.max(-m, Math.min(m, v));
    box = [clamp(box[0], 180), clamp(box[1], 90), clamp(box[2], 180), clamp(box[3], 90)].map((v) => Math.round(v * 1e4) / 1e4);
    drawBox();
    unready();
    boxQuery().catch(fail('trips'));
  });
  weeks.addEventListener('change', () => { if (box) boxQuery().catch(fail('trips')); });
  densEnd.addEventListener('change', () => { unready(); loadSample().then(() => ready('trips')).catch(fail('trips')); });
  region.addEventListener('change', () => { unready(); box = null; layers.groups.replaceChildren(); result.replaceChildren(); loadSample().then(() => ready('trips')).catch(fail('trips')); });

  const boxQuery = async () => {
    const bbox = box.map((v) => v.toFixed(4)).join(',');
    const modes = ['origin', 'destination', 'both', 'either'];
    const [avgs, groups] = await Promise.all([
      Promise.all(modes.map((m) => api(`/api/v1/trips/weekly-average?bbox=${bbox}&match=${m}&weeks=${weeks.value}`))),
      api('/api/v1/trips/groups?limit=1000' + (region.value ? '&region=' + encodeURIComponent(region.value) : '')),
    ]);
    const inside = ([lon, lat]) => lon >= box[0] && lon <= box[2] && lat >= box[1] && lat <= box[3];
    const gin = groups.filter((g) => inside(g.origin_center) && inside(g.destination_center));
    layers.groups.replaceChildren(...gin.slice(0, 50).map((g) => {
      const [x0, y0] = proj.fwd(...g.origin_center), [x1, y1] = proj.fwd(...g.destination_center);
      return s('line', { class: 'group', x1: x0, y1: y0, x2: x1, y2: y1 }, s('title', null, `group ${g.id}: ${g.trips} trips ${g.bucket_start}–${g.bucket_end}`));
    }));
    const labels = avgs[3].series.map((w) => w.label);
    const byLabel = avgs.map((a) => new Map(a.series.map((w) => [w.label, w.trips])));
    result.replaceChildren(
      h('h3', null, 'Weekly average in ', h('span', { class: 'kv', id: 'trip-bbox', 'data-bbox': bbox }, bbox)),
      tableOf([
        { key: 'match', title: 'match' },
        { key: 'average', title: 'weekly average', num: true, show: (r) => h('span', { class: 'avg', 'data-match': r.match, 'data-average': r.average }, num(r.average, 2)) },
        { key: 'trips', title: 'trips', num: true, show: (r) => num(r.trips) },
        { key: 'weeks', title: 'weeks', num: true },
        { key: 'range', title: 'weeks', show: (r) => (r.from_week ? `${r.from_week} → ${r.to_week}` : '–') },
      ], avgs, { id: 'trip-averages' }),
      h('p', null, 'CSV: ', modes.map((m) => [h('a', { href: `/api/v1/trips/weekly-average?bbox=${bbox}&match=${m}&weeks=${weeks.value}&format=csv`, download: '', class: 'csv' }, m), ' '])),
      h('h3', null, 'Trips per week'),
      labels.length ? lineChart({ xs: labels.map((_, i) => i), series: modes.map((m, i) => ({ name: m, values: labels.map((l) => byLabel[i].get(l) ?? 0) })), width: 520, height: 240, xLabel: (i) => labels[i] || '' }) : h('p', { class: 'muted' }, 'no trips in this box'),
      h('h3', null, `Similar-trip groups inside (${gin.length}${groups.length >= 1000 ? ' of the 1000 largest' : ''})`),
      h('div', { class: 'scroll' }, tableOf([
        { key: 'id', title: 'group', num: true },
        { key: 'region', title: 'region' },
        { key: 'trips', title: 'trips', num: true },
        { key: 'time', title: 'time of day', show: (g) => `${g.bucket_start}–${g.bucket_end}` },
        { key: 'ds', title: 'datasources', show: (g) => Object.entries(g.datasources).map(([k, v]) => `${k} ${v}`).join(', ') },
      ], gin.slice(0, 100), { id: 'trip-groups' })));
    ready('trips');
  };
  await loadSample();
  ready('trips');
}

// ---- streams ----
async function streams(main) {
  const source = h('input', { id: 'harvest-source', type: 'url', placeholder: 'source URL (default: the configured or built-in simulator)', size: 44 });
  const dur = h('input', { id: 'harvest-duration', value: '5s', size: 6, title: 'max_duration' });
  const btn = h('button', { id: 'harvest-start' }, 'Start harvest');
  const progress = h('div', { id: 'harvest-progress' });
  const runsBox = h('div', { id: 'runs' });
  const detail = h('div', { id: 'run-detail' });
  main.append(h('h2', null, 'streams'),
    h('div', { class: 'controls' }, h('label', null, 'source', source), h('label', null, 'max duration', dur), btn),
    progress, h('h3', null, 'Runs'), runsBox, detail);
  let selected = null;
  const loadRuns = async () => {
    const { runs } = await api('/api/v1/streams/runs?limit=20');
    const reports = await Promise.all(runs.slice(0, 10).map((r) => (r.state === 'succeeded' ? api(`/api/v1/streams/runs/${r.run_id}/report`).catch(() => null) : null)));
    const per = new Map(reports.filter(Boolean).map((r) => [r.run_id, r.events_per_stream]));
    const tbl = tableOf([
      { key: 'run_id', title: 'run', show: (r) => h('span', { class: 'kv' }, r.run_id.slice(0, 8)) },
      { key: 'state', title: 'state', show: (r) => h('span', { class: 'state ' + r.state }, r.state) },
      { key: 'started_at', title: 'started', show: (r) => isoMin(r.started_at) },
      { key: 'stop_reason', title: 'stop reason', show: (r) => r.stop_reason || r.error || '–' },
      { key: 'events_total', title: 'events', num: true },
      { key: 'malformed_total', title: 'malformed', num: true },
      ...['sytflix', 'sytazon', 'sysney'].map((st) => ({ key: st, title: st, num: true, show: (r) => (per.get(r.run_id) ? num(per.get(r.run_id)[st] || 0) : '–') })),
      { key: 'source', title: 'source', show: (r) => r.source || '' },
    ], runs, { id: 'runs-table' });
    [...tbl.tBodies[0].rows].forEach((tr, i) => {
      tr.classList.add('click');
      tr.dataset.run = runs[i].run_id;
      tr.addEventListener('click', () => { selected = runs[i].run_id; showRun(selected).catch(fail('streams')); });
    });
    runsBox.replaceChildren(tbl);
    if (!runs.length) { runsBox.append(h('p', { class: 'muted' }, 'No runs yet: start a harvest.')); return; }
    const first = runs.find((r) => r.state === 'succeeded') || runs[0];
    await showRun(selected || first.run_id);
  };
  const showRun = async (id) => {
    document.querySelectorAll('#runs-table tbody tr').forEach((tr) => tr.classList.toggle('sel', tr.dataset.run === id));
    const events = [];
    for (let off = 0; off < 5000; off += 1000) {
      const p = await api(`/api/v1/streams/runs/${id}/events?limit=1000&offset=${off}`);
      events.push(...p.events);
      if (p.events.length < 1000) break;
    }
    const run = await api(`/api/v1/streams/runs/${id}`);
    const report = run.state === 'succeeded' ? await api(`/api/v1/streams/runs/${id}/report`).catch(() => null) : null;
    const users = run.state === 'succeeded' ? await api('/user_report').catch(() => []) : [];
    const latestRun = (await api('/api/v1/streams/runs?limit=1')).runs[0];
    put(detail,
      h('h3', null, 'Events per stream, run ', h('span', { class: 'kv' }, id.slice(0, 8))),
      timelineOfEvents(events),
      report ? h('div', null,
        h('h3', null, 'Report'),
        h('p', null, `${num(report.users_total)} users, ${num(report.recent_shows)} recent shows, sytflix start rate ${num(report.sytflix_start_rate, 1)} %, ${num(report.successful_streams_total)} successful streams; ` +
          Object.entries(report.events_per_type).map(([k, v]) => `${k} ${v}`).join(', '))) : null,
      latestRun && latestRun.run_id === id && users.length ? h('div', null,
        h('h3', null, 'User report (/user_report)'),
        h('div', { class: 'scroll' }, tableOf([
          { key: 'user', title: 'user', show: (u) => userName(u) },
          { key: 'n', title: 'events', num: true, show: (u) => (u.event_list || []).length },
          { key: 'ev', title: 'events (first 3)', show: (u) => (u.event_list || []).slice(0, 3).map((e) => `${e.event} ${e.show_title || ''}`).join('; ') },
        ], users, { id: 'user-report' }))) : null);
    ready('streams');
  };
  btn.addEventListener('click', async () => {
    const body = {};
    if (source.value.trim()) body.source = source.value.trim();
    if (dur.value.trim()) body.max_duration = /^\d+(\.\d+)?$/.test(dur.value.trim()) ? Number(dur.value.trim()) : dur.value.trim();
    btn.disabled = true;
    try {
      const started = await post('/api/v1/streams/harvests', body);
      const li = jobItem({ id: started.job_id, domain: 'streams', kind: 'harvest', state: 'queued', progress: { done: 0, total: null, unit: 'events' }, summary: {} });
      progress.replaceChildren(h('ul', { class: 'jobs' }, li));
      const off = onJob((j) => {
        if (j.id !== started.job_id) return;
        renderJobItem(li, j);
        if (terminal(j.state)) { off(); btn.disabled = false; selected = started.run_id; loadRuns().catch(fail('streams')); }
      });
      teardown.push(off);
      const j = await api(started.job_url);
      applyJob(j, 'job.snapshot');
    } catch (e) { btn.disabled = false; fail('harvest')(e); }
  });
  await loadRuns();
  ready('streams');
}
function userName(u) {
  const x = u.user || u;
  return [x.first_name, x.last_name].filter(Boolean).join(' ') || x.name || x.email || String(x.id ?? x.user_id ?? '');
}
function timelineOfEvents(events) {
  const lanes = ['sytflix', 'sytazon', 'sysney'];
  const W = 900, laneH = 40, m = { l: 70, r: 12, t: 10, b: 24 };
  const H = m.t + laneH * lanes.length + m.b;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, id: 'events-timeline' });
  const ts = events.map((e) => Date.parse(e.at));
  const t0 = Math.min(...ts), t1 = Math.max(...ts);
  const X = (t) => m.l + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (W - m.l - m.r));
  const types = [...new Set(events.map((e) => e.event))].sort();
  lanes.forEach((ln, i) => {
    const g = s('g', { class: 'lane series', 'data-stream': ln });
    const y = m.t + i * laneH + laneH / 2;
    g.append(s('line', { x1: m.l, x2: W - m.r, y1: y, y2: y, stroke: '#e5e7eb' }), s('text', { x: 4, y: y + 4 }, ln));
    events.forEach((e, j) => {
      if (e.stream !== ln) return;
      g.append(s('circle', { cx: X(ts[j]).toFixed(1), cy: y + (types.indexOf(e.event) - 1.5) * 6, r: 3, fill: COLORS[types.indexOf(e.event) % COLORS.length] }, s('title', null, `${e.event} ${e.at}`)));
    });
    svg.append(g);
  });
  if (events.length) {
    svg.append(s('text', { x: m.l, y: H - 6 }, new Date(t0).toISOString().slice(11, 23)), s('text', { x: W - m.r, y: H - 6, 'text-anchor': 'end' }, new Date(t1).toISOString().slice(11, 23) + ' UTC'));
  }
  const legend = h('div', { class: 'legend' }, types.map((t) => h('span', null, h('i', { class: 'sw', 'data-c': types.indexOf(t) }), t)));
  legend.querySelectorAll('i.sw').forEach((el) => { el.style.background = COLORS[Number(el.dataset.c) % COLORS.length]; });
  return h('div', null, svg, legend);
}

// ---- uptime ----
async function uptime(main) {
  const btn = h('button', { id: 'report-trigger' }, 'Trigger a report');
  const progress = h('div', { id: 'report-progress' });
  const info = h('p', { class: 'muted', id: 'report-info' });
  const tableBox = h('div', { class: 'scroll', id: 'stores' });
  const detail = h('div', { id: 'store-detail' });
  main.append(h('h2', null, 'uptime'), h('div', { class: 'controls' }, btn), progress, info,
    h('h3', null, 'Stores (click a column to sort, a row for its timeline)'), tableBox, detail);
  let report = null;
  let rows = [];
  let sortKey = 'store_id', sortDir = 1;
  let selected = null;
  const cols = [
    { key: 'store_id', title: 'store' },
    { key: 'zone', title: 'zone' },
    { key: 'uh', title: 'up last hour (min)', num: true, get: (r) => r.last_hour.uptime },
    { key: 'ud', title: 'up last day (h)', num: true, get: (r) => r.last_day.uptime },
    { key: 'uw', title: 'up last week (h)', num: true, get: (r) => r.last_week.uptime },
    { key: 'dh', title: 'down last hour (min)', num: true, get: (r) => r.last_hour.downtime },
    { key: 'dd', title: 'down last day (h)', num: true, get: (r) => r.last_day.downtime },
    { key: 'dw', title: 'down last week (h)', num: true, get: (r) => r.last_week.downtime },
  ];
  const val = (c, r) => (c.get ? c.get(r) : r[c.key]);
  const drawTable = () => {
    const c = cols.find((x) => x.key === sortKey);
    const sorted = [...rows].sort((a, b) => { const x = val(c, a), y = val(c, b); return (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
    const tbl = h('table', { id: 'stores-table' },
      h('thead', null, h('tr', null, cols.map((k) => h('th', {
        class: (k.num ? 'num ' : '') + (k.key === sortKey ? (sortDir > 0 ? 'sorted-asc' : 'sorted-desc') : ''),
        'data-sort': k.key,
        onclick: () => { if (sortKey === k.key) sortDir = -sortDir; else { sortKey = k.key; sortDir = k.num ? -1 : 1; } drawTable(); },
      }, k.title)))),
      h('tbody', null, sorted.map((r) => {
        const tr = h('tr', { class: 'click' + (r.store_id === selected ? ' sel' : ''), 'data-store': r.store_id, onclick: () => { selected = r.store_id; drawTable(); showStore(r).catch(fail('uptime')); } },
          cols.map((k) => h('td', { class: k.num ? 'num' : null }, k.num ? val(k, r).toFixed(2) : val(k, r))));
        return tr;
      })));
    tableBox.replaceChildren(tbl);
  };
  const showStore = async (row) => {
    unready();
    const q = `now=${encodeURIComponent(report.now)}&coverage_minutes=${report.coverage_minutes}`;
    const [day, week] = await Promise.all(['day', 'week'].map((w) => api(`/api/v1/uptime/stores/${row.store_id}/timeline?window=${w}&${q}`)));
    detail.replaceChildren(
      h('h3', null, 'Store ', h('span', { class: 'kv' }, row.store_id), ` — ${day.zone}${day.zone_given ? '' : ' (default zone)'}`),
      h('p', { class: 'muted' }, 'Times in the store\'s local time. Shaded: business hours; bars: up (green) / down (red) as the engine computed them from the nearest poll; dots: polls. Only the parts of the bars inside business hours count.'),
      storeTimeline('Last day', 'day', day, row.last_day),
      storeTimeline('Last week', 'week', week, row.last_week));
    ready('uptime');
  };
  const loadReport = async (id) => {
    report = await api('/api/v1/uptime/reports/' + id);
    const page = await api(`/api/v1/uptime/reports/${id}/rows?limit=10000`);
    rows = page.rows;
    info.replaceChildren(`Report ${id.slice(0, 8)}: ${num(page.total)} stores, now = ${isoMin(report.now)}, coverage ${report.coverage_minutes} min. `,
      h('a', { href: report.csv_url, id: 'report-csv' }, 'CSV'));
    info.dataset.report = id;
    drawTable();
    const row = rows.find((r) => r.store_id === selected) || rows.find((r) => r.last_week.downtime > 0) || rows[0];
    if (row) { selected = row.store_id; drawTable(); await showStore(row); }
  };
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      const t = await post('/api/v1/uptime/reports', {});
      const li = jobItem(t.job);
      progress.replaceChildren(h('ul', { class: 'jobs' }, li));
      const off = onJob((j) => {
        if (j.id !== t.job.id) return;
        renderJobItem(li, j);
        if (terminal(j.state)) { off(); btn.disabled = false; if (j.state === 'succeeded') { unready(); loadReport(t.report_id).then(() => ready('uptime')).catch(fail('uptime')); } }
      });
      teardown.push(off);
      applyJob(await api('/api/v1/jobs/' + t.job.id), 'job.snapshot');
    } catch (e) { btn.disabled = false; fail('report')(e); }
  });
  const reports = await api('/api/v1/uptime/reports?limit=20');
  const done = reports.find((r) => r.status === 'complete');
  if (done) await loadReport(done.report_id);
  else info.textContent = 'No complete report yet: trigger one.';
  ready('uptime');
}

// The zone's offset from UTC at `ms`, in ms (local wall time = ms + offset).
function tzOffset(zone, ms) {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    .formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return wall - Math.floor(ms / 1000) * 1000;
}
function storeTimeline(title, win, t, row) {
  const W = 900, H = 96, m = { l: 10, r: 10, t: 8, b: 30 };
  const from = Date.parse(t.window.from), to = Date.parse(t.window.to);
  const X = (ms) => m.l + ((ms - from) / (to - from)) * (W - m.l - m.r);
  const svg = s('svg', { class: 'tl', id: 'timeline-' + win, viewBox: `0 0 ${W} ${H}`, width: W, height: H });
  const biz = t.business.map((b) => [Date.parse(b.from), Date.parse(b.to)]);
  for (const [a, b] of biz) svg.append(s('rect', { class: 'biz', x: X(a), y: m.t, width: Math.max(0.5, X(b) - X(a)), height: H - m.t - m.b }));
  let up = 0, down = 0;
  for (const sg of t.segments) {
    const a = Date.parse(sg.from), b = Date.parse(sg.to);
    const active = sg.status === 'active';
    let inBiz = 0;
    for (const [p, q] of biz) inBiz += Math.max(0, Math.min(b, q) - Math.max(a, p));
    if (active) up += inBiz; else down += inBiz;
    svg.append(s('rect', {
      class: 'seg ' + (active ? 'up' : 'down'), x: X(a), y: m.t + 22, width: Math.max(0.5, X(b) - X(a)), height: 14,
      'data-from': sg.from, 'data-to': sg.to, 'data-status': sg.status, 'data-business-ms': inBiz,
    }, s('title', null, `${sg.status} (poll ${sg.poll_at})`)));
    for (const [p, q] of biz) {
      const lo = Math.max(a, p), hi = Math.min(b, q);
      if (hi > lo) svg.append(s('rect', { class: 'counted ' + (active ? 'up' : 'down'), x: X(lo), y: m.t + 22, width: Math.max(0.5, X(hi) - X(lo)), height: 14 }));
    }
  }
  for (const p of t.polls) {
    const x = X(Date.parse(p.at));
    if (x < m.l - 1 || x > W - m.r + 1) continue;
    svg.append(s('circle', { class: 'poll ' + (p.status === 'active' ? 'up' : 'down'), cx: x, cy: m.t + 12, r: 3.5 }, s('title', null, `${p.status} at ${p.at}`)));
  }
  // Ticks in the store's local time.
  const zone = t.zone;
  const f = new Intl.DateTimeFormat('en-GB', win === 'day' ? { timeZone: zone, hour: '2-digit', minute: '2-digit' } : { timeZone: zone, weekday: 'short', day: '2-digit', month: 'short' });
  // Ticks on local boundaries: every 3 local hours (day), every local midnight (week).
  const step = win === 'day' ? 3 * 3600e3 : 86400e3;
  const ticks = [];
  for (let ms = Math.floor(from / 1800e3) * 1800e3; ms <= to; ms += 1800e3) {
    const local = ms + tzOffset(zone, ms);
    if (ms >= from && local % step === 0) ticks.push(ms);
  }
  for (const ms of ticks) {
    svg.append(s('line', { x1: X(ms), x2: X(ms), y1: H - m.b, y2: H - m.b + 4, stroke: '#9ca3af' }), s('text', { x: X(ms), y: H - 8, 'text-anchor': 'middle' }, f.format(new Date(ms))));
  }
  const hrs = (ms) => (ms / 3600e3).toFixed(2);
  return h('section', { class: 'store-tl', 'data-window': win },
    h('h3', null, title),
    svg,
    h('p', { class: 'kv', 'data-up-hours': hrs(up), 'data-down-hours': hrs(down) },
      `segments in business hours: up ${hrs(up)} h, down ${hrs(down)} h — report row: up ${row.uptime.toFixed(2)} h, down ${row.downtime.toFixed(2)} h (business ${row.business} h)`));
}

// ---- start ----
window.addEventListener('hashchange', route);
connectEvents();
route();
