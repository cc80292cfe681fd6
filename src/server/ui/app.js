// The dashboard's entry: sign-in, the router (#/..., so nothing but the
// route is ever in the URL), and the page's frame.
import {ApiError, get, setToken, token, whenUnauthenticated} from './api.js';
import {h, replace} from './dom.js';
import {setZonePreference, zonePreference} from './format.js';
import {auditView, instancesView, jobView, notificationsView, overviewView, runsView, runView}
  from './views.js';
import {jobFormView} from './job_form.js';

const main = document.getElementById('main');
const session = {name: null, role: null};
let current = null;  // the view shown: {dispose()}
let signInMessage = '';

const RANK = {viewer: 0, operator: 1, admin: 2};
// Whether the signed-in token's role is at least `role`: the page shows only
// the actions the token may take (the server checks every request anyway).
function can(role) {
  return session.role !== null && RANK[session.role] >= RANK[role];
}

function routes(path) {
  let m;
  if (path === '/' || path === '') return () => overviewView(main, {can});
  if (path === '/runs') return () => runsView(main, {can});
  if (path === '/instances') return () => instancesView(main, {can});
  if (path === '/notifications') return () => notificationsView(main, {can});
  if (path === '/audit') return () => auditView(main, {can});
  if (path === '/new') return () => jobFormView(main, {can, name: null});
  if ((m = path.match(/^\/jobs\/([^/]+)\/edit$/))) {
    return () => jobFormView(main, {can, name: decodeURIComponent(m[1])});
  }
  if ((m = path.match(/^\/jobs\/([^/]+)$/))) {
    return () => jobView(main, {can, name: decodeURIComponent(m[1])});
  }
  if ((m = path.match(/^\/runs\/(\d+)$/))) return () => runView(main, {can, id: m[1]});
  return null;
}

function section(path) {
  if (path.startsWith('/runs')) return 'runs';
  if (path.startsWith('/instances')) return 'instances';
  if (path.startsWith('/notifications')) return 'notifications';
  if (path.startsWith('/audit')) return 'audit';
  return 'jobs';
}

function showFrame(signedIn) {
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('sign-out').hidden = !signedIn;
  document.getElementById('nav-audit').hidden = !(signedIn && can('admin'));
  replace(document.getElementById('who'), signedIn ?
      h('span', {}, session.name, ' · ', h('span', {class: 'role', id: 'role'}, session.role)) :
      '');
}

function signInView(message) {
  showFrame(false);
  const input = h('input', {type: 'password', id: 'token', name: 'token', autocomplete: 'off',
    spellcheck: 'false', required: true, 'aria-describedby': 'token-help'});
  const error = h('div', {id: 'signin-error', role: 'alert'});
  if (message) replace(error, h('div', {class: 'error-box'}, message));
  const form = h('form', {class: 'panel signin', id: 'signin', onsubmit: async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    setToken(value);
    try {
      await signIn();
      route();
    } catch (err) {
      setToken(null);
      replace(error, h('div', {class: 'error-box'}, signInError(err)));
      input.focus();
    }
  }},
  h('h1', {}, 'Sign in to sked'),
  h('label', {for: 'token'}, 'API token'),
  input,
  h('p', {id: 'token-help', class: 'muted'},
      'A token from ', h('code', {}, 'sked token create --name NAME --role viewer|operator|admin'),
      '. It is kept in this tab only (session storage) and sent as the bearer header.'),
  error,
  h('div', {class: 'buttons'}, h('button', {class: 'primary', type: 'submit', id: 'signin-submit'},
      'Sign in')));
  replace(main, form);
  input.focus();
}

function signInError(err) {
  if (err instanceof ApiError && err.status === 401) {
    return 'This token was not accepted: ' + err.message;
  }
  return 'Cannot sign in: ' + err.message;
}

async function signIn() {
  const me = await get('/api/v1/whoami');
  session.name = me.name;
  session.role = me.role;
}

function route() {
  if (current && current.dispose) current.dispose();
  current = null;
  const path = (location.hash || '#/').slice(1) || '/';
  if (!token() || session.role === null) {
    if (token()) {
      signIn().then(route, (err) => {
        setToken(null);
        signInView(signInError(err));
      });
      return;
    }
    signInView(signInMessage);
    signInMessage = '';
    return;
  }
  showFrame(true);
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.section === section(path)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const make = routes(path);
  if (!make) {
    replace(main, h('div', {class: 'panel'}, h('h1', {}, 'Not found'),
        h('p', {}, 'No page here. ', h('a', {href: '#/'}, 'All jobs'))));
    return;
  }
  current = make();
  main.focus({preventScroll: true});
}

whenUnauthenticated((err) => {
  if (session.role === null) return;  // signing in: the form says why
  setToken(null);
  session.role = null;
  signInMessage = 'Signed out: the server no longer accepts this token (' + err.message + ').';
  route();
});

document.getElementById('sign-out').addEventListener('click', () => {
  setToken(null);
  session.name = session.role = null;
  location.hash = '#/';
  route();
});
const pref = document.getElementById('tz-pref');
pref.value = zonePreference();
pref.addEventListener('change', () => {
  setZonePreference(pref.value);
  route();
});
window.addEventListener('hashchange', route);
route();
