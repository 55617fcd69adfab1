// Overview: per destination, what arrived and what became of it in a time window, as counts, a
// chart over time and the consent reasons events were filtered for (GET /ui/api/overview).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, aborted } from './api.js';
import { LineChart } from './chart.js';
import { Empty, Section, html } from './html.js';
import { COUNTS, COUNT_WORDS, consentReason, count, reasonText } from './words.js';

const WINDOWS = [
  { id: '15m', label: 'Last 15 minutes' },
  { id: '1h', label: 'Last hour' },
  { id: '6h', label: 'Last 6 hours' },
  { id: '24h', label: 'Last 24 hours' },
];
const REFRESH_MS = 15_000;

/**
 * @typedef {{ id: string, template: string, series: Record<string, number[]>, totals: Record<string, number>, heldNow?: number, filteredReasons: Record<string, number> }} DestinationCounts
 * @typedef {{ window: string, bucketMs: number, start: number, buckets: number[], destinations: DestinationCounts[] }} OverviewData
 */

/** A bucket's length in words: "minute", "15 seconds", "12 minutes". */
function bucketWords(/** @type {number} */ ms) {
  const s = Math.round(ms / 1000);
  if (s % 3600 === 0) return s === 3600 ? 'hour' : `${s / 3600} hours`;
  if (s % 60 === 0) return s === 60 ? 'minute' : `${s / 60} minutes`;
  return s === 1 ? 'second' : `${s} seconds`;
}

/** The series of one destination, or of all of them added up. */
function seriesOf(/** @type {OverviewData} */ data, /** @type {string} */ dest) {
  const chosen = dest === '' ? data.destinations : data.destinations.filter((d) => d.id === dest);
  return COUNTS.map((k) => ({
    label: COUNT_WORDS[k].label,
    color: COUNT_WORDS[k].color,
    values: data.buckets.map((_t, i) => chosen.reduce((a, d) => a + (d.series[k]?.[i] ?? 0), 0)),
  }));
}

/**
 * A destination's number in the table: the window's total, except "waiting for consent", which is
 * how many wait now (the window's total of holds begun less holds decided can be negative).
 */
function cell(/** @type {DestinationCounts} */ d, /** @type {string} */ k) {
  if (k === 'held' && typeof d.heldNow === 'number') return d.heldNow;
  return d.totals[k] ?? 0;
}

function CountsTable(/** @type {{ data: OverviewData }} */ { data }) {
  return html`<table class="stack counts">
    <caption>Events per destination, ${WINDOWS.find((w) => w.id === data.window)?.label.toLowerCase() ?? data.window}</caption>
    <thead>
      <tr>
        <th scope="col">Destination</th>
        ${COUNTS.map((k) => html`<th scope="col" class="num">${COUNT_WORDS[k].label}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${data.destinations.map(
        (d) => html`<tr>
          <th scope="row" data-label="Destination"><span class="dest">${d.id}</span> <span class="muted">${d.template}</span></th>
          ${COUNTS.map((k) => html`<td class="num" data-label=${COUNT_WORDS[k].label} data-count=${k}>${count(cell(d, k))}</td>`)}
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function Reasons(/** @type {{ data: OverviewData }} */ { data }) {
  const withReasons = data.destinations
    .map((d) => ({ id: d.id, reasons: Object.entries(d.filteredReasons ?? {}).filter(([, n]) => n > 0) }))
    .filter((d) => d.reasons.length > 0);
  return html`<div class="card">
    <h3>Why events were filtered</h3>
    <p class="hint">Consent reasons first: what visitors did not agree to. Then the rules of the event, the template or the vendor.</p>
    ${withReasons.length === 0
      ? html`<${Empty}>No event was filtered in this window.</${Empty}>`
      : withReasons.map(
          (d) => html`<div class="reasons">
            <h4>${d.id}</h4>
            <ul>
              ${d.reasons
                .sort((a, b) => Number(consentReason(b[0])) - Number(consentReason(a[0])) || b[1] - a[1])
                .map(([reason, n]) => html`<li class=${consentReason(reason) ? 'consent' : 'rule'}><span class="n">${count(n)}</span> ${reasonText(reason)} <code>${reason}</code></li>`)}
            </ul>
          </div>`,
        )}
  </div>`;
}

export function Overview(/** @type {{ report: import('./app.js').Report }} */ { report }) {
  const [win, setWin] = useState('1h');
  const [dest, setDest] = useState('');
  const [data, setData] = useState(/** @type {OverviewData | null} */ (null));

  useEffect(() => {
    const ctl = new AbortController();
    const load = () =>
      api(`/ui/api/overview?window=${encodeURIComponent(win)}`, { signal: ctl.signal })
        .then((/** @type {OverviewData} */ d) => setData(d))
        .catch((/** @type {unknown} */ e) => {
          if (!aborted(e)) report.error(e);
        });
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      clearInterval(timer);
      ctl.abort();
    };
  }, [win]);

  const series = useMemo(() => (data === null ? [] : seriesOf(data, dest)), [data, dest]);
  const anything = data !== null && data.destinations.some((d) => (d.totals.received ?? 0) > 0 || (d.heldNow ?? 0) > 0);

  return html`<${Section} id="overview" title="Overview" intro="What arrived for each destination and what became of it. Counts refresh every 15 seconds and start again when Tagwarden restarts.">
    <form class="controls" onSubmit=${(/** @type {Event} */ e) => e.preventDefault()}>
      <span class="pair">
        <label for="ov-window">Time window</label>
        <select id="ov-window" value=${win} onChange=${(/** @type {Event} */ e) => setWin(/** @type {HTMLSelectElement} */ (e.currentTarget).value)}>
          ${WINDOWS.map((w) => html`<option value=${w.id}>${w.label}</option>`)}
        </select>
      </span>
      ${data !== null && data.destinations.length > 1
        ? html`<span class="pair">
            <label for="ov-dest">Chart</label>
            <select id="ov-dest" value=${dest} onChange=${(/** @type {Event} */ e) => setDest(/** @type {HTMLSelectElement} */ (e.currentTarget).value)}>
              <option value="">All destinations</option>
              ${data.destinations.map((d) => html`<option value=${d.id}>${d.id}</option>`)}
            </select>
          </span>`
        : null}
    </form>
    ${data === null
      ? html`<p class="loading">Loading counts…</p>`
      : data.destinations.length === 0
        ? html`<${Empty}>No destinations are configured, so there is nothing to count yet. Add one under <code>destinations</code> in the configuration.</${Empty}>`
        : html`
            ${anything ? null : html`<${Empty}>No events in this window yet. When your site sends events, they are counted here.</${Empty}>`}
            <${CountsTable} data=${data} />
            <${LineChart}
              label=${`Events per ${bucketWords(data.bucketMs)}, ${dest === '' ? 'all destinations' : dest}`}
              x=${data.buckets}
              series=${series}
            />
            <${Reasons} data=${data} />
            <details class="card">
              <summary>What the columns mean</summary>
              <dl class="legend">
                ${COUNTS.map((k) => html`<dt>${COUNT_WORDS[k].label}</dt><dd>${COUNT_WORDS[k].help}</dd>`)}
              </dl>
            </details>
          `}
  </${Section}>`;
}
