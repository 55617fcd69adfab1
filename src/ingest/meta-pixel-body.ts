/**
 * The body of a `/tr` POST read into the hit's parameters, one way for the route and
 * /debug/explain. fbevents.js posts a hit in one of three shapes (test/fixtures/meta-pixel/README.md):
 * - `navigator.sendBeacon(url, formData)` (`rqm=SB`): `multipart/form-data`, one text part per
 *   parameter;
 * - a hidden form posted to an iframe (`rqm=formPOST`): `application/x-www-form-urlencoded`;
 * - a beacon of a string or a Blob of the query string: `text/plain` or no type.
 * Every shape becomes the same URLSearchParams a GET's query string gives, so parsePixelHit makes
 * the same event from each.
 */
import type { IncomingMessage } from 'node:http';
import { readLimitedText, tooLargeError } from '../http/body.ts';
import { isMultipartForm, readMultipartFields } from '../http/multipart-form.ts';
import { UnsupportedMediaTypeError, type TagwardenError } from '../errors.ts';
import { LIMITS } from './meta-pixel.ts';

export type PixelBodyOutcome = { params: URLSearchParams } | { error: TagwardenError };

/** Body types read as `k=v&...` text. */
const TEXT_FORM_TYPES = new Set(['', 'application/x-www-form-urlencoded', 'text/plain']);

/**
 * Multipart bounds from the hit's own: no more parts than a hit may have parameters, and names and
 * values within the hit's bounds in UTF-8 (at most 3 bytes per UTF-16 unit), so the reader never
 * refuses a field that parsePixelHit would take; parsePixelHit then applies the exact bounds.
 */
const MULTIPART_LIMITS = { maxParts: LIMITS.params, maxNameBytes: LIMITS.key * 3, maxValueBytes: LIMITS.value * 3 } as const;

/** True when /tr reads this POST body: a text form or multipart form, not content-encoded. */
function pixelBodyReadable(req: IncomingMessage): boolean {
  const ctype = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  const encoding = req.headers['content-encoding'];
  return (TEXT_FORM_TYPES.has(ctype) || isMultipartForm(ctype)) && (encoding === undefined || encoding === 'identity');
}

/**
 * Reads a /tr POST body within `maxBytes` (a larger declared length is refused unread) and calls
 * `done` once with its parameters, or the error: PayloadTooLargeError over the limit,
 * UnsupportedMediaTypeError for a body type not read (drained unread), MalformedBodyError for a
 * multipart body that cannot be read (no boundary, truncated, a part over a bound, a file).
 */
export function readPixelBody(req: IncomingMessage, maxBytes: number, done: (outcome: PixelBodyOutcome) => void): void {
  if (!pixelBodyReadable(req)) {
    req.resume();
    const what = req.headers['content-encoding'] ?? req.headers['content-type'] ?? '';
    done({ error: new UnsupportedMediaTypeError(`a /tr body of ${what} is not read; send a form, multipart/form-data or text/plain`) });
    return;
  }
  if (!isMultipartForm(req.headers['content-type'])) {
    readLimitedText(req, maxBytes, (o) => done('error' in o ? o : { params: new URLSearchParams(o.text) }));
    return;
  }
  if (Number(req.headers['content-length'] ?? NaN) > maxBytes) {
    done({ error: tooLargeError(maxBytes) });
    return;
  }
  readMultipartFields(req, req.headers, { maxBytes, ...MULTIPART_LIMITS }, (o) => done('error' in o ? o : { params: new URLSearchParams(o.fields) }));
}
