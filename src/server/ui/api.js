// The REST API as the page uses it: the token lives in session storage (gone
// when the tab closes; never in a URL or a cookie) and goes out as the bearer
// header. The page can do nothing a script with the same token cannot.

const KEY = 'sked.token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

// An answer that is not 2xx: status, the API's error object, and its field.
export class ApiError extends Error {
  constructor(status, error) {
    super(error && error.message ? error.message : `HTTP ${status}`);
    this.status = status;
    this.code = error ? error.code : 'http';
    this.field = error ? error.field : null;
  }
}

// Called when a request comes back 401: the page goes to sign-in.
let onUnauthenticated = () => {};
export function whenUnauthenticated(fn) {
  onUnauthenticated = fn;
}

export async function api(method, path, body, headers = {}, signal = undefined) {
  const h = {'Accept': 'application/json', ...headers};
  const t = token();
  if (t) h['Authorization'] = `Bearer ${t}`;
  const init = {method, headers: h, signal, cache: 'no-store', credentials: 'omit'};
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, {code: 'network', message: 'the server cannot be reached'});
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.error);
    if (res.status === 401 && t) onUnauthenticated(err);
    throw err;
  }
  return data;
}

export const get = (path, signal) => api('GET', path, undefined, {}, signal);
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);

// A query string from an object, skipping empty values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// The run's output as Server-Sent Events, read with fetch (EventSource
// cannot send a bearer header). Calls onEvent(name, data) per event until
// the stream ends or `signal` aborts.
export async function streamOutput(runId, onEvent, signal) {
  const res = await fetch(`/api/v1/runs/${encodeURIComponent(runId)}/output/stream`, {
    headers: {'Authorization': `Bearer ${token()}`, 'Accept': 'text/event-stream'},
    signal, cache: 'no-store', credentials: 'omit',
  });
  if (!res.ok) {
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    throw new ApiError(res.status, data && data.error);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;  // a comment: keep-alive
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) onEvent(event, JSON.parse(data.join('\n')));
    }
  }
}
