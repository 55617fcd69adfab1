// Preview: a session for your own browser whose hits are shown here live, decision by decision
// (POST /api/v1/preview, then GET /api/v1/preview/:id/stream read as server-sent events).
// "Test" sends them with the vendors' test modes; "silent" sends nothing to any vendor.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, aborted, headers, problemText, readAnswer } from './api.js';
import { Empty, Section, Time, html } from './html.js';
import { readEventStream } from './sse.js';
import { outcomeClass, outcomeText, reasonText } from './words.js';

/** Templates whose test events are shown under a test event code, and where the code is found. */
const CODE_TOOLS = /** @type {Record<string, string>} */ ({
  'meta-capi': 'Meta Events Manager, Test events',
  'tiktok-events': 'TikTok Events Manager, Test events',
});

/** Most decisions kept on the page: a busy preview must not grow the page without end. */
const KEEP = 200;

/**
 * @typedef {{ id: string, token: string, expiresAt: number | string, mode: string, startUrl: string }} PreviewSession
 * @typedef {{ at: number, messageId: string, eventType: string, eventName?: string, destinationId: string, outcome: string, reason: string, rules?: string[], consent?: Record<string, { status: string, source: string }>, request?: { method: string, url: string, body: unknown }, sent: boolean, delivery?: { outcome: string, status?: number } }} PreviewDecision
 */

function DecisionItem(/** @type {{ d: PreviewDecision }} */ { d }) {
  return html`<li class="card">
    <div class="receipt-head">
      <span class=${outcomeClass(d.outcome)}>${outcomeText(d.outcome)}</span>
      <span class="dest">${d.destinationId}</span>
      <span>${d.eventName ?? d.eventType}</span>
      <${Time} t=${d.at} short />
    </div>
    <p>${reasonText(d.reason)} <code>${d.reason}</code></p>
    <p class="muted">
      ${d.sent ? 'Sent to the vendor' : 'Not sent to the vendor'}${d.delivery ? `; the vendor answered ${d.delivery.status ?? d.delivery.outcome}` : ''}
    </p>
    <details>
      <summary>Details of event <span class="id">${d.messageId}</span></summary>
      <dl class="facts">
        ${Object.entries(d.consent ?? {}).map(([cat, s]) => html`<dt>Consent: ${cat}</dt><dd>${s.status} (from ${s.source})</dd>`)}
        <dt>Rules applied</dt><dd>${(d.rules ?? []).join(' → ') || '—'}</dd>
      </dl>
      ${d.request ? html`<p>${d.request.method} <span class="id">${d.request.url}</span></p><pre>${JSON.stringify(d.request.body, null, 2)}</pre>` : null}
    </details>
  </li>`;
}

export function Preview(/** @type {{ report: import('./app.js').Report }} */ { report }) {
  const [mode, setMode] = useState('test');
  const [ttl, setTtl] = useState('60');
  const [session, setSession] = useState(/** @type {PreviewSession | null} */ (null));
  const [live, setLive] = useState(/** @type {'off' | 'connecting' | 'on' | 'ended'} */ ('off'));
  const [items, setItems] = useState(/** @type {PreviewDecision[]} */ ([]));
  const stream = useRef(/** @type {AbortController | null} */ (null));
  // Destinations whose vendor shows test events under a code you copy from its tools.
  const [coded, setCoded] = useState(/** @type {{ id: string, template: string }[]} */ ([]));
  const [codes, setCodes] = useState(/** @type {Record<string, string>} */ ({}));

  useEffect(() => {
    const ctl = new AbortController();
    api('/ui/api/destinations', { signal: ctl.signal })
      .then((/** @type {{ id: string, template: string, enabled: boolean }[]} */ ds) => setCoded(ds.filter((d) => d.enabled && Object.hasOwn(CODE_TOOLS, d.template))))
      .catch(() => {
        // Without the list there are no code fields; the preview works without codes.
      });
    return () => ctl.abort();
  }, []);

  // Leaving the section closes the stream (the preview itself runs on until stopped or expired).
  useEffect(() => () => stream.current?.abort(), []);

  async function listen(/** @type {PreviewSession} */ s) {
    const ctl = new AbortController();
    stream.current = ctl;
    setLive('connecting');
    try {
      const res = await fetch(`/api/v1/preview/${encodeURIComponent(s.id)}/stream`, {
        headers: { ...headers(), Accept: 'text/event-stream' },
        credentials: 'same-origin',
        signal: ctl.signal,
      });
      if (!res.ok) await readAnswer(res);
      setLive('on');
      await readEventStream(res, (m) => {
        if (m.event === 'end') {
          setLive('ended');
          return;
        }
        /** @type {any} */
        let data;
        try {
          data = JSON.parse(m.data);
        } catch {
          return;
        }
        if (m.event === 'decision') setItems((old) => [data, ...old].slice(0, KEEP));
        else if (m.event === 'delivery')
          setItems((old) => old.map((d) => (d.messageId === data.messageId && d.destinationId === data.destinationId ? { ...d, delivery: data } : d)));
      });
      setLive('ended');
    } catch (e) {
      if (aborted(e)) return;
      setLive('ended');
      report.error(new Error(`The live list stopped: ${problemText(e)}`));
    }
  }

  async function start(/** @type {Event} */ e) {
    e.preventDefault();
    try {
      const testEventCodes = Object.fromEntries(Object.entries(codes).filter(([, c]) => c.trim() !== '').map(([id, c]) => [id, c.trim()]));
      const body = { mode, ttlMinutes: Number(ttl), ...(mode === 'test' && Object.keys(testEventCodes).length > 0 ? { testEventCodes } : {}) };
      const s = /** @type {PreviewSession} */ (await api('/api/v1/preview', { method: 'POST', body }));
      setItems([]);
      setSession(s);
      void listen(s);
    } catch (err) {
      report.error(err);
    }
  }

  async function stop() {
    if (session === null) return;
    stream.current?.abort();
    try {
      await api(`/api/v1/preview/${encodeURIComponent(session.id)}`, { method: 'DELETE' });
      report.info('Preview stopped. Hits from your browser are handled normally again.');
    } catch (err) {
      report.error(err);
    }
    setSession(null);
    setLive('off');
  }

  const startUrl = session === null ? '' : new URL(session.startUrl, location.origin).href;
  return html`<${Section} id="preview" title="Preview" intro="See, live, what Tagwarden decides for your own visits to the site, before real visitors are affected.">
    ${session === null
      ? html`<form class="card" onSubmit=${start}>
          <fieldset>
            <legend>What happens to preview events</legend>
            <label class="choice"><input type="radio" name="preview-mode" value="test" checked=${mode === 'test'} onChange=${() => setMode('test')} /> Test: send with the vendors’ test modes (Meta and TikTok test events, GA4 debug view); vendors without a test mode get nothing</label>
            <label class="choice"><input type="radio" name="preview-mode" value="silent" checked=${mode === 'silent'} onChange=${() => setMode('silent')} /> Silent: send nothing to any vendor, only show the decisions</label>
          </fieldset>
          ${mode === 'test'
            ? coded.map(
                (d) => html`<div class="field">
                  <label for=${`preview-code-${d.id}`}>Test event code for ${d.id} (optional)</label>
                  <p class="hint" id=${`preview-code-${d.id}-hint`}>From ${CODE_TOOLS[d.template]}. Without it the vendor may not show the events as tests.</p>
                  <input id=${`preview-code-${d.id}`} type="text" maxlength="100" autocomplete="off" spellcheck="false" aria-describedby=${`preview-code-${d.id}-hint`} value=${codes[d.id] ?? ''} onInput=${(/** @type {Event} */ e) => setCodes({ ...codes, [d.id]: /** @type {HTMLInputElement} */ (e.currentTarget).value })} />
                </div>`,
              )
            : null}
          <div class="field">
            <label for="preview-ttl">Runs for (minutes)</label>
            <input id="preview-ttl" type="number" min="1" max="240" required value=${ttl} onInput=${(/** @type {Event} */ e) => setTtl(/** @type {HTMLInputElement} */ (e.currentTarget).value)} />
          </div>
          <button type="submit" class="primary">Start preview</button>
        </form>`
      : html`<div class="card">
          <p><strong>Preview is on</strong> (${session.mode === 'silent' ? 'silent: nothing is sent to vendors' : 'test modes'}) until <${Time} t=${session.expiresAt} />.</p>
          <p>Open this link in the browser you test the site with. It marks that browser for the preview; then browse your site as usual.</p>
          <p><a class="id" href=${startUrl} target="_blank" rel="noopener">${startUrl}</a></p>
          <button type="button" onClick=${() => void stop()}>Stop preview</button>
        </div>
        <h3>Live decisions <span class="muted">(${live === 'on' ? 'listening' : live === 'connecting' ? 'connecting…' : 'not listening'})</span></h3>
        ${live === 'ended' ? html`<p class="message info">The preview ended.</p>` : null}
        ${items.length === 0
          ? html`<${Empty}>No preview events yet. Open the link above, then visit a page of your site.</${Empty}>`
          : html`<ol class="receipts" aria-live="polite" aria-relevant="additions">${items.map((d) => html`<${DecisionItem} key=${`${d.messageId}|${d.destinationId}`} d=${d} />`)}</ol>`}`}
  </${Section}>`;
}
