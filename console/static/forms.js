// Create and update forms, made from the schema: one field per input field of the kind's
// mutation, in the schema's order, with its description as help. Validation is the server's:
// its BAD_USER_INPUT errors list each invalid field (extensions.fields), shown beside the field.

import { gql, schema, endpointSelection, kindOf } from './api.js';
import { h, fill, toast } from './dom.js';
import { KINDS, FIELDS, kindLabel, fieldLabel, isSecret } from './hints.js';
import { configName } from './overview.js';

// widget makes a labelled input for field, filled with value; it returns the wrapper and a read().
function widget(field, value, { editing, requiredInCreate, createDescription }) {
  const id = 'f-' + field.name;
  const helpId = 'help-' + field.name;
  const errId = 'err-' + field.name;
  const secret = isSecret(field);
  const required = editing ? requiredInCreate && !secret : field.required;
  let input;
  if (field.kind === 'ENUM') {
    input = h('select', { id, name: field.name },
      required ? null : h('option', { value: '' }, editing ? '— none —' : '— default —'),
      (field.options || []).map((o) => h('option', { value: o.name }, o.description ? `${o.name} — ${o.description}` : o.name)));
    input.value = value || (required && field.options ? field.options[0].name : '');
  } else if (field.type === 'Boolean') {
    input = h('input', { id, name: field.name, type: 'checkbox', checked: !!value });
  } else {
    const type = secret ? 'password' : field.type === 'DateTime' ? 'datetime-local' : field.type === 'Int' ? 'number' : 'text';
    input = h('input', {
      id, name: field.name, type, autocomplete: secret ? 'new-password' : 'off', spellcheck: 'false',
      placeholder: secret && editing ? 'leave empty to keep the stored one' : (FIELDS[field.name] || {}).placeholder,
      step: type === 'datetime-local' ? '1' : null,
    });
    input.value = value === null || value === undefined ? '' : String(value);
  }
  input.setAttribute('aria-describedby', `${helpId} ${errId}`);
  if (required) input.setAttribute('aria-required', 'true');
  const error = h('p', { class: 'field-error', id: errId, hidden: true });
  // An update input's descriptions speak of omitted and null fields; the create input's say what
  // the field is, and the form says how to keep a secret.
  const help = [editing ? createDescription || field.description : field.description,
    field.type === 'DateTime' ? ' (in your local time)' : '', secret && editing ? ' Leave it empty to keep the stored one.' : ''].join('');
  const wrap = h('div', { class: 'field', dataset: { field: field.name } },
    h('label', { for: id }, fieldLabel(field.name), required ? h('span', { class: 'req' }, ' (required)') : h('span', { class: 'muted' }, ' (optional)')),
    input,
    h('p', { class: 'help', id: helpId }, help),
    error);
  const read = () => {
    if (field.type === 'Boolean') return input.checked;
    const v = input.value.trim();
    if (field.type === 'DateTime') return v ? new Date(v).toISOString() : '';
    if (field.type === 'Int') return v === '' ? '' : Number(v);
    return v;
  };
  const showError = (message) => {
    error.hidden = !message;
    error.textContent = message || '';
    if (message) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  };
  return { field, wrap, input, read, showError, secret, original: String(read()) };
}

// form renders the fields and submits through submit(values) -> configuration; server errors
// land beside their fields, the rest in a summary at the top.
function form({ fields, values, editing, createFields, submitLabel, submit }) {
  const widgets = fields.map((f) => {
    const create = createFields.find((c) => c.name === f.name) || {};
    return widget(f, values[f.name], { editing, requiredInCreate: !!create.required, createDescription: create.description });
  });
  const summary = h('div', { class: 'error-summary', role: 'alert', tabindex: '-1', hidden: true });
  const button = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const el = h('form', { class: 'config-form', novalidate: true }, summary, widgets.map((w) => w.wrap),
    h('div', { class: 'actions' }, button, h('a', { class: 'button', href: editing ? '#/config/' + encodeURIComponent(editing) : '#/' }, 'Cancel')));
  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    widgets.forEach((w) => w.showError(''));
    summary.hidden = true;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      await submit(widgets);
    } catch (err) {
      showErrors(err, widgets, summary);
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  });
  return el;
}

function showErrors(err, widgets, summary) {
  const byName = Object.fromEntries(widgets.map((w) => [w.field.name, w]));
  const elsewhere = [];
  for (const [name, message] of Object.entries(err.fields || {})) {
    if (byName[name]) byName[name].showError(message);
    else elsewhere.push(`${fieldLabel(name)}: ${message}`);
  }
  const invalid = widgets.filter((w) => w.input.getAttribute('aria-invalid') === 'true');
  summary.replaceChildren(
    h('h2', {}, invalid.length ? 'The server refused some fields' : 'The server refused the change'),
    h('ul', {},
      invalid.map((w) => h('li', {}, h('a', { href: '#' + w.input.id, onclick: (e) => { e.preventDefault(); w.input.focus(); } },
        `${fieldLabel(w.field.name)}: ${err.fields[w.field.name]}`))),
      elsewhere.map((m) => h('li', {}, m)),
      !invalid.length && !elsewhere.length ? h('li', {}, err.message) : null));
  summary.hidden = false;
  summary.focus();
}

export async function renderNew(main, key) {
  const { kinds } = await schema();
  const kind = kinds.find((k) => k.key === key && k.create);
  if (!kind) {
    fill(main, h('h1', { tabindex: '-1' }, 'New export configuration'),
      h('p', {}, 'Choose where it writes:'),
      h('ul', { class: 'kind-list' }, kinds.filter((k) => k.create).map((k) =>
        h('li', {}, h('a', { href: '#/new/' + encodeURIComponent(k.key) }, kindLabel(k))))));
    return;
  }
  const op = kind.create;
  fill(main, 
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Exports'), ' / new'),
    h('h1', { tabindex: '-1' }, 'New export: ' + kindLabel(kind)),
    KINDS[kind.key] && KINDS[kind.key].createNote ? h('p', { class: 'note' }, KINDS[kind.key].createNote) : null,
    form({
      fields: op.fields, values: {}, editing: null, createFields: op.fields, submitLabel: 'Create',
      submit: async (widgets) => {
        const data = {};
        for (const w of widgets) {
          const v = w.read();
          if (v !== '' || w.field.required) data[w.field.name] = v;
        }
        const c = (await gql(`mutation($data: ${op.inputType}!) { ${op.name}(${op.arg}: $data) { id name connectionStatus } }`, { data }))[op.name];
        toast(`Created ${configName(c)}. Connection: ${c.connectionStatus}`, c.connectionStatus === 'SUCCESS' ? 'info' : 'error');
        location.hash = '#/config/' + encodeURIComponent(c.id);
      },
    }));
}

export async function renderEdit(main, id) {
  const { kinds } = await schema();
  const c = (await gql(`query Edit($id: ID!) { getExportConfiguration(id: $id) { id name interval ${endpointSelection(kinds)} } }`, { id })).getExportConfiguration;
  const kind = kindOf(kinds, c.endpointConfiguration.__typename);
  if (!kind || !kind.update) {
    fill(main, h('h1', { tabindex: '-1' }, 'Edit ' + configName(c)), h('p', {}, 'This API has no update for this kind of destination.'));
    return;
  }
  const op = kind.update;
  const values = { name: c.name, interval: c.interval, ...c.endpointConfiguration };
  fill(main, 
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Exports'), ' / ',
      h('a', { href: '#/config/' + encodeURIComponent(c.id) }, configName(c)), ' / edit'),
    h('h1', { tabindex: '-1' }, 'Edit ' + configName(c)),
    h('p', { class: 'muted' }, kindLabel(kind), '. Only the fields you change are sent; a change to the destination checks it again.'),
    form({
      fields: op.fields.filter((f) => f.name !== 'id'), values, editing: c.id, createFields: kind.create ? kind.create.fields : [], submitLabel: 'Save',
      submit: async (widgets) => {
        const data = { id: c.id };
        for (const w of widgets) {
          const v = w.read();
          if (w.secret ? v === '' : String(v) === w.original) continue;
          data[w.field.name] = v === '' && w.field.kind === 'ENUM' ? null : v; // "" clears a string, null an enum
        }
        const saved = (await gql(`mutation($data: ${op.inputType}!) { ${op.name}(${op.arg}: $data) { id connectionStatus } }`, { data }))[op.name];
        toast(`Saved. Connection: ${saved.connectionStatus}`, saved.connectionStatus === 'SUCCESS' ? 'info' : 'error');
        location.hash = '#/config/' + encodeURIComponent(c.id);
      },
    }));
}
