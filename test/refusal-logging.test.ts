import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * What is refused at the door, and what consent drops, shows in the log: one warn line per refused
 * event or request (info for a policy drop), with the reason, field paths and messages, and the
 * messageId, never a value the event carried; rate-limited per client and reason on the app's clock.
 */
describe('refusals and drops are logged, rate-limited, without personal data', () => {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString('utf8'));
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  const clock = new FakeClock(Date.parse('2026-12-01T10:00:00.000Z'));
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  const EMAIL = 'jane.secret@example.com';

  beforeAll(async () => {
    vendor = await startVendor();
    const config = testConfig({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {}, advertising: {} } },
      destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` }, consent: { categories: ['analytics'] } }],
    });
    tw = await startTagwarden(config, pino({ level: 'info' }, sink), { consentClock: clock });
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
  });

  const logged = (msg: string) => lines.filter((l) => l.msg === msg);

  it('a refused single event is logged at warn with its reason and messageId, not its values', async () => {
    const r = await post(`${tw.url}/v1/track`, { messageId: 'm-single', anonymousId: 'a-1', properties: { email: EMAIL }, context: { traits: { email: EMAIL } } });
    expect(r.status).toBe(400);
    expect(logged('event refused').at(-1)).toMatchObject({
      level: 40,
      client: 'segment',
      route: '/v1/track',
      status: 400,
      code: 'TW_ERR_VALIDATION',
      reason: 'event',
      messageId: 'm-single',
      issues: [{ path: 'event', message: 'required' }],
    });
  });

  it('a refused batch item is reported in the answer and logged with its index', async () => {
    const r = await post(`${tw.url}/v1/batch`, {
      batch: [
        { type: 'track', event: 'Ok', anonymousId: 'a-1', messageId: 'm-ok' },
        { type: 'track', event: 'Bad', anonymousId: 'a-1', messageId: 'm-bad', timestamp: 'yesterday', properties: { email: EMAIL } },
      ],
    });
    expect(r).toEqual({ status: 200, body: { success: true, accepted: 1, rejected: [{ index: 1, issues: [{ path: 'timestamp', message: 'not an ISO 8601 date' }] }] } });
    expect(logged('event refused').at(-1)).toMatchObject({ client: 'segment', route: '/v1/batch', reason: 'timestamp', index: 1, messageId: 'm-bad' });
  });

  it('a body refused as a whole is logged by its code, without the parser message that quotes it', async () => {
    const r = await post(`${tw.url}/v1/t`, `{"email": "${EMAIL}", oops`);
    expect(r.status).toBe(400);
    expect(logged('request refused').at(-1)).toMatchObject({ level: 40, client: 'segment', route: '/v1/t', status: 400, code: 'TW_ERR_MALFORMED_BODY', reason: 'TW_ERR_MALFORMED_BODY' });
  });

  it('a body that is not a batch, on the batch route, is logged as a refused request', async () => {
    const r = await post(`${tw.url}/v1/b`, { events: [{ email: EMAIL }] });
    expect(r.status).toBe(400);
    expect(logged('request refused').at(-1)).toMatchObject({ client: 'segment', route: '/v1/b', status: 400, code: 'TW_ERR_VALIDATION', reason: 'batch', issues: [{ path: 'batch', message: 'required' }] });
  });

  it('a refused GA4 hit is logged with its reason', async () => {
    const res = await fetch(`${tw.url}/g/collect?v=2&tid=G-TEST1&cid=1.2&uid=${encodeURIComponent(EMAIL)}`);
    expect(res.status).toBe(204);
    expect(logged('hit refused').at(-1)).toMatchObject({ level: 40, client: 'ga4', route: '/g/collect', reason: 'missing_v2_tid_en', hits: 1 });
  });

  it('bodies refused as a whole are counted as well as logged: a Segment body that is not JSON, a GA4 body over the limit', async () => {
    const counter = async (labels: string): Promise<number> => {
      const m = new RegExp(`tagwarden_events_rejected_total\\{${labels}\\} (\\d+)`).exec(await (await fetch(`${tw.url}/metrics`)).text());
      return m === null ? 0 : Number(m[1]);
    };
    const malformed = 'client="segment",code="TW_ERR_MALFORMED_BODY"';
    const tooLarge = 'client="ga4",code="TW_ERR_PAYLOAD_TOO_LARGE"';
    const before = [await counter(malformed), await counter(tooLarge)];
    const bad = await fetch(`${tw.url}/v1/t`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    expect(bad.status).toBe(400);
    const big = await fetch(`${tw.url}/g/collect?v=2&tid=G-TEST1`, { method: 'POST', body: 'en=x&'.repeat(200_000) });
    expect(big.status).toBe(413);
    expect(logged('hit refused').at(-1)).toMatchObject({ client: 'ga4', reason: 'too_large', code: 'TW_ERR_PAYLOAD_TOO_LARGE' });
    expect([await counter(malformed), await counter(tooLarge)]).toEqual([before[0]! + 1, before[1]! + 1]);
  });

  it('a refused Meta pixel hit is logged with its reason code, GET and POST alike', async () => {
    const get = await fetch(`${tw.url}/tr?id=not-a-pixel&ev=Lead&ud[em]=${encodeURIComponent(EMAIL)}`);
    expect(get.status).toBe(200);
    expect(logged('hit refused').at(-1)).toMatchObject({ level: 40, client: 'meta-pixel', route: '/tr', code: 'TW_ERR_VALIDATION', reason: 'bad_pixel_id' });
    // A multipart beacon cut short: unreadable, counted and logged by its own code.
    const cut = await fetch(`${tw.url}/tr/`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
      body: `--XyZ\r\nContent-Disposition: form-data; name="id"\r\n\r\n123`,
    });
    expect(cut.status).toBe(204);
    expect(logged('hit refused').at(-1)).toMatchObject({ client: 'meta-pixel', route: '/tr/', code: 'TW_ERR_MALFORMED_BODY', reason: 'unreadable_body' });
  });

  it('a consent drop is logged at info with the destination, reason and messageId', async () => {
    const r = await post(`${tw.url}/v1/track`, { messageId: 'm-denied', event: 'Signed Up', anonymousId: 'a-2', context: { traits: { email: EMAIL }, consent: { categoryPreferences: { analytics: false } } } });
    expect(r.status).toBe(200);
    await tw.app.flush(2000);
    const line = logged('event dropped by policy').find((l) => l.messageId === 'm-denied');
    expect(line).toEqual(expect.objectContaining({ level: 30, destination: 'hook', reason: 'consent_denied:analytics', messageId: 'm-denied' }));
    expect(Object.keys(line ?? {}).sort()).toEqual(['destination', 'hostname', 'level', 'messageId', 'msg', 'pid', 'reason', 'requestId', 'time'].sort());
  });

  it('logs at most 10 lines a minute per client and reason, then says how many it held back', async () => {
    clock.advance(120_000);
    const before = logged('event refused').filter((l) => l.reason === 'groupId').length;
    for (let i = 0; i < 15; i++) expect((await post(`${tw.url}/v1/group`, { anonymousId: 'a', messageId: `g-${i}` })).status).toBe(400);
    expect(logged('event refused').filter((l) => l.reason === 'groupId').length - before).toBe(10);
    clock.advance(60_000);
    await post(`${tw.url}/v1/group`, { anonymousId: 'a', messageId: 'g-late' });
    expect(logged('event refused').at(-1)).toMatchObject({ reason: 'groupId', messageId: 'g-late', suppressed: 5 });
  });

  it('never writes a value of a refused or dropped event to the log', () => {
    expect(raw.join('')).not.toContain(EMAIL);
    expect(raw.join('')).not.toContain(encodeURIComponent(EMAIL));
  });
});
