/**
 * Reads a `multipart/form-data` body (RFC 7578; what `navigator.sendBeacon(formData)` and
 * `fetch(url, { body: formData })` send, https://fetch.spec.whatwg.org/#concept-bodyinit-extract)
 * into its text fields, streaming through busboy and bounded before anything is kept: total bytes,
 * number of parts, name and value sizes. A file part (a `filename` or an
 * `application/octet-stream` type: busboy's rule) is refused, since the forms read here carry text
 * only.
 *
 * No timer: a body that stops arriving is ended by the server's `requestTimeout`
 * (src/http/server.ts), and a connection that closes before the body's end is reported as an error,
 * so `done` is always called, exactly once.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import { MalformedBodyError, type TagwardenError } from '../errors.ts';
import { tooLargeError } from './body.ts';

export interface MultipartLimits {
  /** Total body bytes, as received. */
  maxBytes: number;
  /** Parts (fields) in the body. */
  maxParts: number;
  /** Bytes of one field name (UTF-8). */
  maxNameBytes: number;
  /** Bytes of one field value. */
  maxValueBytes: number;
}

/** The fields in body order, each name with its value; or why the body could not be read. */
export type MultipartOutcome = { fields: [string, string][] } | { error: TagwardenError };

/** True when the content type is `multipart/form-data` (with or without parameters). */
export function isMultipartForm(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase() === 'multipart/form-data';
}

/**
 * Reads `body` as multipart/form-data; `headers` supply the content type (with its boundary).
 * Calls `done` once. Never throws: a content type without a boundary, a truncated body, a part
 * over a bound or a file part is `{ error }` (too many bytes is a PayloadTooLargeError, anything
 * else a MalformedBodyError). The caller drains or closes the request after an error.
 */
export function readMultipartFields(body: Readable, headers: IncomingHttpHeaders, limits: MultipartLimits, done: (outcome: MultipartOutcome) => void): void {
  const fields: [string, string][] = [];
  let size = 0;
  let finished = false;
  let parser: busboy.Busboy;

  const finish = (outcome: MultipartOutcome): void => {
    if (finished) return;
    finished = true;
    body.off('data', onData);
    body.off('end', onEnd);
    body.off('error', onError);
    body.off('close', onClose);
    if ('error' in outcome) parser.destroy();
    done(outcome);
  };
  const malformed = (why: string): void => finish({ error: new MalformedBodyError(`the multipart body could not be read: ${why}`) });

  if (body.destroyed) {
    // Aborted before this read began: no event of the stream is left to wait for.
    finished = true;
    done({ error: new MalformedBodyError('the multipart body could not be read: the connection closed before the end of the body') });
    return;
  }
  try {
    parser = busboy({
      headers,
      // busboy flags a value of exactly fieldSize bytes as truncated: one byte of slack, so a value
      // at the bound is kept and only a longer one is refused.
      limits: { parts: limits.maxParts + 1, fieldSize: limits.maxValueBytes + 1, files: 0 },
      defCharset: 'utf8',
      defParamCharset: 'utf8',
    });
  } catch (e) {
    // No boundary, or not a multipart type at all: busboy refuses it up front.
    finished = true;
    done({ error: new MalformedBodyError(`the multipart body could not be read: ${(e as Error).message}`) });
    return;
  }

  parser.on('field', (name, value, info) => {
    if (finished) return;
    // A part without a name parameter (busboy reports none) reads as the empty name, as `=v`
    // does in a urlencoded body.
    const key = typeof name === 'string' ? name : '';
    // busboy hands `undefined` for a part in a charset it cannot decode (e.g. koi8-r): refused,
    // never read as the text "undefined".
    if (typeof value !== 'string') malformed('a field in a charset that cannot be decoded');
    else if (info.valueTruncated) malformed(`a field value is longer than ${limits.maxValueBytes} bytes`);
    else if (Buffer.byteLength(key) > limits.maxNameBytes) malformed(`a field name is longer than ${limits.maxNameBytes} bytes`);
    else fields.push([key, value]);
  });
  parser.on('partsLimit', () => malformed(`more than ${limits.maxParts} parts`));
  parser.on('filesLimit', () => malformed('a file part (only text fields are read)'));
  parser.on('error', (e: Error) => malformed(e.message));
  parser.on('close', () => finish({ fields }));

  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > limits.maxBytes) {
      finish({ error: tooLargeError(limits.maxBytes) });
      return;
    }
    parser.write(chunk);
  };
  const onEnd = (): void => {
    // The whole body arrived: busboy now finishes on its own (complete, or "Unexpected end of
    // form"), and the request's own close that follows is no longer a cut.
    body.off('close', onClose);
    parser.end();
  };
  const onError = (e: Error): void => malformed(e.message);
  // A request whose connection closes before its end (aborted, or cut by the request timeout).
  const onClose = (): void => malformed('the connection closed before the end of the body');
  body.on('data', onData);
  body.on('end', onEnd);
  body.on('error', onError);
  body.on('close', onClose);
}
