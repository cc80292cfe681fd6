// Times and durations as people read them. Every time the API gives is UTC
// (RFC 3339); the page shows it in the job's zone or in UTC, as the user
// chose (kept in local storage: a preference, not a secret).

const PREF = 'sked.times';

export function zonePreference() {
  return localStorage.getItem(PREF) === 'utc' ? 'utc' : 'job';
}

export function setZonePreference(value) {
  localStorage.setItem(PREF, value === 'utc' ? 'utc' : 'job');
}

const formatters = new Map();
function formatter(zone) {
  if (!formatters.has(zone)) {
    let f;
    try {
      f = new Intl.DateTimeFormat('en-CA', {
        timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
        minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'longOffset',
      });
    } catch (e) {
      f = null;  // a zone this browser does not know: UTC below
    }
    formatters.set(zone, f);
  }
  return formatters.get(zone);
}

// "2026-12-01 09:30:00 +01:00" in the job's zone (its offset then, which
// says whether DST was on), or "2026-12-01 08:30:00 UTC".
export function formatTime(iso, jobZone) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const utc = zonePreference() === 'utc' || !jobZone || jobZone === 'UTC' ||
      jobZone === 'Etc/UTC' || !formatter(jobZone);
  const f = formatter(utc ? 'UTC' : jobZone);
  const parts = Object.fromEntries(f.formatToParts(d).map((p) => [p.type, p.value]));
  const offset = (parts.timeZoneName || '').replace('GMT', '') || '+00:00';
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:` +
      `${parts.second} ${utc ? 'UTC' : offset}`;
}

// "in 4 min", "12 s ago", "3 h ago", "in 2 d".
export function relative(iso, now = Date.now()) {
  if (!iso) return '';
  const ms = new Date(iso).getTime() - now;
  const abs = Math.abs(ms);
  let text;
  if (abs < 1000) return 'now';
  if (abs < 60e3) text = `${Math.round(abs / 1e3)} s`;
  else if (abs < 3600e3) text = `${Math.round(abs / 60e3)} min`;
  else if (abs < 86400e3) text = `${(abs / 3600e3).toFixed(abs < 36000e3 ? 1 : 0)} h`;
  else text = `${Math.round(abs / 86400e3)} d`;
  return ms > 0 ? `in ${text}` : `${text} ago`;
}

// 1234.5 ms -> "1.23 s"; 0.4 -> "0.4 ms".
export function formatMs(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms === 0) return '< 1 ms';  // the API's times are to the millisecond
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 60e3) return `${(ms / 1e3).toFixed(2)} s`;
  if (ms < 3600e3) return `${Math.floor(ms / 60e3)} min ${Math.round((ms % 60e3) / 1e3)} s`;
  return `${(ms / 3600e3).toFixed(1)} h`;
}

// How late a run started: started - scheduled, in ms (null when not started,
// and for retries: they start a backoff after the fire they retry).
export function lagMs(run) {
  if (!run.started_at || !run.scheduled_for || run.trigger === 'retry') return null;
  return new Date(run.started_at).getTime() - new Date(run.scheduled_for).getTime();
}

export const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped',
  'abandoned']);
