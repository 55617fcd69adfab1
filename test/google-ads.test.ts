import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { post, sha256, startTagwarden, startVendor, testConfig, type VendorHit } from './helpers.ts';

/**
 * templates/google-ads end to end: a fake Google Ads API and a fake OAuth 2.0 token endpoint, both
 * real HTTP servers on 127.0.0.1. Delivery runs on a FakeClock, so a token's expiry is a clock step.
 * The fake Google accepts only the access tokens the fake endpoint issued and has not revoked, as
 * Google answers an expired or revoked token: 401 UNAUTHENTICATED.
 */

const CUSTOMER = '1234567890';
const UPLOAD_PATH = `/v26/customers/${CUSTOMER}:uploadClickConversions`;
const SECRETS = { developerToken: 'dev-TOKEN-abc123', clientSecret: 'client-SECRET-xyz', refreshToken: '1//refresh-TOKEN-qrs' };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(tokenAnswer?: () => { status: number; body: string }, options: { answer?: (conversions: { orderId: string }[]) => { status: number; body: string }; delivery?: Record<string, unknown> } = {}) {
  const clock = new FakeClock(Date.parse('2026-12-01T10:00:00.000Z'));
  const issued: string[] = [];
  const valid = new Set<string>();
  const oauth = await startVendor(() => {
    if (tokenAnswer !== undefined) return tokenAnswer();
    const token = `ya29.access-TOKEN-${issued.length + 1}`;
    issued.push(token);
    valid.add(token);
    return { status: 200, body: JSON.stringify({ access_token: token, expires_in: 3599, scope: 'https://www.googleapis.com/auth/adwords', token_type: 'Bearer' }) };
  });
  const google = await startVendor((hit) => {
    const bearer = String(hit.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!valid.has(bearer)) return { status: 401, body: JSON.stringify({ error: { code: 401, message: `Request had invalid authentication credentials: ${bearer}`, status: 'UNAUTHENTICATED' } }) };
    const conversions = (hit.body as { conversions: { orderId: string }[] }).conversions;
    if (options.answer !== undefined) return options.answer(conversions);
    return { status: 200, body: JSON.stringify({ results: conversions.map(() => ({})), jobId: '42' }) };
  });
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString('utf8'));
      done();
    },
  });
  const tw = await startTagwarden(
    testConfig({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {}, analytics: {} } },
      ...(options.delivery === undefined ? {} : { delivery: options.delivery }),
      destinations: [
        {
          id: 'gads',
          template: 'google-ads',
          settings: { customerId: CUSTOMER, conversionActionId: '987654321', loginCustomerId: '1112223334', clientId: 'client-id.apps.googleusercontent.com', tokenUrl: `${oauth.url}/token`, ...SECRETS },
          endpoint: `${google.url}${UPLOAD_PATH}`,
        },
      ],
    }),
    pino({ level: 'debug' }, sink),
    { deliveryClock: clock },
  );
  cleanups.push(() => oauth.close(), () => google.close(), () => tw.close());

  const purchase = (messageId: string, advertising: boolean) =>
    post(`${tw.url}/v1/track`, {
      messageId,
      event: 'Order Completed',
      anonymousId: `anon-${messageId}`,
      timestamp: '2026-12-01T09:59:00.000Z',
      properties: { order_id: `o-${messageId}`, value: 42.5, currency: 'EUR' },
      context: {
        page: { url: `https://shop.example/thanks?gclid=Gclid-${messageId}` },
        traits: { email: 'Jane.Doe@gmail.com' },
        consent: { categoryPreferences: { advertising, analytics: true } },
      },
    });
  /** Posts purchases (one batch once flushed). */
  const post3 = async (...ids: string[]) => {
    for (const id of ids) expect((await purchase(id, true)).status).toBe(200);
  };
  /** Sends one purchase and waits until delivery has done everything it can without the clock moving. */
  const send = async (messageId: string, advertising = true) => {
    expect((await purchase(messageId, advertising)).status).toBe(200);
    await tw.app.flush(5_000);
  };
  const uploads = (): VendorHit[] => google.hits.filter((h) => h.path === UPLOAD_PATH);
  const bearerOf = (h: VendorHit) => h.headers.authorization;
  const log = () => raw.join('');
  return { clock, issued, valid, oauth, google, tw, send, post: post3, uploads, bearerOf, log };
}

describe('google-ads end to end (fake Google Ads API and OAuth token endpoint on 127.0.0.1)', () => {
  it('exchanges the refresh token once, caches the access token, refreshes on expiry and on a 401, and never logs a token', async () => {
    const s = await setup();

    await s.send('m1');
    expect(s.oauth.hits).toHaveLength(1);
    const tokenRequest = s.oauth.hits[0]!;
    expect(tokenRequest.method).toBe('POST');
    expect(tokenRequest.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(String(tokenRequest.body)))).toEqual({
      grant_type: 'refresh_token',
      refresh_token: SECRETS.refreshToken,
      client_id: 'client-id.apps.googleusercontent.com',
      client_secret: SECRETS.clientSecret,
    });
    expect(s.uploads()).toHaveLength(1);
    const first = s.uploads()[0]!;
    expect(first.headers.authorization).toBe('Bearer ya29.access-TOKEN-1');
    expect(first.headers['developer-token']).toBe(SECRETS.developerToken);
    expect(first.headers['login-customer-id']).toBe('1112223334');
    expect(first.body).toEqual({
      partialFailure: true,
      conversions: [
        {
          gclid: 'Gclid-m1',
          conversionAction: `customers/${CUSTOMER}/conversionActions/987654321`,
          conversionDateTime: '2026-12-01 09:59:00+00:00',
          conversionValue: 42.5,
          currencyCode: 'EUR',
          orderId: 'm1',
          userIdentifiers: [{ hashedEmail: sha256('janedoe@gmail.com') }],
          consent: { adUserData: 'GRANTED', adPersonalization: 'GRANTED' },
        },
      ],
    });

    // Cached: a second request a while later needs no exchange.
    s.clock.advance(30 * 60_000);
    await s.send('m2');
    expect(s.oauth.hits).toHaveLength(1);
    expect(s.uploads().map(s.bearerOf)).toEqual(['Bearer ya29.access-TOKEN-1', 'Bearer ya29.access-TOKEN-1']);

    // expires_in 3599 s minus the 60 s margin: at 3539 s the token is renewed before it is used.
    s.clock.advance(3_539_000 - 30 * 60_000);
    await s.send('m3');
    expect(s.oauth.hits).toHaveLength(2);
    expect(s.bearerOf(s.uploads()[2]!)).toBe('Bearer ya29.access-TOKEN-2');

    // Google revokes the token early: the 401 drops it, one fresh token, the same request once more.
    s.valid.delete('ya29.access-TOKEN-2');
    await s.send('m4');
    expect(s.oauth.hits).toHaveLength(3);
    const last = s.uploads().slice(3);
    expect(last.map(s.bearerOf)).toEqual(['Bearer ya29.access-TOKEN-2', 'Bearer ya29.access-TOKEN-3']);
    expect(last.map((h) => (h.body as { conversions: { orderId: string }[] }).conversions[0]!.orderId)).toEqual(['m4', 'm4']);

    // Advertising denied: the policy drops it; Google sees nothing.
    await s.send('m5', false);
    expect(s.uploads()).toHaveLength(5);

    const metrics = await (await fetch(`${s.tw.url}/metrics`)).text();
    expect(metrics).toContain('tagwarden_deliveries_total{destination="gads",outcome="delivered"} 4');
    expect(metrics).not.toMatch(/destination="gads",outcome="failed"/);

    // Nothing secret in the log: no access token, refresh token, client secret or developer token.
    const log = s.log();
    expect(log.length).toBeGreaterThan(0);
    for (const secret of [...s.issued, 'access-TOKEN', SECRETS.refreshToken, SECRETS.clientSecret, SECRETS.developerToken]) expect(log).not.toContain(secret);
  });

  it('a token endpoint that refuses the refresh token: nothing reaches Google, the batch fails with TW_ERR_AUTH_REJECTED, no secret logged', async () => {
    const s = await setup(() => ({ status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: `Token has been expired or revoked: ${SECRETS.refreshToken}` }) }));
    await s.send('m1');
    expect(s.oauth.hits).toHaveLength(1);
    expect(s.uploads()).toHaveLength(0);
    const lines = s.log().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const failed = lines.find((l) => l.msg === 'delivery not completed' && l.destination === 'gads');
    expect(failed).toMatchObject({ outcome: 'failed', code: 'TW_ERR_AUTH_REJECTED', reason: 'auth_invalid_grant', attempt: 1 });
    for (const secret of [SECRETS.refreshToken, SECRETS.clientSecret, SECRETS.developerToken]) expect(s.log()).not.toContain(secret);
  });

  it('a token endpoint that is down: retried (TW_ERR_AUTH_RETRYABLE) and delivered once it answers', async () => {
    let down = true;
    let n = 0;
    const s = await setup(() => {
      if (down) return { status: 503, body: '' };
      n += 1;
      return { status: 200, body: JSON.stringify({ access_token: `ya29.later-${n}`, expires_in: 3599, token_type: 'Bearer' }) };
    });
    s.valid.add('ya29.later-1');
    expect((await post(`${s.tw.url}/v1/track`, { messageId: 'r1', event: 'purchase', anonymousId: 'a', context: { page: { url: 'https://shop.example/?gclid=G1' }, consent: { categoryPreferences: { advertising: true } } } })).status).toBe(200);
    const flushing = s.tw.app.flush(60_000);
    for (let i = 0; i < 200 && s.oauth.hits.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 30; i++) await new Promise<void>((r) => setImmediate(r));
    expect(s.uploads()).toHaveLength(0);
    down = false;
    // The retry waits on the delivery clock; its backoff is at most a few seconds.
    for (let i = 0; i < 100 && s.uploads().length === 0; i++) {
      s.clock.advance(1_000);
      for (let j = 0; j < 10; j++) await new Promise<void>((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 2));
    }
    await flushing;
    expect(s.uploads().map(s.bearerOf)).toEqual(['Bearer ya29.later-1']);
    const lines = s.log().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.msg === 'delivery retry scheduled' && l.destination === 'gads')).toMatchObject({ code: 'TW_ERR_AUTH_RETRYABLE', reason: 'auth_status_503' });
    expect(s.log()).not.toContain('ya29.later');
  });

  describe('partial failure: a 200 that lists failed rows (rowErrors)', () => {
    /**
     * Google's answer to uploadClickConversions with partialFailure: true when some rows failed: a
     * `partialFailureError` Status whose details hold a GoogleAdsFailure with one error per failed
     * row (its index in `location.fieldPathElements`), and an empty result for each failed row
     * (https://developers.google.com/google-ads/api/docs/best-practices/partial-failures).
     */
    const partialAnswer = (conversions: { orderId: string }[], failed: Record<string, string>) => {
      const errors = conversions.flatMap((c, index) =>
        failed[c.orderId] === undefined
          ? []
          : [{ errorCode: { conversionUploadError: failed[c.orderId] }, message: `The imported event failed (${c.orderId}).`, trigger: { stringValue: 'Gclid' }, location: { fieldPathElements: [{ fieldName: 'conversions', index }, { fieldName: 'gclid' }] } }],
      );
      return {
        status: 200,
        body: JSON.stringify({
          partialFailureError: { code: 3, message: 'Multiple errors in ‘details’.', details: [{ '@type': 'type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure', errors, requestId: 'req-1' }] },
          results: conversions.map((c) => (failed[c.orderId] === undefined ? { gclid: `Gclid-${c.orderId}`, conversionAction: `customers/${CUSTOMER}/conversionActions/987654321`, conversionDateTime: '2026-12-01 09:59:00+00:00' } : {})),
          jobId: '43',
        }),
      };
    };
    const lines = (log: string) => log.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const failures = { p2: 'UNPARSEABLE_GCLID', p3: 'TOO_RECENT_EVENT' };

    it('delivers the rows Google took and dead-letters the failed ones with their code; a TOO_RECENT row beyond the retry window too', async () => {
      const s = await setup(undefined, { answer: (c) => partialAnswer(c, failures) });
      await s.post('p1', 'p2', 'p3');
      await s.tw.app.flush(5_000);
      expect(s.uploads()).toHaveLength(1);
      expect((s.uploads()[0]!.body as { conversions: { orderId: string }[] }).conversions.map((c) => c.orderId)).toEqual(['p1', 'p2', 'p3']);

      const metrics = await (await fetch(`${s.tw.url}/metrics`)).text();
      expect(metrics).toContain('tagwarden_deliveries_total{destination="gads",outcome="delivered"} 1');
      expect(metrics).toContain('tagwarden_deliveries_total{destination="gads",outcome="failed"} 2');
      const notCompleted = lines(s.log()).filter((l) => l.msg === 'delivery not completed' && l.destination === 'gads');
      // The final code gives up at once; the transient one asks for 6 h, beyond the default 4 h window.
      expect(notCompleted).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ reason: 'row_rejected:UNPARSEABLE_GCLID', code: 'TW_ERR_DELIVERY_REJECTED', outcome: 'failed' }),
          expect.objectContaining({ reason: 'retry_after_beyond_deadline', code: 'TW_ERR_DELIVERY_RETRYABLE', outcome: 'failed' }),
        ]),
      );
      // Google's message text never reaches the log.
      expect(s.log()).not.toContain('The imported event failed');
    });

    it('retries only the TOO_RECENT row, after the 6 h Google asks for, when the retry window allows it', async () => {
      let answered = 0;
      const s = await setup(undefined, {
        delivery: { maxTotalMs: 8 * 3_600_000 },
        answer: (c) => (answered++ === 0 ? partialAnswer(c, failures) : { status: 200, body: JSON.stringify({ results: c.map(() => ({ gclid: 'x' })) }) }),
      });
      await s.post('p1', 'p2', 'p3');
      const flushing = s.tw.app.flush(9 * 3_600_000);
      for (let i = 0; i < 400 && s.uploads().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 30; i++) await new Promise<void>((r) => setImmediate(r));
      expect(s.uploads()).toHaveLength(1);
      // Nothing before the 6 h: the row waits on the delivery clock.
      s.clock.advance(6 * 3_600_000 - 1_000);
      for (let i = 0; i < 30; i++) await new Promise<void>((r) => setImmediate(r));
      expect(s.uploads()).toHaveLength(1);
      for (let i = 0; i < 200 && s.uploads().length === 1; i++) {
        s.clock.advance(60_000);
        for (let j = 0; j < 10; j++) await new Promise<void>((r) => setImmediate(r));
        await new Promise((r) => setTimeout(r, 2));
      }
      await flushing;
      expect(s.uploads()).toHaveLength(2);
      expect((s.uploads()[1]!.body as { conversions: { orderId: string }[] }).conversions.map((c) => c.orderId)).toEqual(['p3']);
      const metrics = await (await fetch(`${s.tw.url}/metrics`)).text();
      expect(metrics).toContain('tagwarden_deliveries_total{destination="gads",outcome="delivered"} 2');
      expect(metrics).toContain('tagwarden_deliveries_total{destination="gads",outcome="failed"} 1');
      expect(lines(s.log()).find((l) => l.msg === 'delivery retry scheduled' && l.destination === 'gads')).toMatchObject({ reason: 'row_transient', code: 'TW_ERR_DELIVERY_RETRYABLE' });
    });

    it('an answer it cannot read for certain (a row index outside the batch, a body that is not JSON) acknowledges no row', async () => {
      for (const body of [
        JSON.stringify({ partialFailureError: { code: 3, details: [{ errors: [{ errorCode: { conversionUploadError: 'UNPARSEABLE_GCLID' }, location: { fieldPathElements: [{ fieldName: 'conversions', index: 7 }] } }] }] } }),
        JSON.stringify({ partialFailureError: { code: 3, details: [{ errors: [{ errorCode: { conversionUploadError: 'UNPARSEABLE_GCLID' } }] }] } }),
        '<html>not json</html>',
      ]) {
        const s = await setup(undefined, { answer: () => ({ status: 200, body }) });
        await s.post('u1', 'u2');
        await s.tw.app.flush(5_000);
        const metrics = await (await fetch(`${s.tw.url}/metrics`)).text();
        expect(metrics).not.toMatch(/destination="gads",outcome="delivered"/);
        expect(metrics).toContain('tagwarden_deliveries_total{destination="gads",outcome="failed"} 2');
        expect(lines(s.log()).find((l) => l.msg === 'delivery not completed' && l.destination === 'gads')).toMatchObject({ reason: 'status_200_rejected', code: 'TW_ERR_DELIVERY_REJECTED' });
        await s.tw.close();
      }
    });
  });
});
