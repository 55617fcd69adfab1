import { expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { consentApiHarness } from './consent-api-harness.ts';
import { forEachEngine } from './engines.ts';
import { encodeWithLibrary } from './fixtures/tcf/build.ts';

/**
 * Nothing a client sends can make the consent store lie (issue 13), the same on SQLite and on
 * PostgreSQL: consent times bounded by the server's clock plus site.consentClockSkewMs (zone-less
 * ISO, far future, microseconds refused), one id rule for every route (NUL, control characters,
 * lone surrogates, > 256 characters: 400 naming the field, or a row error), a CSV import that keeps
 * the good rows of a chunk and never turns bytes into U+FFFD, and pushed TC strings that decode.
 */

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const CSV_HEADER = 'action,category,valid_until,timestamp,customer_id';

forEachEngine('consent input validation', (engine) => {
  const ctx = consentApiHarness(engine, { site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {}, analytics: {} } } }, { deps: { consentClock: new FakeClock(NOW), webhooks: false } });
  const { call } = ctx;
  const paths = (r: { body: any }): string[] => (r.body?.error?.details?.issues ?? []).map((i: { path: string }) => i.path);
  const check = async (type: string, id: string, category = 'analytics') => (await call('GET', `/api/v1/subjects/${type}/${encodeURIComponent(id)}/check?category=${category}`, ctx.reader)).body;

  it('a future push is a 400 naming timestamp; a later valid revocation after the refused 2099 grant applies', async () => {
    const grant = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'future-v', categories: { analytics: true }, timestamp: '2099-01-01T00:00:00Z' });
    expect(grant.status).toBe(400);
    expect(grant.body.error.code).toBe('TW_ERR_VALIDATION');
    expect(paths(grant)).toEqual(['timestamp']);
    for (const timestamp of [99999999999, NOW * 1000, '99999999999', NOW + 5 * 60_000 + 1, '2026-12-01T00:00:00']) {
      const r = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'future-v', categories: { analytics: true }, timestamp });
      expect(r.status, String(timestamp)).toBe(400);
      expect(paths(r)).toEqual(['timestamp']);
    }
    // Within the skew is fine (a client clock a little fast).
    const skewed = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'future-v', categories: { analytics: true }, timestamp: NOW + 60_000 });
    expect(skewed.body.items[0]).toMatchObject({ applied: true });
    const revoke = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'future-v', categories: { analytics: false }, timestamp: new Date(NOW + 120_000).toISOString() });
    expect(revoke.status).toBe(200);
    expect(revoke.body.items[0]).toMatchObject({ applied: true });
    expect(await check('visitor', 'future-v')).toMatchObject({ consented: false, state: 'denied' });
    // validUntil: bounded, so microseconds are refused there too.
    const until = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'future-v', categories: { analytics: true }, validUntil: NOW * 1000 });
    expect(paths(until)).toEqual(['validUntil']);
  });

  it('Bloomreach events: a refused time is reported and not stored (a single event: 400), never dated now', async () => {
    const single = await call('POST', '/api/v1/consent/events', ctx.writer, { customer_ids: { registered: 'ev-1' }, event_type: 'consent', timestamp: 4_070_908_800, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited' } });
    expect(single.status).toBe(400);
    expect(paths(single)).toEqual(['timestamp']);
    const batch = await call('POST', '/api/v1/consent/events', ctx.writer, {
      events: [
        { customer_ids: { registered: 'ev-1' }, timestamp: 1528114618, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited' } },
        { customer_ids: { registered: 'ev-1' }, timestamp: 1_528_114_700_000_000, properties: { action: 'reject', category: 'newsletter' } },
        { customer_ids: { registered: 'ev-1' }, properties: { action: 'reject', category: 'newsletter' } },
        { customer_ids: { registered: 'ev-1' }, timestamp: '2018-06-04T12:00:00', properties: { action: 'reject', category: 'newsletter' } },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.events.map((e: { stored: boolean }) => e.stored)).toEqual([true, false, false, false]);
    expect(batch.body.events[2].problems).toEqual(['timestamp: required']);
    // The missing-time reject was not dated now: an older grant sent afterwards still decides.
    expect(await check('user', 'ev-1', 'newsletter')).toMatchObject({ consented: true });
    const audit = await call('GET', '/api/v1/audit?subject=user:ev-1', ctx.auditor);
    expect(audit.body.entries).toHaveLength(1);
  });

  it('NUL and other unstorable ids: 400 naming the field on every route, alike on both engines', async () => {
    const nul = 'a\u0000b';
    for (const [field, id] of [['visitorId', nul], ['userId', 'c1\u0085'], ['customUserId', nul], ['visitorId', 'x'.repeat(257)]] as const) {
      const r = await call('POST', '/api/v1/consent', ctx.writer, { [field]: id, categories: { analytics: true } });
      expect(r.status, field).toBe(400);
      expect(paths(r)).toEqual([field]);
    }
    // A lone surrogate arrives as a JSON escape.
    const lone = await call('POST', '/api/v1/consent', ctx.writer, '{"visitorId":"a\\ud800","categories":{"analytics":true}}');
    expect(lone.status).toBe(400);
    expect(paths(lone)).toEqual(['visitorId']);
    const reference = await call('POST', '/api/v1/consent', ctx.writer, { userId: 'ok-user', reference: `r${nul}`, consentGiven: 'All' });
    expect(paths(reference)).toEqual(['reference']);

    const event = await call('POST', '/api/v1/consent/events', ctx.writer, { customer_ids: { registered: nul }, timestamp: 1528114618, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited' } });
    expect(event.status).toBe(400);
    expect(paths(event)).toEqual(['customer_ids.registered']);
    const events = await call('POST', '/api/v1/consent/events', ctx.writer, [
      { customer_id: nul, action: 'reject', category: 'newsletter', timestamp: 1528114618 },
      { customer_id: 'nul-neighbour', action: 'reject', category: 'newsletter', timestamp: 1528114618 },
    ]);
    expect(events.status).toBe(200);
    expect(events.body.events[0]).toMatchObject({ stored: false, problems: [expect.stringMatching(/^customer_id: no control characters/)] });
    expect(events.body.events[1]).toMatchObject({ stored: true, applied: true });
    // The email a registered customer is linked to follows the same rule.
    const linked = await call('POST', '/api/v1/consent/events', ctx.writer, [{ customer_ids: { registered: 'nul-linked', email: `ann${nul}@example.com` }, event_type: 'consent', timestamp: 1528114618, properties: { action: 'reject', category: 'newsletter' } }]);
    expect(linked.body.events[0]).toMatchObject({ stored: false, problems: [expect.stringMatching(/^customer_ids\.email: no control characters/)] });

    // An encoded NUL in the path is refused before routing (src/proxy/host-guard.ts), as a 400 too.
    for (const path of ['/api/v1/subjects/visitor/a%00b', '/api/v1/subjects/user/a%00b/check?category=analytics']) {
      const r = await call('GET', path, ctx.reader);
      expect(r.status, path).toBe(400);
      expect(r.body.error.code).toBe('TW_ERR_VALIDATION');
    }
    for (const path of ['/api/v1/subjects/user/a%C2%85b', `/api/v1/subjects/visitor/${'x'.repeat(257)}/check?category=analytics`]) {
      const r = await call('GET', path, ctx.reader);
      expect(r.status, path).toBe(400);
      expect(paths(r), path).toEqual(['id']);
    }
    for (const [path, field] of [['/api/v1/audit?subject=user:a%00b', 'subject'], ['/api/v1/audit/export?subject=visitor:a%00b', 'subject'], ['/api/v1/audit?source=a%00b', 'source'], ['/api/v1/audit?category=a%00b', 'category']] as const) {
      const r = await call('GET', path, ctx.auditor);
      expect(r.status, path).toBe(400);
      expect(paths(r), path).toEqual([field]);
    }
    // verify answers an id that could never be stored as the seed answers an invalid visitor id
    // (cookieboss-consent-verification-api.txt: "if the visitor ID is invalid": no consent found).
    const verify = await call('GET', '/api/v1/public/sites/shop/consent/verify?visitor_id=a%00b', ctx.reader);
    expect(verify).toEqual({ status: 200, body: { hasConsent: false, categories: null, consentedAt: null, geoCountry: null } });
  });

  it('a CSV import with one NUL row keeps the good rows of the chunk and reports the bad one', async () => {
    const file = `${CSV_HEADER}\naccept,analytics,unlimited,1700000000,csv-good-1\naccept,analytics,unlimited,1700000000,csv-\u0000bad\naccept,analytics,unlimited,1700000000,csv-good-2\n`;
    const r = await call('POST', '/api/v1/consent/import', ctx.writer, file, 'text/csv');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ rows: 3, stored: 2, applied: 2, errors: [{ row: 3, error: expect.stringMatching(/^customer_id: no control characters \(U\+0000/), stored: false }] });
    expect(await check('user', 'csv-good-1')).toMatchObject({ consented: true });
    expect(await check('user', 'csv-good-2')).toMatchObject({ consented: true });
  });

  it('a blank, zone-less or future timestamp in a CSV row is a row error, never dated at import time', async () => {
    const file = [
      CSV_HEADER,
      'accept,analytics,unlimited,1600000000,csv-time',
      'reject,analytics,,,csv-time',
      'reject,analytics,,2026-11-01T00:00:00,csv-time',
      'reject,analytics,,4102444800,csv-time',
      'reject,analytics,,1700000000000000,csv-time',
      'accept,analytics,1600000000000000,1600000001,csv-time',
    ].join('\n');
    const r = await call('POST', '/api/v1/consent/import', ctx.writer, file, 'text/csv');
    expect(r.status).toBe(200);
    expect(r.body.stored).toBe(2);
    expect(r.body.errors).toEqual([
      { row: 3, error: 'timestamp: required', stored: false },
      { row: 4, error: expect.stringContaining('timestamp: unix seconds, milliseconds or ISO 8601 with a zone'), stored: false },
      { row: 5, error: expect.stringMatching(/^timestamp: in the future/), stored: false },
      { row: 6, error: expect.stringContaining('timestamp: unix seconds'), stored: false },
      // valid_until beyond the year 9999: the row is stored invalid and revokes, as the seed says.
      { row: 7, error: expect.stringContaining('valid_until'), stored: true },
    ]);
    // An older grant sent afterwards: the blank-time reject did not outrank it.
    await call('POST', '/api/v1/consent/import', ctx.writer, `${CSV_HEADER}\naccept,analytics,unlimited,1650000000,csv-time\n`, 'text/csv');
    expect(await check('user', 'csv-time')).toMatchObject({ consented: true, since: new Date(1_650_000_000_000).toISOString() });
  });

  it('Latin-1 bytes without a declared charset: 400, never U+FFFD; declared iso-8859-1 or windows-1252: the right names', async () => {
    const latin1 = Buffer.from(`${CSV_HEADER}\naccept,analytics,unlimited,1700000000,Jos\xe9\naccept,analytics,unlimited,1700000000,Ren\xe9e\n`, 'latin1');
    const refused = await call('POST', '/api/v1/consent/import', ctx.writer, latin1, 'text/csv');
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'TW_ERR_VALIDATION', message: expect.stringContaining('not UTF-8'), details: { rows: 0, stored: 0 } });
    expect((await call('GET', `/api/v1/subjects/user/${encodeURIComponent('Jos\ufffd')}`, ctx.reader)).status).toBe(404);
    const declared = await call('POST', '/api/v1/consent/import', ctx.writer, latin1, 'text/csv; charset=ISO-8859-1');
    expect(declared.status).toBe(200);
    expect(declared.body).toMatchObject({ rows: 2, stored: 2, errors: [] });
    expect(await check('user', 'José')).toMatchObject({ consented: true });
    expect(await check('user', 'Renée')).toMatchObject({ consented: true });
    const cp1252 = Buffer.from([...Buffer.from(`${CSV_HEADER}\naccept,analytics,unlimited,1700000000,price`), 0x80, 0x0a]);
    expect((await call('POST', '/api/v1/consent/import', ctx.writer, cp1252, 'text/csv; charset="windows-1252"')).body).toMatchObject({ stored: 1 });
    expect(await check('user', 'price€')).toMatchObject({ consented: true });
    // ISO-8859-1 has no €: byte 0x80 is a C1 control there, refused by the id rule.
    expect((await call('POST', '/api/v1/consent/import', ctx.writer, cp1252, 'text/csv; charset=latin1')).body.errors).toEqual([{ row: 2, error: expect.stringContaining('U+0080'), stored: false }]);
    expect((await call('POST', '/api/v1/consent/import', ctx.writer, latin1, 'text/csv; charset=utf-16')).status).toBe(415);
    // A UTF-8 BOM is fine.
    expect((await call('POST', '/api/v1/consent/import', ctx.writer, `\ufeff${CSV_HEADER}\naccept,analytics,unlimited,1700000000,bom-user\n`, 'text/csv')).body).toMatchObject({ stored: 1 });
  });

  it('bytes that stop being UTF-8 mid-file: the rows before are imported and counted, the answer is 400', async () => {
    const file = Buffer.concat([Buffer.from(`${CSV_HEADER}\naccept,analytics,unlimited,1700000000,before-bad\n`), Buffer.from('accept,analytics,unlimited,1700000000,bad\xff\n', 'latin1'), Buffer.from('accept,analytics,unlimited,1700000000,after-bad\n')]);
    const r = await call('POST', '/api/v1/consent/import', ctx.writer, file, 'text/csv');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^row 3: not UTF-8: byte 0xFF/);
    expect(r.body.error.details).toMatchObject({ rows: 1, stored: 1, encodingError: { row: 3 } });
    expect(await check('user', 'before-bad')).toMatchObject({ consented: true });
    expect((await call('GET', '/api/v1/subjects/user/after-bad', ctx.reader)).status).toBe(404);
  });

  it('a bad byte early in a large file: the client still gets the 400 (the rest is not read)', async () => {
    const rest = Buffer.from(`accept,analytics,unlimited,1700000000,bulk\n`.repeat(100_000));
    const file = Buffer.concat([Buffer.from(`${CSV_HEADER}\naccept,analytics,unlimited,1700000000,early\xff\n`, 'latin1'), rest]);
    const r = await call('POST', '/api/v1/consent/import', ctx.writer, file, 'text/csv');
    expect(r.status).toBe(400);
    expect(r.body.error.details).toMatchObject({ rows: 0, stored: 0, encodingError: { row: 2 } });
  });

  it('a garbage tcfString or consent.privacy.tcfConsentString is a 400 naming it; a real one is stored', async () => {
    const garbage = await call('POST', '/api/v1/consent', ctx.writer, { userId: 'tcf-user', tcfString: 'CQgarbage!' });
    expect(garbage.status).toBe(400);
    expect(paths(garbage)).toEqual(['tcfString']);
    const seeka = await call('POST', '/api/v1/consent', ctx.writer, { userId: 'tcf-user', consent: { privacy: { tcfConsentString: 'not-a-tc-string' } } });
    expect(paths(seeka)).toEqual(['consent.privacy.tcfConsentString']);
    const tc = encodeWithLibrary({ lastUpdated: new Date(Date.UTC(2026, 10, 20)), purposeConsents: [1, 8] });
    expect((await call('POST', '/api/v1/consent', ctx.writer, { userId: 'tcf-user', consent: { privacy: { tcfConsentString: tc } } })).status).toBe(200);
    expect((await call('GET', '/api/v1/subjects/user/tcf-user', ctx.reader)).body).toMatchObject({ tcfString: tc });
  });
});
