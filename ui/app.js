// The dashboard's entry: the session decides between the login form and the dashboard; the
// sections are hash routes (#overview, #visitor/visitor/<id>, …) so a link or the back button
// opens one, and plain links make every tab reachable with Tab and opened with Enter.
import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, onSessionEnded, problemText, setCsrf, ApiError } from './api.js';
import { html } from './html.js';
import { Overview } from './overview.js';
import { Decisions } from './decisions.js';
import { VisitorLookup } from './visitor.js';
import { DeadLetters } from './dead-letters.js';
import { Destinations } from './destinations.js';
import { Preview } from './preview.js';

const SECTIONS = [
  { id: 'overview', label: 'Overview', view: Overview },
  { id: 'decisions', label: 'Recent decisions', view: Decisions },
  { id: 'visitor', label: 'Visitor lookup', view: VisitorLookup },
  { id: 'dead', label: 'Dead letters', view: DeadLetters },
  { id: 'destinations', label: 'Destinations', view: Destinations },
  { id: 'preview', label: 'Preview', view: Preview },
];

/** The section and its arguments from the location's hash. */
function route() {
  const [id = '', ...rest] = location.hash.replace(/^#/, '').split('/');
  const section = SECTIONS.find((s) => s.id === id) ?? SECTIONS[0];
  return { section, args: rest.map((a) => decodeURIComponent(a)) };
}

/**
 * @typedef {{ kind: 'error' | 'info', text: string }} Message
 * @typedef {{ error: (e: unknown) => void, info: (text: string) => void, clear: () => void }} Report
 */

function Login(/** @type {{ notice?: string }} */ { notice }) {
  const login = new URLSearchParams(location.search).get('login');
  // The server's redirect after a refused form login says why (docs/ui.md).
  const refused = login === 'failed' ? 'That key did not work. Check it and try again.' : login === 'throttled' ? 'Too many tries with a wrong key. Wait a minute, then try again.' : undefined;
  const failed = refused !== undefined;
  const ref = useRef(/** @type {HTMLInputElement | null} */ (null));
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return html`<main class="login" id="main">
    <h1>Tagwarden</h1>
    <p class="intro">Sign in to see what your site sends to each vendor, and what consent kept back.</p>
    <div class="messages" aria-live="assertive" role="alert">
      ${failed ? html`<p class="message error">${refused}</p>` : null}
      ${!failed && notice ? html`<p class="message info">${notice}</p>` : null}
    </div>
    <form method="post" action="/ui/login" class="card">
      <label for="login-key">Admin key</label>
      <p class="hint" id="login-key-hint">The <code>debug.adminKey</code> of the Tagwarden configuration. Ask whoever runs Tagwarden for it.</p>
      <input id="login-key" ref=${ref} name="key" type="password" autocomplete="current-password" required minlength="16" aria-describedby="login-key-hint" aria-invalid=${failed ? 'true' : undefined} />
      <button type="submit" class="primary">Sign in</button>
    </form>
  </main>`;
}

function Dashboard(/** @type {{ onSignOut: () => void }} */ { onSignOut }) {
  const [current, setCurrent] = useState(route);
  const [message, setMessage] = useState(/** @type {Message | null} */ (null));
  const shown = useRef(current.section.id);

  useEffect(() => {
    const onHash = () => setCurrent(route());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  // Opening another section moves the focus to its heading, so a screen reader says where you
  // are. Not at the first render (the page has just loaded) and not for a new lookup within the
  // same section (the focus stays in its form).
  useEffect(() => {
    if (shown.current === current.section.id) return;
    shown.current = current.section.id;
    setMessage(null);
    document.getElementById(`${current.section.id}-title`)?.focus();
  }, [current]);

  /** @type {Report} */
  const report = {
    error: useCallback((/** @type {unknown} */ e) => {
      if (e instanceof ApiError && e.status === 401) return;
      setMessage({ kind: 'error', text: problemText(e) });
    }, []),
    info: useCallback((/** @type {string} */ text) => setMessage({ kind: 'info', text }), []),
    clear: useCallback(() => setMessage(null), []),
  };

  const View = current.section.view;
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <h1>Tagwarden</h1>
      <button type="button" class="quiet" onClick=${onSignOut}>Sign out</button>
    </header>
    <nav aria-label="Dashboard sections" class="tabs">
      <ul>
        ${SECTIONS.map(
          (s) => html`<li><a href=${`#${s.id}`} aria-current=${s.id === current.section.id ? 'page' : undefined}>${s.label}</a></li>`,
        )}
      </ul>
    </nav>
    <div class="messages" aria-live="polite" role="status">
      ${message === null
        ? null
        : html`<p class=${`message ${message.kind}`}>
            <span>${message.kind === 'error' ? 'Problem: ' : ''}${message.text}</span>
            <button type="button" class="quiet small" onClick=${report.clear}>Dismiss</button>
          </p>`}
    </div>
    <main id="main" tabindex="-1">
      <${View} key=${current.section.id} args=${current.args} report=${report} />
    </main>
  </div>`;
}

function App() {
  const [state, setState] = useState(/** @type {'loading' | 'signed-out' | 'signed-in'} */ ('loading'));
  const [notice, setNotice] = useState(/** @type {string | undefined} */ (undefined));

  useEffect(() => {
    onSessionEnded(() => {
      setNotice('Your session has ended. Please sign in again.');
      setState('signed-out');
    });
    fetch('/ui/api/session', { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(async (res) => {
        if (res.status === 401) return setState('signed-out');
        if (!res.ok) throw new ApiError(res.status, undefined, `The server answered ${res.status}.`);
        const session = /** @type {{ csrf: string }} */ (await res.json());
        setCsrf(session.csrf);
        // The failed-login marker has done its job once signed in.
        if (location.search !== '') history.replaceState(null, '', `/ui${location.hash}`);
        setState('signed-in');
      })
      .catch((/** @type {unknown} */ e) => {
        setNotice(`The dashboard could not check your session: ${problemText(e)}`);
        setState('signed-out');
      });
  }, []);

  const signOut = useCallback(async () => {
    try {
      await api('/ui/logout', { method: 'POST' });
    } catch {
      // Signed out either way: the cookie is HttpOnly, the server clears it; a stale one fails later.
    }
    setCsrf('');
    history.replaceState(null, '', '/ui');
    setNotice('You are signed out.');
    setState('signed-out');
  }, []);

  if (state === 'loading') return html`<p class="loading">Loading the dashboard…</p>`;
  if (state === 'signed-out') return html`<${Login} notice=${notice} />`;
  return html`<${Dashboard} onSignOut=${signOut} />`;
}

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(html`<${App} />`, root);
}
