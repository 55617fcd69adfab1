import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { MalformedBodyError, PayloadTooLargeError, ValidationError } from '../errors.ts';
import type { HitSources } from '../identity/visitor.ts';
import type { Event } from '../ingest/event.ts';
import { parseGa4Hits } from '../ingest/ga4.ts';
import { paramHitSources } from '../ingest/param-hit-sources.ts';
import { LIMITS as PIXEL_LIMITS, parsePixelHit } from '../ingest/meta-pixel.ts';
import { pixelParams } from '../ingest/meta-pixel-routes.ts';
import { readPixelBody } from '../ingest/meta-pixel-body.ts';
import type { FieldIssue } from '../ingest/segment.ts';
import { parseSegmentEvent } from '../ingest/segment.ts';
import { parseBatch, SINGLE_ROUTES } from '../ingest/segment-routes.ts';

/**
 * The `{"hit": {...}}` form of `POST /debug/explain`: a raw request of any client (method, path,
 * query, headers, body) read by the very parsers and hit-source builders the client routes use
 * (src/ingest/), so what is explained is what the route would have taken. This file only checks
 * the envelope (shape and sizes) and picks the client by path.
 */
export interface RawHit {
  method: 'GET' | 'POST';
  /** The route's path, e.g. `/g/collect`. */
  path: string;
  /** The raw query string, without `?` ('' when none). */
  query: string;
  /** Header names lower-cased, as Node gives them to the routes. */
  headers: IncomingHttpHeaders;
  /** The body as sent (text), or for a Segment route its JSON value; undefined when none. */
  body: unknown;
}

export interface RawHitLimits {
  maxEventBytes: number;
  maxBatchBytes: number;
  maxBatchEvents: number;
  /** Bound on the headers and query string together (server.maxHeaderBytes). */
  maxHeaderBytes: number;
}

export type HitClient = 'segment' | 'ga4' | 'meta-pixel';

/** One hit the route would have accepted; `index` is its place in the request (batch item, body line). */
export interface ReadHit {
  index: number;
  event: Event;
  sources: HitSources;
}

export interface ReadHits {
  client: HitClient;
  hits: ReadHit[];
  /** Hits of the request the route would have refused, with why. */
  rejected: { index: number; issues?: FieldIssue[]; reason?: string }[];
}

const HIT_KEYS = new Set(['method', 'path', 'query', 'headers', 'body']);
const MAX_PATH = 2048;
const MAX_HEADERS = 100;
/** An HTTP field name (RFC 9110, section 5.1: a token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const GA4_PATHS = new Set(['/g/collect']);
const PIXEL_PATHS = new Set(['/tr', '/tr/']);
const BATCH_PATHS = new Set(['/v1/batch', '/v1/b']);

function refuse(path: string, message: string): never {
  throw new ValidationError(`${path}: ${message}`, { details: { issues: [{ path, message }] } });
}

function plainRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Checks the envelope's `hit` and normalises it; throws a 400 naming the field at fault. */
export function rawHitOf(input: unknown, limits: RawHitLimits): RawHit {
  if (!plainRecord(input)) refuse('hit', 'an object {method, path, query?, headers?, body?}');
  for (const key of Object.keys(input)) if (!HIT_KEYS.has(key)) refuse(`hit.${key}`, 'unknown key (expected method, path, query, headers, body)');

  if (typeof input.path !== 'string' || input.path === '') refuse('hit.path', 'required, e.g. "/g/collect", "/tr" or "/v1/track"');
  if (input.path.length > MAX_PATH) refuse('hit.path', `longer than ${MAX_PATH} characters`);
  const q = input.path.indexOf('?');
  const path = q === -1 ? input.path : input.path.slice(0, q);
  let query = q === -1 ? '' : input.path.slice(q + 1);
  if (input.query !== undefined) {
    if (typeof input.query !== 'string') refuse('hit.query', 'a query string, e.g. "v=2&tid=G-XXXX&en=page_view"');
    if (q !== -1) refuse('hit.query', 'the path already has a query string; give it once');
    query = input.query.startsWith('?') ? input.query.slice(1) : input.query;
  }

  const headers: IncomingHttpHeaders = {};
  let headerBytes = query.length;
  if (input.headers !== undefined) {
    if (!plainRecord(input.headers)) refuse('hit.headers', 'an object of header name → value');
    const entries = Object.entries(input.headers);
    if (entries.length > MAX_HEADERS) refuse('hit.headers', `more than ${MAX_HEADERS} headers`);
    for (const [name, value] of entries) {
      const lower = name.toLowerCase();
      if (!TOKEN.test(name)) refuse('hit.headers', `"${name.slice(0, 64)}" is not a header name`);
      if (typeof value !== 'string') refuse(`hit.headers.${lower}`, 'a string');
      if (Object.hasOwn(headers, lower)) refuse(`hit.headers.${lower}`, 'given twice');
      headers[lower] = value;
      headerBytes += name.length + value.length + 4;
    }
  }
  if (headerBytes > limits.maxHeaderBytes) refuse('hit.headers', `the headers and query string are more than ${limits.maxHeaderBytes} bytes (server.maxHeaderBytes)`);

  const body = input.body;
  let method: RawHit['method'];
  if (input.method === undefined) method = body === undefined ? 'GET' : 'POST';
  else if (typeof input.method === 'string' && ['GET', 'POST'].includes(input.method.toUpperCase())) method = input.method.toUpperCase() as RawHit['method'];
  else refuse('hit.method', 'GET or POST');
  if (method === 'GET' && body !== undefined) refuse('hit.body', 'a GET hit has no body');
  return { method, path, query, headers, body };
}

/** Which client's route serves `path`, or a 400 listing the routes. */
export function clientOf(path: string): HitClient {
  if (GA4_PATHS.has(path)) return 'ga4';
  if (PIXEL_PATHS.has(path)) return 'meta-pixel';
  if (BATCH_PATHS.has(path) || (path.startsWith('/v1/') && Object.hasOwn(SINGLE_ROUTES, path.slice(4)))) return 'segment';
  return refuse('hit.path', `"${path.slice(0, 64)}" is not a client route (expected /g/collect, /tr, /v1/batch or /v1/<${Object.keys(SINGLE_ROUTES).join('|')}>)`);
}

/** Reads the hit as its route would: the same parsers, limits and hit sources. */
export async function readRawHit(hit: RawHit, facts: { ip: string | undefined; now: Date }, limits: RawHitLimits): Promise<ReadHits> {
  const client = clientOf(hit.path);
  const ua = hit.headers['user-agent'];
  const requestFacts = { ip: facts.ip, userAgent: typeof ua === 'string' ? ua : undefined, now: facts.now };
  if (client === 'segment') return readSegment(hit, requestFacts, limits);
  if (client === 'ga4') {
    const body = hit.method === 'POST' ? textBody(hit, limits.maxBatchBytes) : undefined;
    const parsed = parseGa4Hits(new URLSearchParams(hit.query), body, requestFacts);
    return {
      client,
      hits: parsed.hits.map((h) => ({ index: h.line, event: h.event, sources: paramHitSources(hit.headers, h.params, h.event) })),
      rejected: parsed.issues.map((i) => ({ index: i.line, reason: i.reason })),
    };
  }
  const params = hit.method === 'POST' ? await pixelBodyParams(hit.headers, hit.query, textBody(hit, limits.maxEventBytes), limits.maxEventBytes) : pixelParams(hit.query, undefined);
  if (params === undefined) return { client, hits: [], rejected: [{ index: 0, reason: `the query string is longer than ${PIXEL_LIMITS.query} characters` }] };
  const r = parsePixelHit(params, requestFacts);
  if (!r.ok) return { client, hits: [], rejected: [{ index: 0, reason: r.reason }] };
  return { client, hits: [{ index: 0, event: r.event, sources: paramHitSources(hit.headers, params, r.event) }], rejected: [] };
}

/**
 * A `/tr` POST body read as the route reads it (readPixelBody: urlencoded, beacon text or
 * multipart/form-data), then the route's parameter order (form fields first, then the query
 * string's). A body the route would not read is a 415 here: in production its hit is lost.
 */
export function pixelBodyParams(headers: IncomingHttpHeaders, query: string, body: string, maxBytes: number): Promise<URLSearchParams | undefined> {
  // The route reads a stream; the explained body is already in memory, so it is replayed as one.
  const req = Object.assign(Readable.from([Buffer.from(body)]), { headers }) as unknown as IncomingMessage;
  return new Promise((resolve, reject) => {
    readPixelBody(req, maxBytes, (outcome) => {
      if ('error' in outcome) reject(outcome.error);
      else resolve(pixelParams(query, outcome.params));
    });
  });
}

/** A GA4 or pixel body: text, within the route's limit. */
function textBody(hit: RawHit, limit: number): string {
  if (hit.body === undefined) return '';
  if (typeof hit.body !== 'string') refuse('hit.body', `the body as sent, a string (${hit.path} bodies are text)`);
  if (Buffer.byteLength(hit.body) > limit) throw new PayloadTooLargeError(`the body is larger than ${limit} bytes`);
  return hit.body;
}

function readSegment(hit: RawHit, facts: { ip: string | undefined; userAgent: string | undefined; now: Date }, limits: RawHitLimits): ReadHits {
  if (hit.method !== 'POST') refuse('hit.method', 'the Segment routes take POST');
  const batch = BATCH_PATHS.has(hit.path);
  const limit = batch ? limits.maxBatchBytes : limits.maxEventBytes;
  let body: unknown = hit.body;
  if (typeof body === 'string') {
    if (Buffer.byteLength(body) > limit) throw new PayloadTooLargeError(`the body is larger than ${limit} bytes`);
    if (body.trim() === '') throw new MalformedBodyError('the body is empty; send a JSON object');
    try {
      body = JSON.parse(body) as unknown;
    } catch (e) {
      throw new MalformedBodyError(`the body is not valid JSON: ${(e as Error).message}`);
    }
  } else if (body === undefined) {
    throw new MalformedBodyError('the body is empty; send a JSON object');
  } else if (jsonBytes(body) > limit) {
    throw new PayloadTooLargeError(`the body is larger than ${limit} bytes`);
  }
  const query = new URLSearchParams(hit.query);
  if (batch) {
    const parsed = parseBatch(body, facts, limits.maxBatchEvents);
    if ('error' in parsed) throw parsed.error;
    const indexOf = new Map((body as { batch: unknown[] }).batch.map((item, i) => [item, i]));
    return {
      client: 'segment',
      hits: parsed.accepted.map(({ event, item }) => ({ index: indexOf.get(item) ?? 0, event, sources: { headers: hit.headers, query, body: item } })),
      rejected: parsed.rejected,
    };
  }
  const r = parseSegmentEvent(body, SINGLE_ROUTES[hit.path.slice(4)], facts);
  if (!r.ok) return { client: 'segment', hits: [], rejected: [{ index: 0, issues: r.issues }] };
  return { client: 'segment', hits: [{ index: 0, event: r.event, sources: { headers: hit.headers, query, body } }], rejected: [] };
}

/**
 * The UTF-8 size of a value already parsed from the explain request's JSON. A value nested so
 * deeply that it cannot be serialised again (JSON.parse takes depths JSON.stringify's recursion
 * does not) is a 400, not a 500.
 */
export function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '');
  } catch {
    throw new ValidationError('the body is nested too deeply', { details: { issues: [{ path: 'body', message: 'nested too deeply' }] } });
  }
}
