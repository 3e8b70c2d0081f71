// Building the page from data without ever parsing data as HTML: elements are made with
// createElement and every value goes in as a text node or an attribute. The page's
// Content-Security-Policy (Trusted Types with no policy) makes innerHTML throw anyway.

const SVG = 'http://www.w3.org/2000/svg';

// h makes an HTML element: props are attributes, except class, text, dataset and on<event>
// handlers; children are nodes, strings (as text), arrays of them, or null/false (skipped).
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

// s makes an SVG element the same way.
export function s(tag, props = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.entries(value).forEach(([k, v]) => { el.dataset[k] = String(v); });
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked') el[key] = value;
    else {
      if (key === 'href' && !String(value).startsWith('#')) throw new Error('only in-page links: ' + value);
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

// fill replaces el's children with children (as h takes them).
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Formatting. Times are shown in UTC, as the API and the exported partitions use it.

export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

export function relative(iso, now = Date.now()) {
  if (!iso) return '';
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  if (Math.abs(seconds) < 5) return 'just now';
  const text = formatDuration(Math.abs(seconds));
  return seconds >= 0 ? 'in ' + text : text + ' ago';
}

export function formatDuration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function formatCount(n) {
  return Number(n).toLocaleString('en-US');
}

export function formatBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
}

// timeEl shows a UTC time with how long ago (or how soon) it is.
export function timeEl(iso, empty = '—') {
  if (!iso) return h('span', { class: 'muted' }, empty);
  return h('time', { datetime: iso, title: relative(iso) }, formatTime(iso), h('span', { class: 'muted' }, ' (', relative(iso), ')'));
}

// ago shows how long ago (or how soon) a time is, the UTC time on hover: for dense tables.
export function ago(iso, empty = '—') {
  if (!iso) return h('span', { class: 'muted' }, empty);
  return h('time', { datetime: iso, title: formatTime(iso) }, relative(iso));
}

// humanize turns a camelCase field name into words: sseKmsKeyId -> "Sse kms key id".
export function humanize(name) {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// Badges carry their meaning in text; the colour only repeats it.

export function connectionBadge(status) {
  if (status === 'SUCCESS') return h('span', { class: 'badge ok' }, 'SUCCESS');
  if (status === 'PENDING') return h('span', { class: 'badge pending' }, 'PENDING');
  return h('span', { class: 'badge error' }, 'FAILING');
}

export function jobBadge(status) {
  const cls = { SUCCEEDED: 'ok', FAILED: 'error', RUNNING: 'running', PENDING: 'pending' }[status] || 'pending';
  return h('span', { class: 'badge ' + cls }, status);
}

// toast announces a result to everyone, screen readers included (role=status).
let toastTimer;
export function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  el.className = 'toast ' + kind;
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.textContent = ''; el.className = 'toast'; }, 8000);
}

// copyButton copies text() to the clipboard: the Clipboard API where the page is a secure
// context (https or loopback), else a selected off-screen text area.
export function copyButton(text, label = 'Copy') {
  const button = h('button', { type: 'button', class: 'copy', dataset: { label } }, label);
  button.addEventListener('click', async () => {
    const value = typeof text === 'function' ? text() : text;
    let ok = false;
    try {
      await navigator.clipboard.writeText(value);
      ok = true;
    } catch {
      const area = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
      area.value = value;
      document.body.append(area);
      area.select();
      try { ok = document.execCommand('copy'); } catch { ok = false; }
      area.remove();
      button.focus();
    }
    button.textContent = ok ? 'Copied' : 'Copy failed: select the text';
    if (ok) button.dataset.copied = String(Number(button.dataset.copied || 0) + 1);
    toast(ok ? 'Copied to the clipboard.' : 'The browser refused to copy: select the text and copy it.', ok ? 'info' : 'error');
    setTimeout(() => { button.textContent = label; }, 2500);
  });
  return button;
}

// confirmDialog asks before something that cannot be undone; Escape or Cancel answer no.
export function confirmDialog({ title, message, confirm = 'Confirm' }) {
  return new Promise((resolve) => {
    const cancelButton = h('button', { type: 'button', autofocus: true }, 'Cancel');
    const confirmButton = h('button', { type: 'button', class: 'danger', 'data-confirm': '' }, confirm);
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', {}, message),
      h('div', { class: 'actions' }, cancelButton, confirmButton));
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    cancelButton.addEventListener('click', () => done(false));
    confirmButton.addEventListener('click', () => done(true));
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// section is a titled part of a page.
export function section(title, ...children) {
  const id = 'sec-' + title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), children);
}

// table makes a table that turns into labelled cards on narrow screens: columns are
// [header, cell(row) -> node|string]; each cell carries its header as data-label.
export function table(columns, rows, { caption, className, rowProps } = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: ['responsive', className] },
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map(([header]) => h('th', { scope: 'col' }, header)))),
      h('tbody', {}, rows.map((row) => h('tr', rowProps ? rowProps(row) : {},
        columns.map(([header, cell]) => h('td', { dataset: { label: header } }, cell(row))))))));
}
