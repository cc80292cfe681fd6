// The dashboard's pages: jobs (overview), one job, runs, one run, instances,
// notifications, the audit log.
// Each view renders into `main`, refreshes itself while shown, and returns
// {dispose()} so the router can stop its timers and streams.
import {ApiError, api, get, post, qs, streamOutput} from './api.js';
import {confirmAction, facts, h, replace, toast} from './dom.js';
import {TERMINAL, formatMs, formatTime, lagMs, relative} from './format.js';

const REFRESH_MS = 5000;

// Runs `fn` now and every `ms` while the tab is visible; never two at once.
function every(ms, fn) {
  let timer = null;
  let stopped = false;
  let busy = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden && !busy) {
      busy = true;
      try {
        await fn();
      } catch (e) {
        // Shown on the page by fn; a failed refresh tries again next tick.
        console.warn('refresh failed:', e);
      } finally {
        busy = false;
      }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export function badge(text) {
  return h('span', {class: `badge s-${text}`}, text.replace('_', ' '));
}

// What a failed request means to the person looking.
function errorBox(err) {
  if (err instanceof ApiError && err.status === 403) {
    return h('div', {class: 'error-box', role: 'alert', id: 'forbidden'},
        'Your token may not do this: ', err.message);
  }
  if (err instanceof ApiError && err.status === 404) {
    return h('div', {class: 'error-box', role: 'alert'}, 'Not found: ', err.message);
  }
  return h('div', {class: 'error-box', role: 'alert'}, err.message || String(err));
}

function failPage(main, err) {
  replace(main, h('div', {class: 'panel'}, errorBox(err), h('a', {href: '#/'}, 'All jobs')));
}

// A button that runs `action` (async), disabled while it does; errors toast.
function actionButton(label, attrs, action) {
  const b = h('button', {type: 'button', ...attrs, onclick: async () => {
    b.disabled = true;
    try {
      await action();
    } catch (e) {
      toast(`${label}: ${e.message}`, 'error');
    } finally {
      b.disabled = false;
    }
  }}, label);
  return b;
}

// Trigger / pause / resume for a job, as the token's role allows (none for viewers).
function jobActions(job, ctx, refresh) {
  if (!ctx.can('operator')) return null;
  const name = encodeURIComponent(job.name);
  const buttons = [actionButton('Trigger', {class: 'act-trigger', 'aria-label': `Trigger ${job.name}`},
      async () => {
        const run = await post(`/api/v1/jobs/${name}/trigger`);
        toast([`Triggered ${job.name}: `, h('a', {href: `#/runs/${run.id}`, class: 'toast-run'},
            `run ${run.id}`)]);
        await refresh(true);
      })];
  if (job.state === 'paused') {
    buttons.push(actionButton('Resume', {class: 'act-resume', 'aria-label': `Resume ${job.name}`},
        async () => {
          await post(`/api/v1/jobs/${name}/resume`);
          toast(`Resumed ${job.name}`);
          await refresh(true);
        }));
  } else if (job.state === 'active' || job.state === 'pending') {
    buttons.push(actionButton('Pause', {class: 'act-pause', 'aria-label': `Pause ${job.name}`},
        async () => {
          await post(`/api/v1/jobs/${name}/pause`);
          toast(`Paused ${job.name}`);
          await refresh(true);
        }));
  }
  return h('div', {class: 'actions'}, buttons);
}

// The newest runs, oldest on the left, one coloured mark each.
function strip(runs) {
  const marks = (runs || []).slice().reverse().map((r) => h('a', {
    href: `#/runs/${r.id}`, class: `r-${r.status}`,
    title: `run ${r.id}: ${r.status}, ${r.scheduled_for || r.queued_at}`,
    'aria-label': `run ${r.id} ${r.status}`,
  }));
  return h('div', {class: 'strip'}, marks.length ? marks : h('span', {class: 'muted'}, ''));
}

function jobBadges(job) {
  return [badge(job.state), job.failing ? [' ', badge('failing')] : null,
    job.late ? [' ', badge('late')] : null];
}

function lastRunCell(job) {
  const last = (job.recent_runs || [])[0];
  if (!last) return h('span', {class: 'muted'}, 'never');
  const at = last.started_at || last.queued_at;
  return h('span', {}, badge(last.status), ' ',
      h('span', {title: formatTime(at, job.timezone)}, relative(at)));
}

function nextFireCell(job) {
  if (!job.next_run_at) return h('span', {class: 'muted'}, '—');
  return h('span', {}, formatTime(job.next_run_at, job.timezone),
      h('br'), h('span', {class: 'muted'}, relative(job.next_run_at)));
}

function jobRow(job, ctx, refresh) {
  return h('tr', {dataset: {job: job.name}},
      h('td', {}, h('a', {href: `#/jobs/${encodeURIComponent(job.name)}`, class: 'job-link'},
          job.name), job.description ? [h('br'), h('span', {class: 'muted'}, job.description)] :
          null),
      h('td', {}, jobBadges(job)),
      h('td', {}, lastRunCell(job)),
      h('td', {}, nextFireCell(job)),
      h('td', {class: 'hide-narrow'}, strip(job.recent_runs)),
      ctx.can('operator') ? h('td', {}, jobActions(job, ctx, refresh)) : null);
}

function jobTable(jobs, ctx, refresh, id) {
  const head = ['Job', 'State', 'Last run', 'Next fire', 'Recent runs'];
  return h('div', {class: 'table-wrap'}, h('table', {id},
      h('thead', {}, h('tr', {}, head.map((t, i) => h('th', {class: i === 4 ? 'hide-narrow' : ''},
          t)), ctx.can('operator') ? h('th', {}, 'Actions') : null)),
      h('tbody', {}, jobs.length ? jobs.map((j) => jobRow(j, ctx, refresh)) :
          h('tr', {}, h('td', {colspan: 6, class: 'muted'}, 'No jobs match.')))));
}

// The overview's filters and page survive going to a job and back.
const overview = {state: '', tag: '', prefix: '', attention: '', cursors: [null]};

export function overviewView(main, ctx) {
  const cards = h('div', {class: 'cards', id: 'summary'});
  const attention = h('section', {id: 'attention'});
  const list = h('section', {id: 'jobs'});
  const pager = h('div', {class: 'pager'});
  const stateSel = h('select', {id: 'f-state', name: 'state'},
      ['', 'active', 'pending', 'paused', 'disabled', 'expired'].map((s) =>
        h('option', {value: s, selected: s === overview.state}, s || 'any')));
  const attentionSel = h('select', {id: 'f-attention', name: 'attention'},
      [['', 'all'], ['failing', 'failing'], ['late', 'late']].map(([v, t]) =>
        h('option', {value: v, selected: v === overview.attention}, t)));
  const tagIn = h('input', {id: 'f-tag', name: 'tag', value: overview.tag, size: 12});
  const prefixIn = h('input', {id: 'f-prefix', name: 'prefix', value: overview.prefix, size: 16,
    placeholder: 'name starts with'});
  const filters = h('form', {class: 'filters', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    overview.state = stateSel.value;
    overview.attention = attentionSel.value;
    overview.tag = tagIn.value.trim();
    overview.prefix = prefixIn.value.trim();
    overview.cursors = [null];
    refresh();
  }},
  h('label', {}, 'State', stateSel), h('label', {}, 'Show', attentionSel),
  h('label', {}, 'Tag', tagIn), h('label', {}, 'Name', prefixIn),
  h('button', {type: 'submit'}, 'Filter'),
  h('button', {type: 'button', onclick: () => {
    overview.state = overview.tag = overview.prefix = overview.attention = '';
    stateSel.value = tagIn.value = prefixIn.value = attentionSel.value = '';
    overview.cursors = [null];
    refresh();
  }}, 'Clear'));
  replace(main,
      h('h1', {}, 'Jobs', ctx.can('admin') ? h('a', {href: '#/new', class: 'button primary',
        id: 'new-job'}, 'New job') : null),
      cards, attention, h('h2', {}, 'All jobs'), filters, list, pager);

  // `acted`: after an action, redraw at once and put the focus back where it
  // was (the same job's action, or its link); otherwise a table the keyboard
  // is in is left alone until the focus leaves it.
  async function refresh(acted = false) {
    const focused = document.activeElement;
    const inTable = main.contains(focused) && focused.closest('table');
    if (inTable && !acted) return;
    const cursor = overview.cursors[overview.cursors.length - 1];
    try {
      const [summary, failing, late, page] = await Promise.all([
        get('/api/v1/summary'),
        get('/api/v1/jobs' + qs({attention: 'failing', limit: 20, recent: 12})),
        get('/api/v1/jobs' + qs({attention: 'late', limit: 20, recent: 12})),
        get('/api/v1/jobs' + qs({state: overview.state, tag: overview.tag,
          prefix: overview.prefix, attention: overview.attention, limit: 50, recent: 12,
          cursor})),
      ]);
      renderCards(summary);
      const seen = new Set();
      const needs = [...failing.items, ...late.items].filter((j) => !seen.has(j.name) &&
        seen.add(j.name));
      replace(attention, needs.length ? [h('h2', {}, 'Needs attention'),
        jobTable(needs, ctx, refresh, 'attention-table')] : null);
      replace(list, jobTable(page.items, ctx, refresh, 'jobs-table'));
      if (inTable) restoreFocus(focused);
      replace(pager,
          overview.cursors.length > 1 ? h('button', {type: 'button', id: 'page-prev',
            onclick: () => {
              overview.cursors.pop();
              refresh();
            }}, 'Previous page') : null,
          page.next_cursor ? h('button', {type: 'button', id: 'page-next', onclick: () => {
            overview.cursors.push(page.next_cursor);
            refresh();
          }}, 'Next page') : null,
          h('span', {class: 'muted'}, `page ${overview.cursors.length}`));
    } catch (e) {
      replace(list, errorBox(e));
      throw e;
    }
  }

  function restoreFocus(old) {
    const row = old.closest('tr');
    const table = old.closest('table');
    if (!row || !table || !row.dataset.job) return;
    const again = main.querySelector(`#${table.id} tr[data-job="${CSS.escape(row.dataset.job)}"]`);
    if (!again) return;
    const target = again.querySelector('.actions button') || again.querySelector('a');
    if (target) target.focus();
  }

  function renderCards(s) {
    const card = (label, n, cls, onclick) => h(onclick ? 'button' : 'div',
        {class: `card ${cls || ''}`, type: onclick ? 'button' : undefined, onclick,
          dataset: {count: label}}, h('span', {class: 'n'}, String(n)), label);
    const capped = (n) => n >= s.jobs.counts_capped_at ? `${n}+` : n;
    const show = (state, attention = '') => () => {
      overview.state = state;
      overview.attention = attention;
      stateSel.value = state;
      attentionSel.value = attention;
      overview.cursors = [null];
      refresh();
    };
    replace(cards,
        card('jobs', s.jobs.total, '', show('')),
        card('active', s.jobs.active, '', show('active')),
        card('paused', s.jobs.paused, '', show('paused')),
        card('disabled', s.jobs.disabled, '', show('disabled')),
        card('failing', capped(s.jobs.failing), s.jobs.failing ? 'bad' : '', show('', 'failing')),
        card('late', capped(s.jobs.late), s.jobs.late ? 'warn' : '', show('', 'late')),
        card('running', s.runs.running, ''),
        card('queued', s.runs.queued, ''),
        card('instances alive', `${s.instances.alive}/${s.instances.total}`, ''));
  }

  return {dispose: every(REFRESH_MS, refresh)};
}

function runsTable(runs, zoneOf, showJob) {
  return h('div', {class: 'table-wrap'}, h('table', {class: 'runs-table'},
      h('thead', {}, h('tr', {}, ['Run', showJob ? 'Job' : null, 'Status', 'Trigger', 'Scheduled',
        'Started', 'Lag', 'Duration', 'Instance'].filter((t) => t).map((t) => h('th', {}, t)))),
      h('tbody', {}, runs.length ? runs.map((r) => h('tr', {dataset: {run: r.id}},
          h('td', {}, h('a', {href: `#/runs/${r.id}`}, `#${r.id}`)),
          showJob ? h('td', {}, h('a', {href: `#/jobs/${encodeURIComponent(r.job)}`}, r.job)) :
            null,
          h('td', {}, badge(r.status), r.attempt > 1 ? h('span', {class: 'muted'},
              ` attempt ${r.attempt}`) : null),
          h('td', {}, r.trigger),
          h('td', {}, formatTime(r.scheduled_for, zoneOf(r))),
          h('td', {}, r.started_at ? relative(r.started_at) : '—'),
          h('td', {class: 'num'}, formatMs(lagMs(r))),
          h('td', {class: 'num'}, formatMs(r.duration_ms)),
          h('td', {class: 'hide-narrow'}, r.instance || '—'))) :
        h('tr', {}, h('td', {colspan: 9, class: 'muted'}, 'No runs.')))));
}

// A paged run list: fetches `base` + cursor; returns {el, refresh}.
function pagedRuns(filter, zoneOf, showJob, limit = 20) {
  const cursors = [null];
  const box = h('div', {});
  const pager = h('div', {class: 'pager'});
  const el = h('div', {}, box, pager);
  async function refresh() {
    const page = await get('/api/v1/runs' + qs({...filter(), limit,
      cursor: cursors[cursors.length - 1]}));
    replace(box, runsTable(page.items, zoneOf, showJob));
    replace(pager,
        cursors.length > 1 ? h('button', {type: 'button', onclick: () => {
          cursors.pop();
          refresh();
        }}, 'Newer') : null,
        page.next_cursor ? h('button', {type: 'button', class: 'runs-older', onclick: () => {
          cursors.push(page.next_cursor);
          refresh();
        }}, 'Older') : null);
    return page;
  }
  return {el, refresh, onFirstPage: () => cursors.length === 1, reset: () => {
    cursors.length = 1;
  }};
}

function policyFacts(j) {
  const retry = j.retry.max > 0 ?
    `${j.retry.max} retries, backoff ${j.retry.backoff} ×${j.retry.multiplier} up to ` +
      `${j.retry.max_backoff}, jitter ${j.retry.jitter}, on ${j.retry.on.join(', ')}` :
    'none';
  return facts([
    ['Overlap', j.overlap + (j.overlap === 'concurrent' ? ` (at most ${j.max_concurrent})` :
      j.overlap === 'queue' ? ` (at most ${j.max_queued} queued)` : '')],
    ['Misfire', `${j.misfire}, catch-up window ${j.catchup_window}`],
    ['Starting deadline', j.starting_deadline],
    ['Timeout', j.timeout],
    ['Retry', retry],
    ['Priority', String(j.priority)],
    ['Active from', j.start_at ? formatTime(j.start_at, j.timezone) : null],
    ['Active until', j.end_at ? formatTime(j.end_at, j.timezone) : null],
    ['Tags', j.tags.length ? j.tags.join(', ') : null],
    ['Declared in', j.source === 'config' ? 'sked.toml (edit the file, not here)' : 'the API'],
  ]);
}

function firesTable(job) {
  const zone = job.timezone;
  return h('div', {class: 'table-wrap'}, h('table', {id: 'fires'},
      h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Local time in ' + zone),
          h('th', {}, 'UTC'), h('th', {}, 'DST'))),
      h('tbody', {}, job.next_fires.length ? job.next_fires.map((f) => h('tr',
          {class: f.dst ? 'fire-dst' : ''},
          h('td', {}, relative(f.utc)),
          h('td', {}, h('code', {}, f.local.replace('T', ' '))),
          h('td', {}, h('code', {}, f.utc.replace('T', ' '))),
          h('td', {}, f.dst ? h('span', {class: 'dst'}, '⚠ ', f.dst_notes.join('; ')) : ''))) :
        h('tr', {}, h('td', {colspan: 4, class: 'muted'}, 'No fires ahead.')))));
}

// Durations and fire lag of the newest runs, oldest first (Chart.js).
function runChart(canvas, runs, zone) {
  const shown = runs.filter((r) => r.started_at).slice().reverse();
  const data = {
    labels: shown.map((r) => formatTime(r.scheduled_for || r.queued_at, zone)),
    datasets: [
      {label: 'duration (ms)', data: shown.map((r) => r.duration_ms), borderColor: '#2557d6',
        backgroundColor: '#2557d6', yAxisID: 'y', tension: 0.2, pointRadius: 2},
      {label: 'fire lag (ms)', data: shown.map((r) => lagMs(r)), borderColor: '#b7791f',
        backgroundColor: '#b7791f', yAxisID: 'y1', tension: 0.2, pointRadius: 2},
    ],
  };
  const sorted = (xs) => xs.filter((x) => x !== null).sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least p of the values at or below it.
  const q = (xs, p) => xs.length ? xs[Math.max(0, Math.ceil(p * xs.length) - 1)] : null;
  const d = sorted(shown.map((r) => r.duration_ms));
  const l = sorted(shown.map((r) => lagMs(r)));
  canvas.parentElement.hidden = shown.length === 0;
  if (shown.length === 0) {
    canvas.setAttribute('aria-label', 'No run has started yet.');
    return null;
  }
  canvas.setAttribute('aria-label', `Over the last ${shown.length} runs: median duration ` +
    `${formatMs(q(d, 0.5))}, median fire lag ${formatMs(q(l, 0.5))}, p95 fire lag ` +
    `${formatMs(q(l, 0.95))}`);
  if (!window.Chart) return null;
  if (canvas.chart) {
    canvas.chart.data = data;
    canvas.chart.update('none');
    return canvas.chart;
  }
  canvas.chart = new window.Chart(canvas, {type: 'line', data, options: {
    animation: false, responsive: true, maintainAspectRatio: false,
    interaction: {mode: 'index', intersect: false},
    scales: {
      x: {ticks: {maxTicksLimit: 6, autoSkip: true}},
      y: {position: 'left', beginAtZero: true, title: {display: true, text: 'duration (ms)'}},
      y1: {position: 'right', beginAtZero: true, grid: {drawOnChartArea: false},
        title: {display: true, text: 'fire lag (ms)'}},
    },
  }});
  return canvas.chart;
}

export function jobView(main, ctx) {
  const path = `/api/v1/jobs/${encodeURIComponent(ctx.name)}`;
  const head = h('div', {});
  const body = h('div', {});
  const canvas = h('canvas', {id: 'run-chart', role: 'img'});
  const chartNote = h('p', {class: 'muted', id: 'chart-note'});
  let job = null;
  const runs = pagedRuns(() => ({job: ctx.name}), () => job && job.timezone, false);
  replace(main, head, body);
  let built = false;

  async function refresh() {
    try {
      job = await get(path + qs({fires: 10}));
    } catch (e) {
      failPage(main, e);
      throw e;
    }
    renderHead();
    if (!built) {
      built = true;
      replace(body,
          h('div', {class: 'grid2'},
              h('section', {class: 'panel', id: 'schedule'}),
              h('section', {class: 'panel', id: 'counters'})),
          h('section', {class: 'panel'}, h('h2', {}, 'Next 10 fires'), h('div', {id: 'fires-box'})),
          h('div', {class: 'grid2'},
              h('section', {class: 'panel'}, h('h2', {}, 'Policies'), h('div', {id: 'policies'})),
              h('section', {class: 'panel'}, h('h2', {}, 'Driver'), h('div', {id: 'driver'}))),
          h('section', {class: 'panel'}, h('h2', {}, 'Durations and fire lag'),
              h('div', {class: 'chart-box'}, canvas), chartNote),
          h('section', {class: 'panel'}, h('h2', {}, 'Runs'), runs.el));
    }
    const j = job;
    replace(body.querySelector('#schedule'), h('h2', {}, 'Schedule'), facts([
      ['Expression', h('code', {id: 'schedule-expr'}, j.schedule)],
      ['In plain English', h('span', {id: 'schedule-text'}, j.schedule_description)],
      ['Time zone', j.timezone],
      ['Next fire', j.next_run_at ? [formatTime(j.next_run_at, j.timezone), ' (',
        relative(j.next_run_at), ')'] : null],
    ]));
    replace(body.querySelector('#counters'), h('h2', {}, 'Counters'), facts([
      ['Runs', String(j.runs)], ['Succeeded', String(j.successes)],
      ['Failed', String(j.failures)],
      ['Last run', j.last_run_at ? [formatTime(j.last_run_at, j.timezone), ' (',
        relative(j.last_run_at), ')'] : null],
      ['Last success', j.last_success_at ? [formatTime(j.last_success_at, j.timezone), ' (',
        relative(j.last_success_at), ')'] : null],
      ['Version', String(j.version)],
      ['Created', formatTime(j.created_at, j.timezone)],
      ['Updated', formatTime(j.updated_at, j.timezone)],
    ]));
    replace(body.querySelector('#fires-box'), firesTable(j));
    replace(body.querySelector('#policies'), policyFacts(j));
    replace(body.querySelector('#driver'), facts([['Driver', h('code', {}, j.driver)]]),
        h('pre', {class: 'config', id: 'driver-config'}, JSON.stringify(j.config, null, 2)));
    if (runs.onFirstPage()) await runs.refresh();
    const recent = await get('/api/v1/runs' + qs({job: ctx.name, limit: 100}));
    runChart(canvas, recent.items, j.timezone);
    chartNote.textContent = canvas.getAttribute('aria-label') +
      (window.Chart ? '' : ' (the chart library did not load)');
  }

  function renderHead() {
    const j = job;
    const admin = ctx.can('admin') ? [
      h('a', {href: `#/jobs/${encodeURIComponent(j.name)}/edit`, id: 'edit-job',
        class: 'button'}, 'Edit'),
      actionButton('Delete', {class: 'danger act-delete'}, async () => {
        const yes = await confirmAction(`Delete ${j.name}?`, 'The job and its whole run history ' +
          'are deleted. A running run is cancelled. This cannot be undone.', 'Delete');
        if (!yes) return;
        await api('DELETE', path);
        toast(`Deleted ${j.name}`);
        location.hash = '#/';
      })] : [];
    replace(head, h('p', {class: 'muted'}, h('a', {href: '#/'}, 'Jobs'), ' / ', j.name),
        h('h1', {}, h('span', {id: 'job-name'}, j.name), jobBadges(j)),
        j.state_reason ? h('p', {class: 'muted'}, j.state_reason) : null,
        j.description ? h('p', {}, j.description) : null,
        h('div', {class: 'actions'}, jobActions(j, ctx, refresh), admin));
  }

  return {dispose: every(REFRESH_MS, refresh)};
}

export function runsView(main, ctx) {
  const status = h('select', {id: 'r-status'}, ['', 'queued', 'running', 'succeeded', 'failed',
    'timed_out', 'cancelled', 'skipped', 'abandoned'].map((s) => h('option', {value: s},
    s || 'any')));
  const jobIn = h('input', {id: 'r-job', size: 16, placeholder: 'job name'});
  const errors = h('div', {});
  const runs = pagedRuns(() => ({status: status.value, job: jobIn.value.trim()}), () => null,
      true, 50);
  const filters = h('form', {class: 'filters', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    runs.reset();
    refresh();
  }}, h('label', {}, 'Status', status), h('label', {}, 'Job', jobIn),
  h('button', {type: 'submit'}, 'Filter'));
  replace(main, h('h1', {}, 'Runs'), h('p', {class: 'muted'},
      'Times here are in UTC or your choice above; a job\'s page shows its own zone.'),
  filters, errors, runs.el);
  async function refresh() {
    if (main.contains(document.activeElement) && document.activeElement.closest('table')) return;
    try {
      replace(errors);
      if (runs.onFirstPage()) await runs.refresh();
    } catch (e) {
      replace(errors, errorBox(e));
      throw e;
    }
  }
  return {dispose: every(REFRESH_MS, refresh)};
}

export function runView(main, ctx) {
  const path = `/api/v1/runs/${ctx.id}`;
  const head = h('div', {});
  const info = h('section', {class: 'panel', id: 'run-facts'});
  const output = h('pre', {id: 'output', tabindex: 0, 'aria-label': 'captured output'});
  const outNote = h('p', {class: 'muted', id: 'output-note'});
  replace(main, head, info, h('section', {class: 'panel'}, h('h2', {}, 'Output'), outNote,
      output));
  let run = null;
  let zone = null;
  let streaming = null;  // AbortController while the output streams
  let stopped = false;

  function render() {
    const r = run;
    const cancel = !TERMINAL.has(r.status) && ctx.can('operator') ?
      actionButton('Cancel run', {class: 'danger act-cancel'}, async () => {
        const yes = await confirmAction(`Cancel run ${r.id}?`, `The run of ${r.job} is ` +
          'stopped (its process group is signalled) and recorded as cancelled.', 'Cancel run');
        if (!yes) return;
        await post(`${path}/cancel`);
        toast(`Cancelling run ${r.id}`);
        await poll();
      }) : null;
    replace(head, h('p', {class: 'muted'}, h('a', {href: '#/'}, 'Jobs'), ' / ',
        h('a', {href: `#/jobs/${encodeURIComponent(r.job)}`}, r.job), ' / ', `run ${r.id}`),
    h('h1', {}, `Run ${r.id}`, h('span', {id: 'run-status', 'aria-live': 'polite'},
        badge(r.status))),
    h('div', {class: 'actions'}, cancel));
    replace(info, facts([
      ['Job', h('a', {href: `#/jobs/${encodeURIComponent(r.job)}`}, r.job)],
      ['Status', r.status],
      ['Trigger', r.trigger],
      ['Attempt', String(r.attempt)],
      ['Scheduled for', formatTime(r.scheduled_for, zone)],
      ['Queued', formatTime(r.queued_at, zone)],
      ['Started', formatTime(r.started_at, zone)],
      ['Finished', formatTime(r.finished_at, zone)],
      ['Fire lag', formatMs(lagMs(r))],
      ['Duration', formatMs(r.duration_ms)],
      ['Instance', r.instance],
      ['Exit code', r.exit_code === null ? null : String(r.exit_code)],
      ['Error', r.error ? h('span', {class: 'run-error'}, r.error) : null],
      ['Reason', r.reason],
    ]));
  }

  function showOutput(text, truncated) {
    output.textContent = text;
    outNote.textContent = truncated ? 'The start of the output was dropped (it was larger ' +
      'than the capture limit).' : text ? '' : 'No output.';
  }

  let streamFailedAt = 0;  // when the stream last failed: polled meanwhile, retried later
  let zoneKnown = false;

  async function stream() {
    if (streaming || stopped) return;
    streaming = new AbortController();
    output.textContent = '';
    let first = true;
    let ended = false;
    outNote.textContent = 'Streaming live…';
    try {
      await streamOutput(ctx.id, (event, data) => {
        if (event === 'output') {
          if (first && data.offset > 0) {
            outNote.textContent = 'Streaming live (earlier output was dropped)…';
          }
          first = false;
          output.appendChild(document.createTextNode(data.data));
          output.scrollTop = output.scrollHeight;
        } else if (event === 'end') {
          ended = true;
          if (!data.error) {
            run = data;
            render();
          }
        }
      }, streaming.signal);
    } catch (e) {
      if (e.name === 'AbortError') return;
      // Too many streams open (503), or the connection dropped: read the
      // output by polling, and try streaming again in a while.
      streamFailedAt = Date.now();
      outNote.textContent = `Live output unavailable (${e.message}); refreshing every 2 s.`;
    } finally {
      streaming = null;
    }
    if (ended && !stopped) await poll(true);
  }

  async function poll(final = false) {
    const wasTerminal = run && TERMINAL.has(run.status);
    run = await get(path);
    if (!zoneKnown) {
      zoneKnown = true;
      try {
        zone = (await get(`/api/v1/jobs/${encodeURIComponent(run.job)}`)).timezone;
      } catch (e) {
        zone = null;  // the job was deleted: UTC
      }
    }
    render();
    if (TERMINAL.has(run.status)) {
      if (!wasTerminal || final) showOutput(run.output, run.output_truncated);
      return;
    }
    if (streaming) return;
    if (Date.now() - streamFailedAt > 10000) {
      stream();
    } else {
      const out = await get(`${path}/output`);
      output.textContent = out.output;
    }
  }

  let stopPolling = () => {};
  poll().then(() => {
    // While it is going, the status is re-read (queued -> running shows without a reload).
    if (!stopped) {
      stopPolling = every(2000, async () => {
        if (run && TERMINAL.has(run.status)) return;
        await poll();
      });
    }
  }, (e) => failPage(main, e));
  return {dispose: () => {
    stopped = true;
    stopPolling();
    if (streaming) streaming.abort();
  }};
}

export function instancesView(main, ctx) {
  const box = h('div', {});
  replace(main, h('h1', {}, 'Instances'), h('p', {class: 'muted'}, 'Every sked serve that ' +
    'shares this store. An instance is alive while its heartbeat is fresher than its lease.'), box);
  async function refresh() {
    try {
      const list = await get('/api/v1/instances');
      replace(box, h('div', {class: 'table-wrap'}, h('table', {id: 'instances-table'},
          h('thead', {}, h('tr', {}, ['Instance', 'Host', 'PID', 'Version', 'Started',
            'Last heartbeat', 'State', 'Running'].map((t) => h('th', {}, t)))),
          h('tbody', {}, list.items.map((i) => h('tr', {},
              h('td', {}, h('code', {}, i.id), i.self ? h('span', {class: 'muted'}, ' (this one)') :
                null),
              h('td', {}, i.host), h('td', {class: 'num'}, String(i.pid)),
              h('td', {}, i.version),
              h('td', {}, formatTime(i.started_at, null)),
              h('td', {}, i.heartbeat_at ? relative(i.heartbeat_at) : '—'),
              h('td', {}, badge(i.state)),
              h('td', {class: 'num'}, String(i.running))))))));
    } catch (e) {
      replace(box, errorBox(e));
      throw e;
    }
  }
  return {dispose: every(REFRESH_MS, refresh)};
}

// Newer/Older buttons for a cursor-paged list: `cursors` is the stack of the
// pages' cursors (null for the first), `page` the one shown.
function showPager(pager, cursors, page, refresh) {
  replace(pager,
      cursors.length > 1 ? h('button', {type: 'button', onclick: () => {
        cursors.pop();
        refresh();
      }}, 'Newer') : null,
      page.next_cursor ? h('button', {type: 'button', onclick: () => {
        cursors.push(page.next_cursor);
        refresh();
      }}, 'Older') : null);
}

// The audit log (admins): every change made through the API or the CLI, and
// every refused attempt, newest first.
export function auditView(main, ctx) {
  if (!ctx.can('admin')) {
    replace(main, h('div', {class: 'panel'}, h('div', {class: 'error-box', id: 'forbidden'},
        'The audit log needs an admin token.'), h('a', {href: '#/'}, 'All jobs')));
    return {dispose() {}};
  }
  const actor = h('input', {id: 'a-actor', size: 14, placeholder: 'token name'});
  const action = h('input', {id: 'a-action', size: 14, placeholder: 'job.create'});
  const box = h('div', {});
  const pager = h('div', {class: 'pager'});
  const cursors = [null];
  const filters = h('form', {class: 'filters', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    cursors.length = 1;
    refresh();
  }}, h('label', {}, 'Actor', actor), h('label', {}, 'Action', action),
  h('button', {type: 'submit'}, 'Filter'));
  replace(main, h('h1', {}, 'Audit log'), h('p', {class: 'muted'}, 'Every change made through ' +
    'the API or the CLI, and every refused attempt (sked audit list shows the same).'),
  filters, box, pager);
  async function refresh() {
    if (main.contains(document.activeElement) && document.activeElement.closest('table')) return;
    try {
      const page = await get('/api/v1/audit' + qs({actor: actor.value.trim(),
        action: action.value.trim(), limit: 50, cursor: cursors[cursors.length - 1]}));
      replace(box, h('div', {class: 'table-wrap'}, h('table', {id: 'audit-table'},
          h('thead', {}, h('tr', {}, ['When', 'Who', 'Action', 'Target', 'From', 'Status',
            'Detail'].map((t) => h('th', {}, t)))),
          h('tbody', {}, page.items.length ? page.items.map((e) => h('tr', {},
              h('td', {}, formatTime(e.at, null), h('br'), h('span', {class: 'muted'},
                  relative(e.at))),
              h('td', {}, e.actor), h('td', {}, h('code', {}, e.action)),
              h('td', {}, e.target), h('td', {class: 'hide-narrow'}, e.source),
              h('td', {}, badge(e.status < 400 ? 'succeeded' : 'failed'), ' ', String(e.status)),
              h('td', {}, e.detail))) :
            h('tr', {}, h('td', {colspan: 7, class: 'muted'}, 'Nothing on record.'))))));
      showPager(pager, cursors, page, refresh);
    } catch (e) {
      replace(box, errorBox(e));
      throw e;
    }
  }
  return {dispose: every(REFRESH_MS, refresh)};
}

// A notification's delivery attempts, as rows under its own (fetched when
// opened): who tried, when it ended, and why it failed.
async function attemptRows(n) {
  const list = await get(`/api/v1/notifications/${n.id}/attempts`);
  if (!list.items.length) {
    return [h('tr', {class: 'attempt'}, h('td', {colspan: 9, class: 'muted'},
        n.status === 'pending' ? 'No attempt has ended yet.' : 'No attempt on record.'))];
  }
  return list.items.map((a) => h('tr', {class: 'attempt', dataset: {attempt: String(a.attempt)}},
      h('td', {}, formatTime(a.finished_at, null)),
      h('td', {colspan: 3, class: 'muted'}, `attempt ${a.attempt} by `, h('code', {}, a.instance)),
      h('td', {}, badge(a.delivered ? 'delivered' : 'failed')),
      h('td', {colspan: 2}, a.retry_at ? `next ${relative(a.retry_at)}` : ''),
      h('td', {colspan: 2}, a.error)));
}

// Notifications (any token): what was sent where, newest first, each with its
// delivery attempts on demand.
export function notificationsView(main, ctx) {
  const job = h('input', {id: 'n-job', size: 14, placeholder: 'job name'});
  const status = h('select', {id: 'n-status'}, ['', 'pending', 'delivered', 'failed'].map(
      (v) => h('option', {value: v}, v || 'any status')));
  const box = h('div', {});
  const pager = h('div', {class: 'pager'});
  const cursors = [null];
  const open = new Set();  // notification ids whose attempts are shown
  const filters = h('form', {class: 'filters', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    cursors.length = 1;
    refresh();
  }}, h('label', {}, 'Job', job), h('label', {}, 'Status', status),
  h('button', {type: 'submit'}, 'Filter'));
  replace(main, h('h1', {}, 'Notifications'), h('p', {class: 'muted'}, 'Alerts raised by ' +
    'failures, recoveries and the watchdog, and their delivery to each channel (sked notify ' +
    'list shows the same).'), filters, box, pager);
  // `focus`: a notification whose attempts button gets the focus back once
  // redrawn (it was just pressed); otherwise a refresh waits while the focus
  // is in the table.
  async function refresh(focus) {
    if (focus === undefined && main.contains(document.activeElement) &&
        document.activeElement.closest('table')) {
      return;
    }
    try {
      const page = await get('/api/v1/notifications' + qs({job: job.value.trim(),
        status: status.value, limit: 50, cursor: cursors[cursors.length - 1]}));
      const rows = [];
      for (const n of page.items) {
        const toggle = h('button', {type: 'button', class: 'link', 'aria-expanded':
          String(open.has(n.id)), onclick: () => {
          if (open.has(n.id)) open.delete(n.id); else open.add(n.id);
          refresh(n.id);
        }}, String(n.attempts));
        rows.push(h('tr', {dataset: {notification: String(n.id)}},
            h('td', {}, formatTime(n.created_at, null), h('br'), h('span', {class: 'muted'},
                relative(n.created_at))),
            h('td', {}, h('a', {href: `#/jobs/${encodeURIComponent(n.job)}`}, n.job)),
            h('td', {}, n.run ? h('a', {href: `#/runs/${n.run}`}, `#${n.run}`) : '—'),
            h('td', {}, h('code', {}, n.event)),
            h('td', {}, n.channel),
            h('td', {}, badge(n.status)),
            h('td', {class: 'num'}, toggle),
            h('td', {}, n.finished_at ? formatTime(n.finished_at, null) :
              (n.next_attempt_at ? `next ${relative(n.next_attempt_at)}` : '—')),
            h('td', {}, n.last_error)));
        if (open.has(n.id)) rows.push(...await attemptRows(n));
      }
      replace(box, h('div', {class: 'table-wrap'}, h('table', {id: 'notifications-table'},
          h('thead', {}, h('tr', {}, ['Raised', 'Job', 'Run', 'Event', 'Channel', 'Status',
            'Attempts', 'Delivered / next', 'Last error'].map((t) => h('th', {}, t)))),
          h('tbody', {}, rows.length ? rows :
            h('tr', {}, h('td', {colspan: 9, class: 'muted'}, 'Nothing on record.'))))));
      if (focus !== undefined) {
        const again = box.querySelector(`tr[data-notification="${focus}"] button.link`);
        if (again) again.focus();
      }
      showPager(pager, cursors, page, refresh);
    } catch (e) {
      replace(box, errorBox(e));
      throw e;
    }
  }
  return {dispose: every(REFRESH_MS, refresh)};
}
