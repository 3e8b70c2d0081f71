// API tokens (ADMIN): list, create (the token is shown once), revoke.

import { gql, schema } from './api.js';
import { h, fill, timeEl, section, table, copyButton, confirmDialog, toast } from './dom.js';

export async function renderTokens(main, me, rerender) {
  const { enums } = await schema();
  const tokens = (await gql('query Tokens { apiTokens { name permissions createdBy createdAt } }')).apiTokens;
  const revoke = async (t) => {
    const ok = await confirmDialog({
      title: `Revoke ${t.name}?`,
      message: 'Every request with this token is refused from now on. Whoever uses it needs a new one. This cannot be undone.',
      confirm: 'Revoke',
    });
    if (!ok) return;
    try {
      await gql('mutation($name: String!) { revokeApiToken(name: $name) { name } }', { name: t.name });
      toast(`Revoked ${t.name}.`);
      await rerender();
    } catch (e) {
      toast(e.message, 'error');
    }
  };
  fill(main, 
    h('h1', { tabindex: '-1' }, 'API tokens'),
    h('p', { class: 'muted' }, 'The server keeps only a hash of each token: a token is shown once, when it is created.'),
    createForm(enums.Permission || [], rerender),
    section('Tokens', table([
      ['Name', (t) => h('span', { class: 'token-name' }, t.name)],
      ['Permissions', (t) => t.permissions.join(', ')],
      ['Created', (t) => h('span', {}, timeEl(t.createdAt), t.createdBy ? ' by ' + t.createdBy : '')],
      ['', (t) => t.name.toLowerCase() === me.name.toLowerCase()
        ? h('span', { class: 'muted' }, 'this session\'s token')
        : h('button', { type: 'button', class: 'danger small-button', onclick: () => revoke(t) }, 'Revoke…')],
    ], tokens, { caption: 'API tokens', rowProps: (t) => ({ dataset: { token: t.name } }) })));
}

function createForm(permissions, rerender) {
  const name = h('input', { id: 'token-name', name: 'name', type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'token-name-help token-name-err' });
  const nameErr = h('p', { class: 'field-error', id: 'token-name-err', hidden: true });
  const boxes = permissions.map((p) => h('input', { type: 'checkbox', id: 'perm-' + p.name, value: p.name, name: 'permissions' }));
  const permsErr = h('p', { class: 'field-error', id: 'token-perms-err', hidden: true });
  const result = h('div', { class: 'token-result', role: 'region', 'aria-label': 'New token', hidden: true, tabindex: '-1' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Create token');
  const form = h('form', { class: 'token-form', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'token-name' }, 'Name'),
      name,
      h('p', { class: 'help', id: 'token-name-help' }, 'Unique; createdBy and the audit events record it. Letters, digits, spaces and . _ @ -.'),
      nameErr),
    h('fieldset', { class: 'field', 'aria-describedby': 'token-perms-err' },
      h('legend', {}, 'Permissions'),
      boxes.map((b, i) => h('label', { class: 'check', for: b.id }, b, ' ', permissions[i].name,
        permissions[i].description ? h('span', { class: 'muted' }, ' — ', permissions[i].description) : null)),
      permsErr),
    h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    [nameErr, permsErr].forEach((el) => { el.hidden = true; el.textContent = ''; });
    name.removeAttribute('aria-invalid');
    button.disabled = true;
    try {
      const token = (await gql('mutation($name: String!, $permissions: [Permission!]!) { createApiToken(name: $name, permissions: $permissions) }',
        { name: name.value.trim(), permissions: boxes.filter((b) => b.checked).map((b) => b.value) })).createApiToken;
      showToken(result, name.value.trim(), token, rerender);
      form.reset();
    } catch (err) {
      const fields = err.fields || {};
      if (fields.name || err.code === 'CONFLICT') {
        nameErr.textContent = fields.name || err.message;
        nameErr.hidden = false;
        name.setAttribute('aria-invalid', 'true');
        name.focus();
      }
      if (fields.permissions) { permsErr.textContent = fields.permissions; permsErr.hidden = false; }
      if (!fields.name && !fields.permissions && err.code !== 'CONFLICT') toast(err.message, 'error');
    } finally {
      button.disabled = false;
    }
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'new-token' }, h('h2', { id: 'new-token' }, 'New token'), form, result);
}

// showToken shows a new token this once, with a copy button; Done forgets it.
function showToken(result, name, token, rerender) {
  const field = h('input', { id: 'new-token-value', type: 'text', readonly: true, class: 'mono', value: token, 'aria-label': 'The new token' });
  const done = h('button', { type: 'button' }, 'Done: I have stored it');
  done.addEventListener('click', () => { result.replaceChildren(); result.hidden = true; rerender(); });
  result.replaceChildren(
    h('h3', {}, `Token ${name} created`),
    h('p', { class: 'warn' }, 'Copy it now: it is not shown again, and the server cannot recover it.'),
    h('div', { class: 'inline-copy' }, field, copyButton(() => field.value, 'Copy token')),
    done);
  result.hidden = false;
  result.focus();
}
