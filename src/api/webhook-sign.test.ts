import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, secretKey, signWebhook, verifyWebhook } from './webhook-sign.ts';

// The Standard Webhooks test vector (the one the specification's libraries test against).
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TS = 1614265330;
const BODY = '{"test": 2432232314}';

/** The algorithm written out independently with node:crypto: HMAC-SHA256 over "id.ts.body", key = base64 after whsec_. */
function reference(secret: string, id: string, ts: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`, 'utf8').digest('base64')}`;
}

describe('signWebhook', () => {
  it('matches the Standard Webhooks algorithm and its published vector', () => {
    const headers = signWebhook(SECRET, ID, TS, BODY);
    expect(headers).toEqual({ 'webhook-id': ID, 'webhook-timestamp': '1614265330', 'webhook-signature': reference(SECRET, ID, TS, BODY) });
    expect(headers['webhook-signature']).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('signs bytes and text alike, non-ASCII included', () => {
    const body = '{"name":"Zoë ✓"}';
    expect(signWebhook(SECRET, ID, TS, Buffer.from(body))['webhook-signature']).toBe(reference(SECRET, ID, TS, body));
  });

  it('refuses a timestamp in milliseconds-as-float, or an id with a dot', () => {
    expect(() => signWebhook(SECRET, ID, 1.5, BODY)).toThrow(/timestamp/);
    expect(() => signWebhook(SECRET, 'a.b', TS, BODY)).toThrow(/id/);
    expect(() => signWebhook('whsec_not base64!', ID, TS, BODY)).toThrow(/secret/);
  });

  it('generates whsec_ secrets of 32 random bytes', () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secretKey(a)).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(a);
  });
});

describe('verifyWebhook', () => {
  const headers = signWebhook(SECRET, ID, TS, BODY);
  const at = { nowSec: TS + 10 };

  it('accepts a genuine delivery (object headers, node-style lower case, fetch Headers)', () => {
    expect(verifyWebhook(SECRET, headers, BODY, at)).toEqual({ ok: true, id: ID, timestampSec: TS });
    expect(verifyWebhook(SECRET, new Headers({ ...headers }), Buffer.from(BODY), at).ok).toBe(true);
    expect(verifyWebhook(SECRET, { 'Webhook-Id': ID, 'Webhook-Timestamp': String(TS), 'Webhook-Signature': headers['webhook-signature'] }, BODY, at).ok).toBe(true);
  });

  it('accepts when one of several signatures matches (rotation), ignores other versions', () => {
    const sig = `v1a,abc v1,${Buffer.alloc(32).toString('base64')} ${headers['webhook-signature']}`;
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-signature': sig }, BODY, at).ok).toBe(true);
  });

  it('rejects a tampered body, id or timestamp, and a wrong secret', () => {
    expect(verifyWebhook(SECRET, headers, '{"test": 2432232315}', at)).toEqual({ ok: false, reason: 'no_matching_signature' });
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-id': 'msg_other' }, BODY, at)).toEqual({ ok: false, reason: 'no_matching_signature' });
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': String(TS + 1) }, BODY, at)).toEqual({ ok: false, reason: 'no_matching_signature' });
    expect(verifyWebhook(generateWebhookSecret(), headers, BODY, at)).toEqual({ ok: false, reason: 'no_matching_signature' });
  });

  it('rejects an old or future timestamp (replay), within a configurable tolerance', () => {
    expect(verifyWebhook(SECRET, headers, BODY, { nowSec: TS + 301 })).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(verifyWebhook(SECRET, headers, BODY, { nowSec: TS - 301 })).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(verifyWebhook(SECRET, headers, BODY, { nowSec: TS + 300 }).ok).toBe(true);
    expect(verifyWebhook(SECRET, headers, BODY, { nowSec: TS + 3600, toleranceSec: 7200 }).ok).toBe(true);
    // Default clock: 2021 is long past.
    expect(verifyWebhook(SECRET, headers, BODY)).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
  });

  it('rejects missing headers, a malformed timestamp and a bad secret', () => {
    expect(verifyWebhook(SECRET, { 'webhook-id': ID, 'webhook-timestamp': String(TS) }, BODY, at)).toEqual({ ok: false, reason: 'missing_header' });
    expect(verifyWebhook(SECRET, {}, BODY, at)).toEqual({ ok: false, reason: 'missing_header' });
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': '1614265330.5' }, BODY, at)).toEqual({ ok: false, reason: 'invalid_timestamp' });
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': '-1' }, BODY, at)).toEqual({ ok: false, reason: 'invalid_timestamp' });
    expect(verifyWebhook('whsec_!!', headers, BODY, at)).toEqual({ ok: false, reason: 'invalid_secret' });
  });
});
