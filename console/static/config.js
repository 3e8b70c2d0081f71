// A configuration's page: its health, destination, the policies to paste, actions, charts, jobs
// with their tasks, and the audit events of its changes.

import { gql, schema, endpointSelection, kindOf } from './api.js';
import {
  h, fill, connectionBadge, timeEl, formatCount, formatDuration, section, copyButton, confirmDialog, toast,
} from './dom.js';
import { kindLabel, fieldLabel, destinationSummary } from './hints.js';
import { hourlyChart } from './charts.js';
import { configName, intervalLabel } from './overview.js';
import { renderJobs } from './jobs.js';

const CONFIG_FIELDS = `id name interval enabled connectionStatus connectionCheckedAt createdBy createdAt updatedBy updatedAt
  nextExportAt pendingEvents skippedEvents`;

export function configQuery(kinds) {
  return `query Config($id: ID!) {
    getExportConfiguration(id: $id) { ${CONFIG_FIELDS} ${endpointSelection(kinds, true)}
      exportHistory(hours: 48) { hours { start events jobs } incompleteBefore }
      exportLag { oldestPendingEventReceivedAt seconds } }
    getAllExportJobs(exportConfigurationId: $id, limit: 20) {
      id status startTimestamp endTimestamp eventCount objectCount bytes attempts failureReason nextAttemptTimestamp skippedEvents } }`;
}

export async function renderConfig(main, id, rerender) {
  const { kinds } = await schema();
  const data = await gql(configQuery(kinds), { id });
  const c = data.getExportConfiguration;
  const kind = kindOf(kinds, c.endpointConfiguration.__typename);
  const failing = c.connectionStatus !== 'SUCCESS' && c.connectionStatus !== 'PENDING';
  fill(main, 
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Exports'), ' / ', configName(c)),
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1' }, configName(c)),
      h('div', { class: 'head-status' }, connectionBadge(c.connectionStatus), ' ',
        h('span', { class: c.enabled ? 'enabled' : 'disabled' }, c.enabled ? 'Enabled' : 'Disabled'))),
    actions(c, kind, rerender),
    section('Connection',
      h('p', { class: failing ? 'error-text' : '', id: 'connection-status' }, c.connectionStatus),
      h('p', { class: 'muted' }, 'Checked ', timeEl(c.connectionCheckedAt, 'never'),
        '. Checks run on create, update, enable and Verify now, and in the background.')),
    section('Backlog',
      h('dl', { class: 'facts' },
        fact('Pending events', formatCount(c.pendingEvents)),
        fact('Export lag', c.exportLag.oldestPendingEventReceivedAt
          ? h('span', { id: 'export-lag', dataset: { seconds: c.exportLag.seconds, oldest: c.exportLag.oldestPendingEventReceivedAt } },
            formatDuration(c.exportLag.seconds), ' (oldest pending event received ', timeEl(c.exportLag.oldestPendingEventReceivedAt), ')')
          : h('span', { id: 'export-lag', dataset: { seconds: 0 } }, 'none: nothing is waiting')),
        fact('Skipped events', h('span', { class: c.skippedEvents > 0 ? 'warn' : '' }, formatCount(c.skippedEvents))),
        fact('Next export', c.enabled ? timeEl(c.nextExportAt) : 'disabled'))),
    section('Events exported per hour', hourlyChart(c.exportHistory)),
    section('Destination', details(c, kind)),
    setup(c.endpointConfiguration, kind),
    section('Export jobs', renderJobs(data.getAllExportJobs)),
    auditEvents(c.id),
  );
}

function fact(term, ...value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

function details(c, kind) {
  const ep = c.endpointConfiguration;
  const fields = Object.keys(ep).filter((k) => k !== '__typename' && !k.endsWith('Policy') && k !== 'externalId');
  return h('dl', { class: 'facts' },
    fact('ID', h('span', { class: 'mono' }, c.id)),
    fact('Kind', kind ? kindLabel(kind) : ep.__typename),
    fact('Writes to', h('span', { class: 'mono' }, destinationSummary(kind, ep).filter(Boolean).join(' at '))),
    fact('Interval', intervalLabel(c.interval), h('span', { class: 'muted' }, ` (${c.interval})`)),
    fields.map((k) => fact(fieldLabel(k), ep[k] === null || ep[k] === '' ? h('span', { class: 'muted' }, 'not set') : h('span', { class: 'mono' }, String(ep[k])))),
    fact('Created', timeEl(c.createdAt), c.createdBy ? ' by ' + c.createdBy : ''),
    fact('Updated', timeEl(c.updatedAt), c.updatedBy ? ' by ' + c.updatedBy : ''));
}

// setup shows what the customer pastes into AWS: the external id and the policies, each with a
// copy button.
function setup(ep, kind) {
  const policies = Object.keys(ep).filter((k) => k.endsWith('Policy') && typeof ep[k] === 'string');
  if (!policies.length && !ep.externalId) return null;
  return section('Set up the destination',
    h('p', {}, kind && kind.key === 's3assumedrole'
      ? 'Create the role with this trust policy and attach the permission policy. The service assumes it with the external ID; checks succeed once AWS accepts the role.'
      : 'Attach this policy to the identity the configuration uses: it allows what the service does and nothing else.'),
    ep.externalId ? h('div', { class: 'copyable' }, h('h3', {}, fieldLabel('externalId')),
      h('div', { class: 'inline-copy' }, h('code', { id: 'external-id' }, ep.externalId), copyButton(ep.externalId, 'Copy external ID'))) : null,
    policies.map((k) => h('div', { class: 'copyable' },
      h('div', { class: 'copy-head' }, h('h3', {}, fieldLabel(k)), copyButton(ep[k], 'Copy ' + fieldLabel(k).toLowerCase())),
      ep[k].includes('<the AWS principal') ? h('p', { class: 'warn' }, 'The server was started without --trust-principal: replace the placeholder with the principal the service runs as.') : null,
      h('pre', { class: 'policy', id: 'policy-' + k, tabindex: '0' }, ep[k]))));
}

// actions are the buttons that change the configuration; each re-renders the page when done.
function actions(c, kind, rerender) {
  const run = async (button, work) => {
    const buttons = [...document.querySelectorAll('.actions button')];
    buttons.forEach((b) => { b.disabled = true; });
    button.setAttribute('aria-busy', 'true');
    try {
      await work();
    } catch (e) {
      toast(e.message, 'error');
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      button.removeAttribute('aria-busy');
    }
  };
  const mutate = (name) => gql(`mutation($id: ID!) { ${name}(id: $id) { id enabled connectionStatus } }`, { id: c.id }).then((d) => d[name]);
  const button = (label, work, cls) => {
    const b = h('button', { type: 'button', class: cls }, label);
    b.addEventListener('click', () => run(b, work));
    return b;
  };
  return h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' },
    c.enabled
      ? button('Disable', async () => { await mutate('disableExportConfiguration'); toast('Disabled: no export runs until it is enabled again.'); await rerender(); })
      : button('Enable', async () => { const r = await mutate('enableExportConfiguration'); toast('Enabled. Connection: ' + r.connectionStatus); await rerender(); }),
    button('Verify now', async () => { const r = await mutate('verifyExportConfiguration'); toast('Checked. Connection: ' + r.connectionStatus, r.connectionStatus === 'SUCCESS' ? 'info' : 'error'); await rerender(); }),
    c.enabled ? button('Run now', async () => {
      const job = (await gql(`mutation($id: ID!) { runExportNow(id: $id) { id status eventCount objectCount failureReason } }`, { id: c.id })).runExportNow;
      toast(`Export job ${job.status}: ${formatCount(job.eventCount)} events in ${job.objectCount} object${job.objectCount === 1 ? '' : 's'}.` + (job.failureReason ? ' ' + job.failureReason : ''),
        job.status === 'FAILED' ? 'error' : 'info');
      await rerender();
    }) : null,
    kind && kind.update ? h('a', { class: 'button', href: '#/edit/' + encodeURIComponent(c.id) }, 'Edit') : null,
    button('Delete…', async () => {
      const ok = await confirmDialog({
        title: `Delete ${configName(c)}?`,
        message: 'Its schedule, jobs and tasks are removed and nothing more is exported to it. Objects already in the bucket stay. This cannot be undone.',
        confirm: 'Delete',
      });
      if (!ok) return;
      await mutate('deleteExportConfiguration');
      toast(`Deleted ${configName(c)}.`);
      location.hash = '#/';
    }, 'danger'));
}

// auditEvents lists the audit events whose targets name the configuration, oldest first, and
// searches further through the buffer on demand (a page reads at most 100,000 events).
function auditEvents(id) {
  const list = h('ol', { class: 'events', id: 'audit-events' });
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const more = h('button', { type: 'button', hidden: true }, 'Search further');
  let after = null;
  const load = async () => {
    more.disabled = true;
    try {
      const page = (await gql(`query Audit($id: String!, $after: String) { auditEvents(targetId: $id, first: 50, after: $after) {
        edges { node { id action actionStatus eventTimestamp actor { name type } targetType auditPayload } } pageInfo { endCursor hasNextPage } } }`,
      { id, after })).auditEvents;
      for (const { node } of page.edges) list.append(eventItem(node));
      after = page.pageInfo.endCursor;
      more.hidden = !page.pageInfo.hasNextPage;
      status.textContent = list.children.length
        ? `${list.children.length} event${list.children.length === 1 ? '' : 's'} found in the buffer${page.pageInfo.hasNextPage ? ' so far' : ''}.`
        : (page.pageInfo.hasNextPage ? 'None found so far.' : 'None in the buffer: exported events leave it after the buffer\'s retention.');
    } catch (e) {
      status.textContent = e.message;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', load);
  load();
  return section('Audit events of its changes', status, list, more);
}

function eventItem(e) {
  const payload = e.auditPayload || {};
  const changed = Array.isArray(payload.changedFields) ? payload.changedFields : null;
  return h('li', { dataset: { id: e.id } },
    h('span', { class: 'event-action' }, e.action || '(no action)'), ' ',
    e.actionStatus && e.actionStatus !== 'SUCCESS' ? h('span', { class: 'badge error' }, e.actionStatus) : null,
    ' by ', h('span', { class: 'event-actor' }, (e.actor && e.actor.name) || 'unknown'),
    ' at ', timeEl(e.eventTimestamp),
    changed ? h('div', { class: 'muted small' }, 'changed: ', changed.join(', ')) : null);
}
