// The console's entry: sign-in, navigation and the hash router (#/, #/config/<id>,
// #/new/<kind>, #/edit/<id>, #/tokens). What the token may not do is not offered: AUDIT sees
// exports, ADMIN also tokens.

import { session, viewer, can, ApiError } from './api.js';
import { h, fill, toast } from './dom.js';
import { renderOverview } from './overview.js';
import { renderConfig } from './config.js';
import { renderNew, renderEdit } from './forms.js';
import { renderTokens } from './tokens.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let me = null;
let renderCount = 0;

const routes = [
  { re: /^#\/?$/, need: 'AUDIT', title: 'Exports', view: (el) => renderOverview(el) },
  { re: /^#\/config\/([^/]+)$/, need: 'AUDIT', title: 'Export configuration', view: (el, [id], again) => renderConfig(el, id, again) },
  { re: /^#\/new(?:\/([^/]+))?$/, need: 'AUDIT', title: 'New export configuration', view: (el, [kind]) => renderNew(el, kind) },
  { re: /^#\/edit\/([^/]+)$/, need: 'AUDIT', title: 'Edit export configuration', view: (el, [id]) => renderEdit(el, id) },
  { re: /^#\/tokens$/, need: 'ADMIN', title: 'API tokens', view: (el, _, again) => renderTokens(el, me, again) },
];

function signInPage(message) {
  me = null;
  nav.replaceChildren();
  who.replaceChildren();
  document.title = 'Sign in · auditexport';
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'token-help signin-error' });
  const error = h('p', { class: 'field-error', id: 'signin-error', role: 'alert', hidden: !message }, message || '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'signin', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'token' }, 'API token'),
      input,
      h('p', { class: 'help', id: 'token-help' },
        'An AUDIT or ADMIN token: on first start the server writes its admin token to <data-dir>/admin-token. ',
        'The console keeps it in this tab only (sessionStorage): closing the tab or signing out forgets it.')),
    error,
    h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) { showError(error, 'Paste a token first.'); input.focus(); return; }
    button.disabled = true;
    session.set(token);
    input.value = '';
    try {
      me = await viewer();
      if (location.hash === '' || location.hash === '#') location.hash = '#/'; // hashchange renders it
      else await route(true);
    } catch (err) {
      session.clear();
      showError(error, err.status === 401 ? 'The server does not accept this token.' : err.message);
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  fill(main, h('div', { class: 'signin-wrap' },
    h('h1', { tabindex: '-1' }, 'Sign in to auditexport'),
    h('p', {}, 'The console manages audit-event exports through the server\'s GraphQL API, with your API token.'),
    form));
  input.focus();
}

function showError(el, message) {
  el.textContent = message;
  el.hidden = false;
}

function signOut(message) {
  session.clear();
  history.replaceState(null, '', '#/');
  signInPage(message);
}

function renderNav() {
  const links = [can(me, 'AUDIT') ? ['#/', 'Exports'] : null, can(me, 'ADMIN') ? ['#/tokens', 'Tokens'] : null].filter(Boolean);
  const current = location.hash || '#/';
  nav.replaceChildren(h('ul', {}, links.map(([href, label]) => h('li', {},
    h('a', { href, 'aria-current': (href === '#/' ? !current.startsWith('#/tokens') : current.startsWith(href)) ? 'page' : null }, label)))));
  const out = h('button', { type: 'button', id: 'signout' }, 'Sign out');
  out.addEventListener('click', () => { signOut(); toast('Signed out: this tab no longer holds the token.'); });
  who.replaceChildren(h('span', { class: 'whoami' }, h('span', { class: 'muted' }, 'Signed in as '),
    h('strong', { id: 'viewer-name' }, me.name), ' ', h('span', { class: 'muted small' }, '(' + me.permissions.join(', ') + ')')), out);
}

// route renders the page the hash names; focusHeading moves focus to its heading, as a page
// load would, for keyboard and screen-reader users.
async function route(focusHeading) {
  if (!session.token()) { signInPage(); return; }
  if (!me) {
    try {
      me = await viewer();
    } catch (e) {
      if (e.status === 401) { signOut('The server no longer accepts the token: sign in again.'); return; }
      fill(main, h('h1', {}, 'The server could not be reached'), h('p', { class: 'error-text' }, e.message));
      return;
    }
  }
  renderNav();
  const hash = location.hash || '#/';
  const r = routes.find((x) => x.re.test(hash));
  const count = ++renderCount;
  if (!r) {
    fill(main, h('h1', { tabindex: '-1' }, 'No such page'), h('p', {}, h('a', { href: '#/' }, 'Back to the exports')));
    return;
  }
  document.title = r.title + ' · auditexport';
  if (!can(me, r.need)) {
    fill(main, h('h1', { tabindex: '-1' }, 'Nothing here for this token'),
      h('p', {}, `The token ${me.name} holds ${me.permissions.join(', ')}. `,
        r.need === 'ADMIN' ? 'Tokens are managed with an ADMIN token.' : 'Exports are shown to AUDIT and ADMIN tokens; sign in with one of those.'));
    return;
  }
  const params = hash.match(r.re).slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p)));
  const again = () => (count === renderCount ? route(false) : Promise.resolve());
  main.setAttribute('aria-busy', 'true');
  try {
    const target = h('div', { class: 'page' });
    await r.view(target, params, again);
    if (count !== renderCount) return; // another page was asked for meanwhile
    fill(main, target);
    const heading = main.querySelector('h1');
    if (focusHeading && heading) heading.focus({ preventScroll: false });
  } catch (e) {
    if (count !== renderCount) return;
    if (e instanceof ApiError && e.status === 401) return; // signed out by the listener
    fill(main, h('h1', { tabindex: '-1' }, 'Something went wrong'), h('p', { class: 'error-text', role: 'alert' }, e.message),
      h('p', {}, h('a', { href: '#/' }, 'Back to the exports')));
  } finally {
    if (count === renderCount) main.removeAttribute('aria-busy');
  }
}

window.addEventListener('hashchange', () => route(true));
// A 401 while signed in (the token was revoked) signs out; at sign-in the form says it itself.
window.addEventListener('auditexport:unauthenticated', () => { if (me) signOut('The server no longer accepts the token: sign in again.'); });
document.getElementById('skip').addEventListener('click', (e) => { e.preventDefault(); main.focus(); });
route(false);
