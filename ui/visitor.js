// Visitor lookup: for one visitor (anonymousId) or user id, the stored consent record
// (/api/v1/subjects/:type/:id), its audit trail (/api/v1/audit?subject=) and the decision
// receipts (/api/v1/receipts?visitorId|userId=): "why did this visitor's purchase not reach Meta?".
import { useEffect, useState } from 'preact/hooks';
import { api, aborted, problemText, ApiError } from './api.js';
import { Empty, Section, Time, html } from './html.js';
import { outcomeClass, outcomeText, reasonText } from './words.js';

const PAGE = 100;

/**
 * @typedef {{ state: 'loading' } | { state: 'none', text: string } | { state: 'error', text: string } | { state: 'ok', value: any }} Part
 */

/** A lookup's answer as a part to show: a 404 is an empty state, not an error. */
async function part(/** @type {string} */ path, /** @type {string} */ none, /** @type {AbortSignal} */ signal) {
  try {
    return /** @type {Part} */ ({ state: 'ok', value: await api(path, { signal }) });
  } catch (e) {
    if (aborted(e)) throw e;
    if (e instanceof ApiError && e.status === 404) return /** @type {Part} */ ({ state: 'none', text: none });
    return /** @type {Part} */ ({ state: 'error', text: problemText(e) });
  }
}

function Status(/** @type {{ item: { status: string, expired: boolean } }} */ { item }) {
  if (item.expired) return html`<span class="outcome outcome-drop">Expired</span>`;
  return item.status === 'granted' ? html`<span class="outcome outcome-forward">Given</span>` : html`<span class="outcome outcome-drop">Declined</span>`;
}

function ConsentRecord(/** @type {{ part: Part }} */ { part: p }) {
  if (p.state === 'loading') return html`<p class="loading">Loading the consent record…</p>`;
  if (p.state !== 'ok') return html`<p class=${p.state === 'error' ? 'message error' : 'empty'}>${p.text}</p>`;
  const c = p.value;
  const items = Object.values(c.items ?? {});
  return html`
    <dl class="facts">
      <dt>Last change</dt><dd><${Time} t=${c.consentAt} /></dd>
      <dt>Country</dt><dd>${c.geoCountry ?? '—'}</dd>
      <dt>IAB TCF string</dt><dd>${c.tcfString ? 'Stored' : 'None'}</dd>
      <dt>Google Consent Mode</dt><dd>${c.gcm ? Object.entries(c.gcm).map(([k, v]) => `${k}: ${v}`).join(', ') : 'None'}</dd>
      <dt>Linked ids</dt><dd class="id">${(c.linked ?? []).map((/** @type {{type: string, id: string}} */ l) => `${l.type} ${l.id}`).join(', ') || '—'}</dd>
    </dl>
    ${items.length === 0
      ? html`<${Empty}>No consent choice per category is recorded.</${Empty}>`
      : html`<table class="stack">
          <caption>Consent per category</caption>
          <thead><tr><th scope="col">Category</th><th scope="col">Consent</th><th scope="col">Since</th><th scope="col">Valid until</th><th scope="col">Source</th></tr></thead>
          <tbody>
            ${items.map(
              (/** @type {any} */ i) => html`<tr>
                <th scope="row" data-label="Category">${i.item}</th>
                <td data-label="Consent"><${Status} item=${i} /></td>
                <td data-label="Since"><${Time} t=${i.consentAt} /></td>
                <td data-label="Valid until">${i.validUntil === null ? 'No end date' : html`<${Time} t=${i.validUntil} />`}</td>
                <td data-label="Source">${i.source}</td>
              </tr>`,
            )}
          </tbody>
        </table>`}`;
}

function Audit(/** @type {{ part: Part }} */ { part: p }) {
  if (p.state === 'loading') return html`<p class="loading">Loading the audit trail…</p>`;
  if (p.state !== 'ok') return html`<p class=${p.state === 'error' ? 'message error' : 'empty'}>${p.text}</p>`;
  const entries = /** @type {any[]} */ (p.value.entries ?? []);
  if (entries.length === 0) return html`<${Empty}>No consent changes are recorded for this id.</${Empty}>`;
  return html`<table class="stack">
    <caption>Every consent change received, oldest first${p.value.nextCursor ? ` (the first ${entries.length})` : ''}</caption>
    <thead><tr><th scope="col">Received</th><th scope="col">Change</th><th scope="col">Category</th><th scope="col">Consent time</th><th scope="col">Source</th><th scope="col">Note</th></tr></thead>
    <tbody>
      ${entries.map(
        (e) => html`<tr>
          <td data-label="Received"><${Time} t=${e.importedAt} /></td>
          <td data-label="Change">${e.action === 'accept' ? 'Consent given' : e.action === 'reject' ? 'Consent declined' : e.action}</td>
          <td data-label="Category">${e.item ?? '—'}</td>
          <td data-label="Consent time"><${Time} t=${e.consentAt} /></td>
          <td data-label="Source">${e.source}</td>
          <td data-label="Note">${!e.valid ? `Invalid: ${e.invalidReason ?? ''}` : !e.applied ? 'Kept for the record; a newer choice already applied' : (e.message ?? '')}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function Receipts(/** @type {{ part: Part, more?: () => void }} */ { part: p, more }) {
  if (p.state === 'loading') return html`<p class="loading">Loading receipts…</p>`;
  if (p.state !== 'ok') return html`<p class=${p.state === 'error' ? 'message error' : 'empty'}>${p.text}</p>`;
  const receipts = /** @type {any[]} */ (p.value.receipts ?? []);
  if (receipts.length === 0) return html`<${Empty}>No decisions are recorded for this id (receipts are deleted after the configured number of days).</${Empty}>`;
  return html`<p class="hint">Oldest first: one per event and destination, and another when an event that waited for consent was decided.</p>
    <ol class="receipts">
      ${receipts.map(
        (r) => html`<li class="card">
          <div class="receipt-head">
            <span class=${outcomeClass(r.outcome)}>${outcomeText(r.outcome)}</span>
            <span class="dest">${r.destinationId}</span>
            <${Time} t=${r.decidedAt} />
          </div>
          <p>${reasonText(r.reason)} <code>${r.reason}</code></p>
          <details>
            <summary>Details of event <span class="id">${r.messageId}</span></summary>
            <dl class="facts">
              <dt>Step</dt><dd>${r.phase === 'decided' ? 'First decision' : r.phase === 'held_decided' ? 'Decided after waiting for consent' : 'Gave up waiting for consent'}</dd>
              ${r.mode ? html`<dt>Consent mode</dt><dd>${r.mode.mode}${r.mode.region ? ` (${r.mode.region})` : ''}</dd>` : null}
              ${Object.entries(r.consent ?? {}).map(([cat, s]) => html`<dt>Consent: ${cat}</dt><dd>${s.status} (from ${s.source})</dd>`)}
              <dt>Rules applied</dt><dd>${(r.rules ?? []).join(' → ') || '—'}</dd>
            </dl>
          </details>
        </li>`,
      )}
    </ol>
    ${more ? html`<button type="button" onClick=${more}>Show later decisions</button>` : null}`;
}

export function VisitorLookup(/** @type {{ args: string[], report: import('./app.js').Report }} */ { args }) {
  const [type, setType] = useState(args[0] === 'user' ? 'user' : 'visitor');
  const [id, setId] = useState(args[1] ?? '');
  const looked = args[1] !== undefined && args[1] !== '' ? { type: args[0] === 'user' ? 'user' : 'visitor', id: args[1] } : undefined;
  const [parts, setParts] = useState(/** @type {{ consent: Part, audit: Part, receipts: Part } | null} */ (null));

  useEffect(() => {
    if (looked === undefined) return undefined;
    setType(looked.type);
    setId(looked.id);
    const ctl = new AbortController();
    const loading = /** @type {Part} */ ({ state: 'loading' });
    setParts({ consent: loading, audit: loading, receipts: loading });
    const enc = encodeURIComponent(looked.id);
    const who = looked.type === 'user' ? 'user' : 'visitor';
    Promise.all([
      part(`/api/v1/subjects/${looked.type}/${enc}`, `No consent is recorded for this ${who}. Their events are decided by what each visit says.`, ctl.signal),
      part(`/api/v1/audit?subject=${looked.type}:${enc}&limit=${PAGE}`, 'The audit trail needs the consent store, which is not set up.', ctl.signal),
      part(`/api/v1/receipts?${looked.type === 'user' ? 'userId' : 'visitorId'}=${enc}&limit=${PAGE}`, 'Decision receipts are switched off (receipts.enabled in the configuration), so past decisions are not kept.', ctl.signal),
    ])
      .then(([consent, audit, receipts]) => setParts({ consent, audit, receipts }))
      .catch(() => {});
    return () => ctl.abort();
  }, [looked?.type, looked?.id]);

  async function more() {
    if (parts === null || parts.receipts.state !== 'ok' || looked === undefined) return;
    const prev = parts.receipts.value;
    const next = await part(
      `/api/v1/receipts?${looked.type === 'user' ? 'userId' : 'visitorId'}=${encodeURIComponent(looked.id)}&limit=${PAGE}&cursor=${encodeURIComponent(prev.nextCursor)}`,
      '',
      new AbortController().signal,
    );
    if (next.state === 'ok') setParts({ ...parts, receipts: { state: 'ok', value: { receipts: [...prev.receipts, ...next.value.receipts], nextCursor: next.value.nextCursor } } });
    else setParts({ ...parts, receipts: next });
  }

  function submit(/** @type {Event} */ e) {
    e.preventDefault();
    const trimmed = id.trim();
    if (trimmed === '') return;
    location.hash = `#visitor/${type}/${encodeURIComponent(trimmed)}`;
  }

  return html`<${Section} id="visitor" title="Visitor lookup" intro="Look up one visitor to see their consent, every consent change Tagwarden received, and what was decided for their events.">
    <form class="card lookup" onSubmit=${submit}>
      <div class="field">
        <label for="lookup-type">Look up by</label>
        <select id="lookup-type" value=${type} onChange=${(/** @type {Event} */ e) => setType(/** @type {HTMLSelectElement} */ (e.currentTarget).value)}>
          <option value="visitor">Visitor id (anonymousId)</option>
          <option value="user">User id (userId)</option>
        </select>
      </div>
      <div class="field grow">
        <label for="lookup-id">Id</label>
        <input id="lookup-id" type="search" value=${id} required maxlength="256" autocomplete="off" spellcheck="false" onInput=${(/** @type {Event} */ e) => setId(/** @type {HTMLInputElement} */ (e.currentTarget).value)} />
      </div>
      <button type="submit" class="primary">Look up</button>
    </form>
    ${looked === undefined || parts === null
      ? html`<${Empty}>Enter an id to start. You find a visitor id in Recent decisions, or in your site’s analytics cookie (ajs_anonymous_id).</${Empty}>`
      : html`<div class="results" aria-live="polite">
          <h3>Consent of ${looked.type} <span class="id">${looked.id}</span></h3>
          <${ConsentRecord} part=${parts.consent} />
          <h3>Audit trail</h3>
          <${Audit} part=${parts.audit} />
          <h3>Decisions (receipts)</h3>
          <${Receipts} part=${parts.receipts} more=${parts.receipts.state === 'ok' && parts.receipts.value.nextCursor ? () => void more() : undefined} />
        </div>`}
  </${Section}>`;
}
