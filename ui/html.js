// htm bound to Preact once: every view writes `html\`<div>…</div>\`` instead of JSX (no build step).
import { h } from 'preact';
import htm from 'htm';
import { isoOf, when } from './words.js';

export const html = htm.bind(h);

/** A time element: readable text, machine-readable datetime. */
export function Time(/** @type {{ t: number | string | null | undefined, short?: boolean }} */ { t, short = false }) {
  const iso = isoOf(t);
  return iso === undefined ? html`<span class="muted">—</span>` : html`<time datetime=${iso}>${when(t, short)}</time>`;
}

/** An empty state: what is missing and, when there is one, what to do about it. */
export function Empty(/** @type {{ children: unknown }} */ { children }) {
  return html`<p class="empty">${children}</p>`;
}

/** A section of the page with its heading, which takes the focus when the section is opened. */
export function Section(/** @type {{ id: string, title: string, intro?: string, children: unknown, actions?: unknown }} */ { id, title, intro, children, actions }) {
  return html`<section class="view" aria-labelledby=${`${id}-title`}>
    <div class="view-head">
      <h2 id=${`${id}-title`} tabindex="-1">${title}</h2>
      ${actions}
    </div>
    ${intro === undefined ? null : html`<p class="intro">${intro}</p>`}
    ${children}
  </section>`;
}
