/**
 * Webhook signatures in the Standard Webhooks style
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
 * https://www.standardwebhooks.com/):
 *
 * - `webhook-id`: the event's id, the same on every retry (receivers deduplicate on it);
 * - `webhook-timestamp`: the attempt's time in integer Unix seconds;
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "${id}.${timestamp}.${body}">`, space-separated
 *   when there are several (secret rotation); the key is the secret's bytes: `whsec_<base64>`,
 *   base64-decoded after the prefix.
 *
 * A receiver verifies: the three headers present, the timestamp within a tolerance of its clock
 * (5 minutes: replay protection), and one `v1` entry equal (constant time) to the HMAC it computes
 * over the RAW body, before parsing it. `verifyWebhook` does exactly that and is what the docs
 * point users to.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InternalError } from '../errors.ts';
import { systemClock } from '../lib/clock.ts';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** The spec asks for secrets of 24 to 64 bytes; ours are 32 random bytes. */
const SECRET_BYTES = 32;
export const DEFAULT_TOLERANCE_SEC = 5 * 60;

// A type alias rather than an interface: assignable to a plain header record.
export type WebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/** A new signing secret, `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

/** The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in the spec's libraries). */
export function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret;
  if (b64 === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new InternalError('webhook secret: expected whsec_ followed by base64');
  return Buffer.from(b64, 'base64');
}

/** `v1,<base64 HMAC-SHA256(key, "${id}.${timestampSec}.${body}")>`. */
export function webhookSignature(secret: string, id: string, timestampSec: number, body: string | Buffer): string {
  const mac = createHmac('sha256', secretKey(secret));
  mac.update(`${id}.${timestampSec}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

/** The three headers of one delivery attempt. */
export function signWebhook(secret: string, id: string, timestampSec: number, body: string | Buffer): WebhookHeaders {
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) throw new InternalError('webhook timestamp: integer Unix seconds expected');
  // The signed content is joined with dots: an id containing one could be confused with another split.
  if (id === '' || id.includes('.')) throw new InternalError('webhook id: non-empty, without "."');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSec),
    'webhook-signature': webhookSignature(secret, id, timestampSec, body),
  };
}

export type VerifyFailure = 'missing_header' | 'invalid_timestamp' | 'timestamp_out_of_tolerance' | 'no_matching_signature' | 'invalid_secret';
export type VerifyResult = { ok: true; id: string; timestampSec: number } | { ok: false; reason: VerifyFailure };

export interface VerifyOptions {
  /** The receiver's clock, Unix seconds. Default now. */
  nowSec?: number;
  /** Largest accepted distance between the timestamp and now, either way. Default 300 s. */
  toleranceSec?: number;
}

type HeaderBag = Record<string, string | string[] | undefined> | Headers;

function header(headers: HeaderBag, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const v = headers[name] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(v) ? v.join(' ') : v;
}

/**
 * Verifies one received webhook: `headers` as received (node's IncomingHttpHeaders, a fetch
 * Headers or a plain object), `body` the raw bytes or text exactly as received. Accepts when any
 * `v1` signature matches (several are sent while a secret is rotated).
 */
export function verifyWebhook(secret: string, headers: HeaderBag, body: string | Buffer, opts: VerifyOptions = {}): VerifyResult {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const sigs = header(headers, 'webhook-signature');
  if (id === undefined || id === '' || ts === undefined || sigs === undefined || sigs === '') return { ok: false, reason: 'missing_header' };
  if (!/^[0-9]{1,15}$/.test(ts)) return { ok: false, reason: 'invalid_timestamp' };
  const timestampSec = Number(ts);
  const nowSec = opts.nowSec ?? Math.floor(systemClock.now() / 1000);
  if (Math.abs(nowSec - timestampSec) > (opts.toleranceSec ?? DEFAULT_TOLERANCE_SEC)) return { ok: false, reason: 'timestamp_out_of_tolerance' };
  let expected: Buffer;
  try {
    expected = Buffer.from(webhookSignature(secret, id, timestampSec, body).slice('v1,'.length), 'base64');
  } catch {
    return { ok: false, reason: 'invalid_secret' };
  }
  for (const entry of sigs.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const got = Buffer.from(entry.slice(comma + 1), 'base64');
    if (got.length === expected.length && timingSafeEqual(got, expected)) return { ok: true, id, timestampSec };
  }
  return { ok: false, reason: 'no_matching_signature' };
}
