// A configuration's export jobs, newest first, each with its tasks (one per object) on demand.

import { gql } from './api.js';
import { h, jobBadge, timeEl, formatCount, formatBytes } from './dom.js';

const JOB_COLUMNS = ['Job', 'Status', 'Ended', 'Events', 'Objects', 'Size', 'Attempts', ''];

export function renderJobs(jobs) {
  if (!jobs.length) return h('p', { class: 'muted' }, 'No export job yet. Run now exports what is pending.');
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'responsive jobs' },
      h('caption', { class: 'sr-only' }, 'Export jobs, newest first'),
      h('thead', {}, h('tr', {}, JOB_COLUMNS.map((c) => h('th', { scope: 'col' }, c)))),
      jobs.map(jobBody)));
}

// jobBody is a row group: the job, its failure if any, and a row its tasks open into.
function jobBody(job) {
  const cell = (label, ...content) => h('td', { dataset: { label } }, content);
  const tasksCell = h('td', { colspan: JOB_COLUMNS.length, class: 'tasks-cell' });
  const tasksRow = h('tr', { class: 'tasks-row', hidden: true }, tasksCell);
  const toggle = h('button', { type: 'button', 'aria-expanded': 'false', class: 'small-button', dataset: { job: job.id } }, 'Show tasks');
  toggle.addEventListener('click', async () => {
    const open = toggle.getAttribute('aria-expanded') === 'true';
    toggle.setAttribute('aria-expanded', String(!open));
    toggle.textContent = open ? 'Show tasks' : 'Hide tasks';
    tasksRow.hidden = open;
    if (!open && !tasksCell.hasChildNodes()) {
      tasksCell.append(h('p', { class: 'muted' }, 'Loading tasks…'));
      try {
        const tasks = (await gql(`query Tasks($job: String!) { getAllExportJobTasks(exportJobId: $job) {
          id key status attempts offset limit bytes sha256 startTimestamp endTimestamp failureReason } }`, { job: job.id })).getAllExportJobTasks;
        tasksCell.replaceChildren(renderTasks(job, tasks));
      } catch (e) {
        tasksCell.replaceChildren(h('p', { class: 'error-text' }, e.message));
      }
    }
  });
  return h('tbody', { dataset: { job: job.id } },
    h('tr', { class: 'job-row' },
      cell('Job', h('span', { class: 'mono small' }, job.id), h('div', { class: 'muted small' }, 'started ', timeEl(job.startTimestamp, 'not yet'))),
      cell('Status', jobBadge(job.status)),
      cell('Ended', timeEl(job.endTimestamp, 'not yet')),
      cell('Events', h('span', { class: 'job-events' }, formatCount(job.eventCount)),
        job.skippedEvents ? h('div', { class: 'warn small' }, formatCount(job.skippedEvents), ' skipped') : null),
      cell('Objects', formatCount(job.objectCount)),
      cell('Size', formatBytes(job.bytes)),
      cell('Attempts', String(job.attempts)),
      cell('Tasks', toggle)),
    job.failureReason ? h('tr', { class: 'failure-row' }, h('td', { colspan: JOB_COLUMNS.length },
      h('p', { class: 'error-text' }, 'Failure: ', job.failureReason),
      job.nextAttemptTimestamp ? h('p', { class: 'muted small' }, 'Next attempt ', timeEl(job.nextAttemptTimestamp)) : null)) : null,
    tasksRow);
}

function renderTasks(job, tasks) {
  if (!tasks.length) return h('p', { class: 'muted' }, 'This job wrote no object.');
  return h('ol', { class: 'tasks', 'aria-label': 'Tasks of job ' + job.id },
    tasks.map((t) => h('li', { class: 'task', dataset: { task: t.id } },
      h('div', {}, h('code', { class: 'task-key' }, t.key)),
      h('dl', { class: 'facts compact' },
        h('dt', {}, 'Status'), h('dd', {}, jobBadge(t.status)),
        h('dt', {}, 'Attempts'), h('dd', {}, String(t.attempts)),
        h('dt', {}, 'Events'), h('dd', {}, `${formatCount(t.limit)} from #${t.offset}`),
        h('dt', {}, 'Size'), h('dd', { class: 'task-bytes', dataset: { bytes: t.bytes } }, formatBytes(t.bytes)),
        h('dt', {}, 'SHA-256'), h('dd', {}, h('code', { class: 'task-sha256' }, t.sha256 || '—')),
        h('dt', {}, 'Ended'), h('dd', {}, timeEl(t.endTimestamp, 'not yet'))),
      t.failureReason ? h('p', { class: 'error-text' }, 'Failure: ', t.failureReason) : null)));
}
