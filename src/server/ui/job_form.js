// Creating and editing a job (admins). The server validates; its message is
// shown next to the field it names (the same messages the CLI prints).
import {ApiError, api, get, qs} from './api.js';
import {h, replace, toast} from './dom.js';

// [key, label, kind, hint]; kind: text, textarea, select:<a|b>, int, number, check.
const FIELDS = [
  ['name', 'Name', 'text', 'letters, digits, . _ -; cannot change later'],
  ['description', 'Description', 'text', ''],
  ['schedule', 'Schedule', 'text', 'cron ("30 2 * * *", 6 fields for seconds), "every 5m", ' +
    'or "at 2027-01-01T09:00:00"'],
  ['timezone', 'Time zone', 'text', 'IANA name, such as Europe/Berlin'],
  ['driver', 'Driver', 'text', 'shell, or one an embedder registered'],
  ['config', 'Driver config (JSON)', 'textarea', 'shell: {"command": "..."} or {"argv": [...]}'],
  ['overlap', 'Overlap', 'select:skip|queue|concurrent|replace', 'when a fire finds a run going'],
  ['max_concurrent', 'Max concurrent', 'int', 'overlap = concurrent'],
  ['max_queued', 'Max queued', 'int', 'overlap = queue'],
  ['misfire', 'Misfire', 'select:run_once|skip|run_all', 'fires missed while sked was down'],
  ['catchup_window', 'Catch-up window', 'text', 'such as 1h'],
  ['starting_deadline', 'Starting deadline', 'text', 'empty: none'],
  ['timeout', 'Timeout', 'text', 'empty: none'],
  ['priority', 'Priority', 'int', '-1000 to 1000'],
  ['retry.max', 'Retries', 'int', '0 to 100'],
  ['retry.backoff', 'Retry backoff', 'text', 'such as 10s'],
  ['retry.multiplier', 'Backoff multiplier', 'number', ''],
  ['retry.max_backoff', 'Max backoff', 'text', ''],
  ['retry.jitter', 'Backoff jitter', 'number', '0 to 1: a share of each backoff, random'],
  ['retry.on', 'Retry on', 'text', 'comma-separated: failed, timed_out, abandoned'],
  ['tags', 'Tags', 'text', 'comma-separated'],
  ['start_at', 'Active from', 'text', 'RFC 3339; empty: now'],
  ['end_at', 'Active until', 'text', 'RFC 3339; empty: forever'],
];
const NULLABLE = new Set(['starting_deadline', 'timeout', 'start_at', 'end_at']);
const id = (key) => 'f-' + key.replace('.', '-');

function valueOf(job, key) {
  if (!job) {
    return {driver: 'shell', timezone: 'UTC', config: '{\n  "command": "echo hello"\n}',
      overlap: 'skip', misfire: 'run_once', max_concurrent: 1, max_queued: 1,
      catchup_window: '1h', priority: 0, 'retry.max': 0, 'retry.backoff': '10s',
      'retry.multiplier': 2, 'retry.max_backoff': '1h', 'retry.jitter': 0.1,
      'retry.on': 'failed, timed_out, abandoned'}[key] ?? '';
  }
  if (key === 'retry.on') return job.retry.on.join(', ');
  if (key.startsWith('retry.')) return job.retry[key.slice(6)];
  if (key === 'config') return JSON.stringify(job.config, null, 2);
  if (key === 'tags') return job.tags.join(', ');
  return job[key] ?? '';
}

function input(key, kind, value, editing) {
  const attrs = {id: id(key), name: key, 'aria-describedby': `${id(key)}-err ${id(key)}-hint`};
  if (kind === 'textarea') return h('textarea', {...attrs, rows: 5, spellcheck: 'false'}, value);
  if (kind.startsWith('select:')) {
    return h('select', attrs, kind.slice(7).split('|').map((o) => h('option',
        {value: o, selected: String(value) === o}, o)));
  }
  return h('input', {...attrs, type: kind === 'int' || kind === 'number' ? 'number' : 'text',
    step: kind === 'number' ? 'any' : undefined, value: String(value),
    readonly: editing && key === 'name', autocomplete: 'off', spellcheck: 'false',
    list: key === 'timezone' ? 'zones' : undefined});
}

export function jobFormView(main, ctx) {
  const editing = ctx.name !== null;
  if (!ctx.can('admin')) {
    replace(main, h('div', {class: 'panel'}, h('div', {class: 'error-box', id: 'forbidden'},
        'Creating and editing jobs needs an admin token.'), h('a', {href: '#/'}, 'All jobs')));
    return {dispose() {}};
  }
  let job = null;
  let timer = null;
  const general = h('div', {id: 'form-error', role: 'alert'});
  const preview = h('div', {class: 'preview', id: 'schedule-preview', 'aria-live': 'polite'});

  async function build() {
    if (editing) {
      try {
        job = await get(`/api/v1/jobs/${encodeURIComponent(ctx.name)}`);
      } catch (e) {
        replace(main, h('div', {class: 'panel'}, h('div', {class: 'error-box'}, e.message)));
        return;
      }
    }
    const zones = typeof Intl.supportedValuesOf === 'function' ?
      Intl.supportedValuesOf('timeZone') : [];
    const form = h('form', {class: 'job-form panel', id: 'job-form', novalidate: true,
      onsubmit: submit},
    FIELDS.map(([key, label, kind, hint]) =>
      h('label', {class: kind === 'textarea' || key === 'description' || key === 'schedule' ?
        'wide' : ''}, label,
      input(key, kind, valueOf(job, key), editing),
      hint ? h('span', {class: 'hint', id: `${id(key)}-hint`}, hint) : null,
      key === 'schedule' ? preview : null,
      h('span', {class: 'field-error', id: `${id(key)}-err`}))),
    editing ? null : h('label', {}, h('span', {}, h('input', {type: 'checkbox', id: 'f-paused',
      name: 'paused'}), ' Create paused')),
    h('datalist', {id: 'zones'}, zones.map((z) => h('option', {value: z}))),
    h('div', {class: 'buttons wide'},
        h('a', {href: editing ? `#/jobs/${encodeURIComponent(ctx.name)}` : '#/',
          class: 'button'}, 'Cancel'),
        h('button', {type: 'submit', class: 'primary', id: 'job-save'},
            editing ? 'Save changes' : 'Create job')));
    replace(main, h('p', {class: 'muted'}, h('a', {href: '#/'}, 'Jobs'),
        editing ? [' / ', h('a', {href: `#/jobs/${encodeURIComponent(ctx.name)}`}, ctx.name)] :
          null, editing ? ' / edit' : ' / new'),
    h('h1', {}, editing ? `Edit ${ctx.name}` : 'New job'),
    job && job.source === 'config' ? h('div', {class: 'error-box'}, 'This job is declared in ' +
      'sked.toml: the next start of sked serve puts the file\'s version back. Edit the file ' +
      'to keep a change.') : null,
    general, form);
    for (const key of ['schedule', 'timezone']) {
      form.querySelector('#' + id(key)).addEventListener('input', () => {
        clearTimeout(timer);
        timer = setTimeout(showPreview, 300);
      });
    }
    showPreview();
    form.querySelector(editing ? '#f-description' : '#f-name').focus();
  }

  async function showPreview() {
    const expr = document.getElementById(id('schedule'));
    const tz = document.getElementById(id('timezone'));
    if (!expr) return;
    const text = expr.value.trim();
    if (!text) return replace(preview);
    if (/^(every|at)\s/.test(text)) {
      return replace(preview, 'An interval or one-time schedule: checked when saved.');
    }
    try {
      const p = await get('/api/v1/cron/preview' + qs({expr: text, tz: tz.value.trim() || 'UTC',
        n: 3}));
      replace(preview, p.valid ? [p.description, ' · next: ', p.next.map((f) => f.local +
        (f.dst ? ' (DST)' : '')).join(', ')] : h('span', {class: 'field-error'}, p.message));
    } catch (e) {
      replace(preview, h('span', {class: 'field-error'}, e.message));
    }
  }

  function fieldError(key, message) {
    const el = document.getElementById(`${id(key)}-err`);
    const inputEl = document.getElementById(id(key));
    if (!el || !inputEl) return false;
    el.textContent = message;
    inputEl.setAttribute('aria-invalid', 'true');
    inputEl.focus();
    return true;
  }

  function clearErrors() {
    replace(general);
    for (const el of document.querySelectorAll('.field-error[id$="-err"]')) el.textContent = '';
    for (const el of document.querySelectorAll('[aria-invalid]')) {
      el.removeAttribute('aria-invalid');
    }
  }

  // The body the API takes: every field shown; empty optional ones clear it.
  function body() {
    const out = {retry: {}};
    for (const [key, , kind] of FIELDS) {
      if (editing && key === 'name') continue;
      const raw = document.getElementById(id(key)).value;
      const text = raw.trim();
      let v;
      if (key === 'config') {
        try {
          v = JSON.parse(raw || '{}');
        } catch (e) {
          throw new FieldProblem('config', 'config: is not valid JSON: ' + e.message);
        }
      } else if (key === 'tags' || key === 'retry.on') {
        v = text ? text.split(',').map((t) => t.trim()).filter((t) => t) : [];
      } else if (kind === 'int' || kind === 'number') {
        if (text === '') continue;
        v = Number(text);
        if (!Number.isFinite(v) || (kind === 'int' && !Number.isInteger(v))) {
          throw new FieldProblem(key, `${key}: must be ${kind === 'int' ? 'an integer' :
            'a number'}`);
        }
      } else if (text === '') {
        if (NULLABLE.has(key)) v = null;
        else if (!editing) continue;
        else v = '';
      } else {
        v = text;
      }
      if (key.startsWith('retry.')) out.retry[key.slice(6)] = v;
      else out[key] = v;
    }
    if (!editing && document.getElementById('f-paused').checked) out.paused = true;
    return out;
  }

  async function submit(e) {
    e.preventDefault();
    clearErrors();
    const save = document.getElementById('job-save');
    save.disabled = true;
    try {
      const b = body();
      const saved = editing ?
        await api('PATCH', `/api/v1/jobs/${encodeURIComponent(ctx.name)}`, b,
            {'If-Match': `"${job.version}"`}) :
        await api('POST', '/api/v1/jobs', b);
      toast(editing ? `Saved ${saved.name}` : `Created ${saved.name}`);
      location.hash = `#/jobs/${encodeURIComponent(saved.name)}`;
    } catch (err) {
      const field = err.field || null;
      if (!(field && fieldError(field, err.message))) {
        const stale = err instanceof ApiError && err.status === 409 && editing;
        replace(general, h('div', {class: 'error-box'}, err.message, stale ?
          ' (someone changed the job since you opened it: reload to see their version)' : ''));
        general.scrollIntoView({block: 'nearest'});
      }
    } finally {
      save.disabled = false;
    }
  }

  build();
  return {dispose: () => clearTimeout(timer)};
}

class FieldProblem extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}
