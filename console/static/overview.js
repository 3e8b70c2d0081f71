// Exports at a glance: every configuration with its destination, schedule, health and backlog.

import { gql, schema, endpointSelection, kindOf } from './api.js';
import { h, fill, connectionBadge, jobBadge, ago, formatCount, section, table } from './dom.js';
import { kindLabel, destinationSummary } from './hints.js';
import { lagChart, sparkline } from './charts.js';

export function configName(c) {
  return c.name || c.id;
}

// intervalLabel reads EVERY_6_HOURS as "every 6 hours".
export function intervalLabel(interval) {
  return interval.toLowerCase().replaceAll('_', ' ');
}

export function overviewQuery(kinds) {
  return `query Overview { getAllExportConfigurations {
    id name interval enabled connectionStatus connectionCheckedAt nextExportAt pendingEvents skippedEvents
    ${endpointSelection(kinds)}
    lastExport { id status endTimestamp eventCount failureReason }
    exportHistory(hours: 48) { hours { start events jobs } incompleteBefore }
    exportLag { oldestPendingEventReceivedAt seconds } } }`;
}

// newButtons offers a create form per kind the API has.
export function newButtons(kinds) {
  return h('div', { class: 'new-buttons' }, kinds.filter((k) => k.create).map((k) =>
    h('a', { class: 'button primary', href: '#/new/' + encodeURIComponent(k.key) }, 'New: ' + kindLabel(k))));
}

export async function renderOverview(main) {
  const { kinds } = await schema();
  const configs = (await gql(overviewQuery(kinds))).getAllExportConfigurations;
  const failing = configs.filter((c) => c.connectionStatus !== 'SUCCESS' && c.connectionStatus !== 'PENDING');
  const pending = configs.reduce((n, c) => n + c.pendingEvents, 0);
  fill(main, 
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1' }, 'Exports'),
      newButtons(kinds)),
    h('p', { class: 'summary' },
      h('span', {}, `${configs.length} configuration${configs.length === 1 ? '' : 's'}`),
      h('span', { class: failing.length ? 'summary-bad' : '' }, `${failing.length} failing`),
      h('span', {}, `${formatCount(pending)} events pending`)),
    configs.length === 0
      ? h('div', { class: 'panel empty' }, h('h2', {}, 'No export configuration yet'),
        h('p', {}, 'Create one to deliver audit events to a customer\'s bucket.'))
      : [configurationsTable(configs, kinds),
        section('Export lag', lagChart(configs, configName, (c) => '#/config/' + encodeURIComponent(c.id)))],
  );
}

function configurationsTable(configs, kinds) {
  return table([
    ['Export', (c) => h('div', {}, h('a', { href: '#/config/' + encodeURIComponent(c.id), class: 'config-link' }, configName(c)),
      h('div', { class: 'small' }, h('span', { class: c.enabled ? 'enabled' : 'disabled' }, c.enabled ? 'Enabled' : 'Disabled'),
        h('span', { class: 'muted' }, ', ', intervalLabel(c.interval))))],
    ['Destination', (c) => {
      const kind = kindOf(kinds, c.endpointConfiguration.__typename);
      const [where, via] = destinationSummary(kind, c.endpointConfiguration);
      return h('div', {}, h('div', { class: 'mono' }, where),
        h('div', { class: 'muted small' }, kind ? kindLabel(kind) : c.endpointConfiguration.__typename, via ? ', ' + via : ''));
    }],
    ['Connection', (c) => h('div', { class: 'status' }, connectionBadge(c.connectionStatus),
      c.connectionStatus !== 'SUCCESS' && c.connectionStatus !== 'PENDING' ? h('p', { class: 'error-text' }, c.connectionStatus) : null,
      h('div', { class: 'muted small' }, 'checked ', ago(c.connectionCheckedAt, 'never')))],
    ['Last export', (c) => c.lastExport
      ? h('div', {}, jobBadge(c.lastExport.status), ' ', formatCount(c.lastExport.eventCount), ' events',
        h('div', { class: 'small muted' }, 'ended ', ago(c.lastExport.endTimestamp, 'not yet')),
        c.lastExport.failureReason ? h('p', { class: 'error-text' }, c.lastExport.failureReason) : null)
      : h('span', { class: 'muted' }, 'none yet')],
    ['Next export', (c) => c.enabled ? ago(c.nextExportAt) : h('span', { class: 'muted' }, 'disabled')],
    ['Pending', (c) => h('div', {}, formatCount(c.pendingEvents),
      h('div', { class: ['small', c.skippedEvents > 0 ? 'warn' : 'muted'] }, formatCount(c.skippedEvents), ' skipped'))],
    ['Exported, 48 h', (c) => sparkline(c.exportHistory)],
  ], configs, {
    caption: 'Export configurations',
    className: 'configs',
    rowProps: (c) => ({ dataset: { id: c.id } }),
  });
}
