// Dead letters: events a vendor kept refusing after every retry (GET /api/v1/deliveries/dead).
// "Send again" replays one (POST /api/v1/deliveries/dead/replay): it goes through the consent
// checks again, so a visitor who withdrew consent meanwhile is not sent. Each replay asks first.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, aborted } from './api.js';
import { Empty, Section, Time, html } from './html.js';

/** @typedef {{ hitId: number, destinationId: string, reason: string | null, code: string | null, attempts: number, lastStatus: number | null, excerpt: string | null, diedAt: string, receivedAt: string, messageId: string | null, type: string | null, event: string | null }} DeadLetter */

const LIMIT = 200;

/** A dead letter's reason for people. */
function whyDead(/** @type {DeadLetter} */ d) {
  if (d.lastStatus !== null) return `The vendor answered ${d.lastStatus}${d.lastStatus >= 500 ? ' (a problem on their side)' : d.lastStatus === 429 ? ' (too many requests)' : d.lastStatus >= 400 ? ' (it refused the event)' : ''}`;
  if (d.reason !== null) return d.reason.replace(/_/g, ' ');
  return 'Unknown';
}

function ReplayButton(/** @type {{ label: string, ask: string, onConfirm: () => Promise<void>, describedBy?: string }} */ { label, ask, onConfirm, describedBy }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!asking) return html`<button type="button" aria-describedby=${describedBy} onClick=${() => setAsking(true)}>${label}</button>`;
  return html`<span class="confirm" role="group" aria-label=${ask}>
    <span>${ask}</span>
    <button type="button" class="primary" disabled=${busy} onClick=${async () => {
      setBusy(true);
      try {
        await onConfirm();
      } finally {
        setBusy(false);
        setAsking(false);
      }
    }}>${busy ? 'Sending…' : 'Yes, send again'}</button>
    <button type="button" class="quiet" disabled=${busy} onClick=${() => setAsking(false)}>Cancel</button>
  </span>`;
}

export function DeadLetters(/** @type {{ report: import('./app.js').Report }} */ { report }) {
  const [rows, setRows] = useState(/** @type {DeadLetter[] | null} */ (null));
  const [unavailable, setUnavailable] = useState(false);

  const load = useCallback((/** @type {AbortSignal | undefined} */ signal) => {
    api(`/api/v1/deliveries/dead?limit=${LIMIT}`, { signal })
      .then((/** @type {{ deadLetters: DeadLetter[] }} */ d) => setRows(d.deadLetters))
      .catch((/** @type {any} */ e) => {
        if (aborted(e)) return;
        if (e.status === 404) setUnavailable(true);
        else report.error(e);
      });
  }, []);
  useEffect(() => {
    const ctl = new AbortController();
    load(ctl.signal);
    return () => ctl.abort();
  }, []);

  async function replay(/** @type {Record<string, unknown>} */ body, /** @type {string} */ what) {
    try {
      const r = /** @type {{ replayed: number }} */ (await api('/api/v1/deliveries/dead/replay', { method: 'POST', body }));
      report.info(r.replayed === 0 ? `Nothing to send again: ${what} was already replayed or removed.` : `${r.replayed === 1 ? '1 event is' : `${r.replayed} events are`} being sent again. Consent is checked again first.`);
      load(undefined);
    } catch (e) {
      report.error(e);
    }
  }

  return html`<${Section}
    id="dead"
    title="Dead letters"
    intro="Events a vendor kept refusing after every retry. Once the problem is fixed (an expired token, a wrong setting), send them again: consent is checked again before anything is sent."
    actions=${rows !== null && rows.length > 0
      ? html`<${ReplayButton} label="Send all again" ask=${`Send all ${rows.length === LIMIT ? 'dead letters' : rows.length} again?`} onConfirm=${() => replay({ all: true }, 'every dead letter')} />`
      : null}
  >
    ${unavailable
      ? html`<${Empty}>Dead letters need the delivery journal (a store in the configuration), which is not set up.</${Empty}>`
      : rows === null
        ? html`<p class="loading">Loading dead letters…</p>`
        : rows.length === 0
          ? html`<${Empty}>No dead letters. Every event a vendor accepted, or is still being retried.</${Empty}>`
          : html`<table class="stack">
              <caption>${rows.length === LIMIT ? `The latest ${LIMIT} dead letters` : `${rows.length} dead ${rows.length === 1 ? 'letter' : 'letters'}`}</caption>
              <thead><tr><th scope="col">Destination</th><th scope="col">Event</th><th scope="col">Gave up</th><th scope="col">Tries</th><th scope="col">Why</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead>
              <tbody>
                ${rows.map((d) => {
                  const rowId = `dead-${d.hitId}-${d.destinationId}`;
                  return html`<tr>
                    <td data-label="Destination" class="dest" id=${rowId}>${d.destinationId}</td>
                    <td data-label="Event">${d.event ?? d.type ?? 'Unknown event'} <span class="muted id">${d.messageId ?? `hit ${d.hitId}`}</span></td>
                    <td data-label="Gave up"><${Time} t=${d.diedAt} /></td>
                    <td data-label="Tries" class="num">${d.attempts}</td>
                    <td data-label="Why">
                      ${whyDead(d)} ${d.code ? html`<code>${d.code}</code>` : null}
                      ${d.excerpt ? html`<details><summary>Vendor answer</summary><pre>${d.excerpt}</pre></details>` : null}
                    </td>
                    <td data-label="Action">
                      <${ReplayButton}
                        label="Send again"
                        describedBy=${rowId}
                        ask=${`Send this ${d.event ?? 'event'} to ${d.destinationId} again?`}
                        onConfirm=${() => replay({ hitId: d.hitId, destinationId: d.destinationId }, 'this event')}
                      />
                    </td>
                  </tr>`;
                })}
              </tbody>
            </table>`}
  </${Section}>`;
}
