// Building the page: elements are made with text content only, never from
// HTML strings, so a job name, an error or a run's output that looks like
// markup is shown as text.

// h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, [more])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value') {
      el.value = v;
    } else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') {
      el[k] = Boolean(v);
    } else if (k === 'style') {
      throw new Error('no style attributes: the page policy forbids them; use a class');
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) {
      append(el, c);
    } else if (c instanceof Node) {
      el.appendChild(c);
    } else {
      el.appendChild(document.createTextNode(String(c)));
    }
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// A definition list from [label, value] pairs (values may be nodes).
export function facts(pairs) {
  return h('dl', {class: 'facts'}, pairs.filter((p) => p).map(([k, v]) => [h('dt', {}, k),
    h('dd', {}, v === null || v === undefined || v === '' ? '—' : v)]));
}

// Asks before something is destroyed or cancelled; resolves true or false.
export function confirmAction(title, text, verb) {
  const dialog = document.getElementById('confirm');
  replace(dialog.querySelector('.confirm-title'), title);
  replace(dialog.querySelector('.confirm-text'), text);
  const ok = dialog.querySelector('.confirm-ok');
  ok.textContent = verb;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener('close', onClose);
      ok.removeEventListener('click', onOk);
      resolve(answer);
    };
    const onOk = () => {
      dialog.close('ok');
    };
    const onClose = () => done(dialog.returnValue === 'ok');
    dialog.returnValue = '';
    ok.addEventListener('click', onOk);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    dialog.querySelector('.confirm-cancel').focus();
  });
}

// A short message at the top of the page: ok or error.
export function toast(text, kind = 'ok') {
  const area = document.getElementById('toasts');
  const t = h('div', {class: 'toast toast-' + kind, role: kind === 'error' ? 'alert' : 'status'},
    text);
  area.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}
