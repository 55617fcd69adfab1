/**
 * Every request's id, for the log lines about it (docs/logs.md): the inbound `X-Request-Id` when it
 * is short and plain (a load balancer's or a client's own, so lines can be matched across hops),
 * else a fresh one; echoed in the answer's `X-Request-Id`. An inbound value that is long or holds
 * other characters is replaced, never logged: it could be anything, a log injection included.
 *
 * The id rides on the objects it belongs to (the request, its response, each event a hit
 * accepted) under a private symbol, outside their data: the event is what vendors receive and,
 * with the request signals, what the journal stores. So a hit resumed from the journal after a
 * restart has no request id; its lines carry none.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';
const SAFE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The id rides on its objects under a private symbol, not in a WeakMap: three WeakMap entries per
 * request cost ~2.5 µs (the ephemeron table of short-lived keys; bench: 6% of ingest's CPU per hit),
 * a symbol property ~0.05 µs. JSON, Object.keys and for…in never see a symbol key.
 */
const REQUEST_ID = Symbol('tagwarden.requestId');
type Carrier = { [REQUEST_ID]?: string };

/** The inbound id when safe to keep (≤ 64 of `A-Za-z0-9._-`), else undefined. Pure. */
export function safeRequestId(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && SAFE_ID.test(value) ? value : undefined;
}

/** A new id: a random UUID (36 characters; node batches its entropy, about 10x cheaper per hit than randomBytes(16)). */
export function newRequestId(): string {
  return randomUUID();
}

/** Gives the request its id (kept or new), echoes it in the answer's header; returns it. Once per request. */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const id = safeRequestId(req.headers[REQUEST_ID_HEADER]) ?? newRequestId();
  // Node's own objects, never copied as data: a plain (enumerable) symbol property is the cheapest.
  (req as Carrier)[REQUEST_ID] = id;
  (res as Carrier)[REQUEST_ID] = id;
  // Readers that get only the headers (the preview mark) log with the id too.
  (req.headers as Carrier)[REQUEST_ID] = id;
  res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/** Says that `thing` (an accepted event) belongs to the request with `id`; nothing when `id` is undefined. */
export function tagRequestId(thing: object, id: string | undefined): void {
  // Not enumerable: a copy of the event (spread, structuredClone, a journal round trip) has no id,
  // and comparing events ignores it.
  if (id !== undefined) Object.defineProperty(thing, REQUEST_ID, { value: id, configurable: true, writable: true });
}

/** The request id of a request, its response, or an event a hit accepted; undefined when it has none (a resumed hit). */
export function requestIdOf(thing: object | undefined): string | undefined {
  return thing === undefined ? undefined : (thing as Carrier)[REQUEST_ID];
}
