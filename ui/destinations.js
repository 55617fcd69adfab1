// Destinations as configured (GET /ui/api/destinations): template, consent categories and the
// settings, with secrets already masked by the server.
import { useEffect, useState } from 'preact/hooks';
import { api, aborted } from './api.js';
import { Empty, Section, html } from './html.js';

/** @typedef {{ id: string, template: string, templateVersion?: number, enabled: boolean, disabledReason?: string, dryRun?: boolean, categories: string[], settings: Record<string, unknown>, endpoint?: string }} Destination */

/** A setting's value as text (objects as compact JSON; the server has masked secrets). */
function settingText(/** @type {unknown} */ v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function Destinations(/** @type {{ report: import('./app.js').Report }} */ { report }) {
  const [rows, setRows] = useState(/** @type {Destination[] | null} */ (null));
  useEffect(() => {
    const ctl = new AbortController();
    api('/ui/api/destinations', { signal: ctl.signal })
      .then((/** @type {Destination[]} */ d) => setRows(d))
      .catch((/** @type {unknown} */ e) => {
        if (!aborted(e)) report.error(e);
      });
    return () => ctl.abort();
  }, []);

  return html`<${Section} id="destinations" title="Destinations" intro="Where Tagwarden sends events, as the configuration says. Secrets (tokens, keys) are never shown. To change a destination, change the configuration and restart Tagwarden.">
    ${rows === null
      ? html`<p class="loading">Loading destinations…</p>`
      : rows.length === 0
        ? html`<${Empty}>No destinations are configured. Events are received but sent nowhere.</${Empty}>`
        : html`<ul class="cards">
            ${rows.map(
              (d) => html`<li class="card">
                <h3><span class="dest">${d.id}</span> ${d.enabled ? html`<span class="badge on">On</span>` : html`<span class="badge off">Off</span>`}</h3>
                <dl class="facts">
                  ${d.enabled ? null : html`<dt>Why it is off</dt><dd>${d.disabledReason ?? 'Switched off in the configuration'}</dd>`}
                  ${d.dryRun ? html`<dt>Dry run</dt><dd>Events are prepared but not sent to the vendor</dd>` : null}
                  <dt>Template</dt><dd>${d.template}${d.templateVersion === undefined ? '' : ` (version ${d.templateVersion})`}</dd>
                  <dt>Needs consent for</dt><dd>${d.categories.length === 0 ? 'Nothing: every event is sent' : d.categories.join(', ')}</dd>
                  ${d.endpoint ? html`<dt>Sends to</dt><dd class="id">${d.endpoint}</dd>` : null}
                  ${Object.entries(d.settings ?? {}).map(([k, v]) => html`<dt>${k}</dt><dd class="id">${settingText(v)}</dd>`)}
                </dl>
              </li>`,
            )}
          </ul>`}
  </${Section}>`;
}
