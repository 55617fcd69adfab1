// Every request the page makes goes through here: it carries the session's CSRF token (the server
// refuses a cookie without it, GET included) and turns an error answer into one readable message.

/** @type {string} */
let csrfToken = '';
/** @type {() => void} */
let onSignedOut = () => {};

/** The CSRF token of the current session (GET /ui/api/session). */
export function setCsrf(/** @type {string} */ token) {
  csrfToken = token;
}

/** Called when an answer says the session is gone (expired, or signed out in another tab). */
export function onSessionEnded(/** @type {() => void} */ fn) {
  onSignedOut = fn;
}

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: the server could not be reached)
   * @param {string | undefined} code TW_ERR_* code of the answer, when it had one
   * @param {string} message what to show
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The JSON headers of a request, with the CSRF token. */
export function headers(/** @type {boolean} */ json = false) {
  /** @type {Record<string, string>} */
  const h = { Accept: 'application/json', 'X-CSRF-Token': csrfToken };
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

/**
 * A same-origin request answered with JSON (or nothing, 204).
 * @param {string} path
 * @param {{ method?: string, body?: unknown, signal?: AbortSignal }} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  const { method = 'GET', body, signal } = options;
  /** @type {Response} */
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal,
    });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(0, undefined, 'Tagwarden could not be reached. Check your connection, then try again.');
  }
  return readAnswer(res);
}

/** @param {Response} res */
export async function readAnswer(res) {
  if (res.status === 401) {
    onSignedOut();
    throw new ApiError(401, undefined, 'Your session has ended. Please sign in again.');
  }
  if (res.status === 204) return undefined;
  const text = await res.text();
  /** @type {any} */
  let data;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const err = data && typeof data === 'object' ? data.error : undefined;
    const message = err && typeof err.message === 'string' ? err.message : `The server answered ${res.status}.`;
    throw new ApiError(res.status, err && typeof err.code === 'string' ? err.code : undefined, message);
  }
  return data;
}

/** The text to show for a failed request. */
export function problemText(/** @type {unknown} */ e) {
  if (e instanceof ApiError) {
    if (e.status === 403) return `Not allowed: ${e.message}`;
    if (e.status >= 500) return `Tagwarden had a problem answering (${e.status}). Try again in a moment. ${e.message}`;
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

/** True when `e` is the abort of a request this page cancelled itself. */
export function aborted(/** @type {unknown} */ e) {
  return e instanceof DOMException && e.name === 'AbortError';
}
