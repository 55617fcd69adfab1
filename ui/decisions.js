// Recent decisions: the latest event × destination decisions this instance made (ids only, no
// event content), from GET /ui/api/decisions. A visitor id opens the visitor lookup.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, aborted } from './api.js';
import { Empty, Section, Time, html } from './html.js';
import { outcomeClass, outcomeText, reasonText } from './words.js';

/** @typedef {{ at: number, messageId: string, destinationId: string, visitorId?: string, outcome: string, reason: string, eventType: string, eventName?: string }} Decision */

export function Decisions(/** @type {{ report: import('./app.js').Report }} */ { report }) {
  const [rows, setRows] = useState(/** @type {Decision[] | null} */ (null));
  const [loading, setLoading] = useState(false);

  const load = useCallback((/** @type {AbortSignal | undefined} */ signal) => {
    setLoading(true);
    api('/ui/api/decisions?limit=50', { signal })
      .then((/** @type {Decision[]} */ d) => setRows(d))
      .catch((/** @type {unknown} */ e) => {
        if (!aborted(e)) report.error(e);
      })
      .finally(() => setLoading(false));
  }, []);
  useEffect(() => {
    const ctl = new AbortController();
    load(ctl.signal);
    return () => ctl.abort();
  }, []);

  return html`<${Section}
    id="decisions"
    title="Recent decisions"
    intro="The latest 50 decisions, newest first: for each event and destination, whether it was sent and why. Only ids are shown, never what the event contained."
    actions=${html`<button type="button" onClick=${() => load(undefined)} disabled=${loading}>${loading ? 'Refreshing…' : 'Refresh'}</button>`}
  >
    ${rows === null
      ? html`<p class="loading">Loading decisions…</p>`
      : rows.length === 0
        ? html`<${Empty}>No decisions yet. They appear here as soon as your site sends events to Tagwarden.</${Empty}>`
        : html`<table class="stack">
            <caption class="sr-only">Recent decisions</caption>
            <thead>
              <tr><th scope="col">Time</th><th scope="col">Destination</th><th scope="col">Event</th><th scope="col">Visitor</th><th scope="col">Result</th><th scope="col">Why</th></tr>
            </thead>
            <tbody>
              ${rows.map(
                (r) => html`<tr>
                  <td data-label="Time"><${Time} t=${r.at} /></td>
                  <td data-label="Destination" class="dest">${r.destinationId}</td>
                  <td data-label="Event"><span>${r.eventName ?? r.eventType}</span> <span class="muted id">${r.messageId}</span></td>
                  <td data-label="Visitor" class="id">
                    ${r.visitorId === undefined
                      ? html`<span class="muted">—</span>`
                      : html`<a href=${`#visitor/visitor/${encodeURIComponent(r.visitorId)}`} aria-label=${`Look up visitor ${r.visitorId}`}>${r.visitorId}</a>`}
                  </td>
                  <td data-label="Result"><span class=${outcomeClass(r.outcome)}>${outcomeText(r.outcome)}</span></td>
                  <td data-label="Why">${reasonText(r.reason)} <code>${r.reason}</code></td>
                </tr>`,
              )}
            </tbody>
          </table>`}
  </${Section}>`;
}
