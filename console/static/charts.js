// SVG charts drawn from API data. Every bar carries its data (data-*) and a <title>, and each
// chart comes with the same numbers as a table for screen readers and for checking.

import { h, s, formatCount, formatDuration, formatTime } from './dom.js';

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten, for readable axis labels.
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

// hourlyChart draws exportHistory: one bar per hour, the current hour last.
export function hourlyChart(history, { title = 'Events exported per hour' } = {}) {
  const hours = history.hours;
  const W = 720, H = 220, left = 48, right = 8, top = 12, bottom = 36;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = niceMax(Math.max(0, ...hours.map((x) => x.events)));
  const step = plotW / hours.length;
  const y = (v) => top + plotH - (v / max) * plotH;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart hourly', role: 'img', 'aria-label': `${title}, last ${hours.length} hours` });
  for (const v of [0, max / 2, max].filter(Number.isInteger)) {
    svg.append(s('line', { x1: left, x2: W - right, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, formatCount(v)));
  }
  const incomplete = history.incompleteBefore ? new Date(history.incompleteBefore).getTime() : null;
  hours.forEach((hour, i) => {
    const x = left + i * step;
    const start = new Date(hour.start);
    if (incomplete !== null && start.getTime() < incomplete) {
      svg.append(s('rect', { x, y: top, width: step, height: plotH, class: 'incomplete' },
        s('title', {}, 'jobs this old are no longer kept: the count may be short')));
    }
    const barH = Math.max((hour.events / max) * plotH, hour.events > 0 ? 1 : 0);
    svg.append(s('rect', {
      x: x + 1, y: top + plotH - barH, width: Math.max(step - 2, 1), height: barH, class: 'bar',
      dataset: { start: hour.start, events: hour.events, jobs: hour.jobs },
    }, s('title', {}, `${formatTime(hour.start)}: ${formatCount(hour.events)} events in ${hour.jobs} jobs`)));
    if (start.getUTCHours() % 6 === 0) {
      svg.append(s('text', { x: x + step / 2, y: H - bottom + 16, class: 'axis', 'text-anchor': 'middle' },
        String(start.getUTCHours()).padStart(2, '0') + ':00'),
      s('text', { x: x + step / 2, y: H - bottom + 30, class: 'axis muted', 'text-anchor': 'middle' },
        start.toISOString().slice(5, 10)));
    }
  });
  const total = hours.reduce((n, x) => n + x.events, 0);
  const busy = hours.filter((x) => x.jobs > 0);
  return h('figure', { class: 'chart-figure' },
    h('div', { class: 'chart-scroll', tabindex: '0', 'aria-label': title + ' (scrolls sideways on small screens)' }, svg),
    h('figcaption', {}, `${formatCount(total)} events exported in the last ${hours.length} hours (UTC).`,
      history.incompleteBefore ? ` Jobs before ${formatTime(history.incompleteBefore)} are no longer kept: shaded hours may count too few.` : ''),
    h('details', {}, h('summary', {}, 'Hours with exports, as a table'),
      busy.length === 0 ? h('p', {}, 'No job succeeded in this window.') :
        h('table', { class: 'plain hourly-table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Hour (UTC)'), h('th', { scope: 'col' }, 'Events'), h('th', { scope: 'col' }, 'Jobs'))),
          h('tbody', {}, busy.map((x) => h('tr', { dataset: { start: x.start } },
            h('td', {}, formatTime(x.start)), h('td', {}, formatCount(x.events)), h('td', {}, String(x.jobs))))))));
}

// sparkline is a small hourly chart for a table row; its text equivalent is the total.
export function sparkline(history) {
  const hours = history.hours;
  const W = 96, H = 24;
  const max = Math.max(1, ...hours.map((x) => x.events));
  const step = W / hours.length;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'sparkline', 'aria-hidden': 'true', focusable: 'false' });
  hours.forEach((x, i) => {
    const barH = x.events > 0 ? Math.max((x.events / max) * H, 1) : 0;
    svg.append(s('rect', { x: i * step, y: H - barH, width: Math.max(step - 0.5, 0.5), height: barH, class: 'bar' }));
  });
  const total = hours.reduce((n, x) => n + x.events, 0);
  return h('span', { class: 'spark' }, svg, h('span', {}, formatCount(total)));
}

// lagChart shows each configuration's export lag as a bar scaled to the largest (at least a
// minute); the names and values are text beside the bars, so the bars alone stretch with the screen.
export function lagChart(configs, nameOf, hrefOf) {
  const max = Math.max(60, ...configs.map((c) => c.exportLag.seconds));
  return h('figure', { class: 'chart-figure' },
    h('ul', { class: 'lag-list', 'aria-label': 'Export lag per configuration' }, configs.map((c) => {
      const seconds = c.exportLag.seconds;
      const oldest = c.exportLag.oldestPendingEventReceivedAt;
      return h('li', { dataset: { config: c.id } },
        h('a', { href: hrefOf(c), class: 'lag-name' }, nameOf(c)),
        s('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none', class: 'lag-bar', 'aria-hidden': 'true', focusable: 'false' },
          s('rect', { x: 0, y: 0, width: 100, height: 10, class: 'track' }),
          s('rect', { x: 0, y: 0, width: oldest ? Math.max((seconds / max) * 100, 0.5) : 0, height: 10,
            class: seconds > 3600 ? 'bar late' : 'bar', dataset: { seconds } })),
        h('span', { class: 'lag-value', title: oldest ? 'oldest pending event received ' + formatTime(oldest) : '' },
          oldest ? formatDuration(seconds) : 'nothing pending'));
    })),
    h('figcaption', {}, 'How long the oldest event each configuration has yet to export has waited. Over an hour is red.'));
}
