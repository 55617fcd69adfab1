import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { consentApiHarness } from './consent-api-harness.ts';
import { forEachEngine } from './engines.ts';

/**
 * Bloomreach's consent events as seed bloomreach-tracking-consent.txt describes them, on SQLite and
 * on PostgreSQL: the seed's example event and example CSV verbatim, only `event_type: consent`, the
 * evidence (seed attributes, email, custom attributes, customer_ids) in the audit record, the
 * seed's source values, and `customer_ids.email` as the customer.
 */

// The seed's "Example of a valid consent event", character for character. Its `//` remarks are the
// documentation's annotations, not JSON (no JSON parser takes them): they are stripped before sending.
const SEED_EVENT = `{
"customer_ids": {
"registered": "user12345" // choose which IDs to use for identification
},
"event_type": "consent",
"timestamp": 1528114618,
"properties": {
"action": "accept",
"category": "weekly_newsletters_from_web",
"valid_until": "unlimited",
"message": "This consent was tracked from landing page" // additional attribute
}
}`;

// The seed's "Example CSV import", character for character (its address is the seed's own text).
const SEED_CSV = `action,category,valid_until,timestamp,customer_id
reject,weekly_newsletter,unlimited,1522158555,[email protected]
accept,weekly_newsletter,unlimited,1522156555,[email protected]
accept,push_notification,1522112345,1522152855,[email protected]
`;

const SEED_SOURCES = ['crm', 'import', 'list_unsubscribe', 'page', 'public_api', 'private_api', 'scenario'];

forEachEngine('Bloomreach consent events', (engine) => {
  const ctx = consentApiHarness(engine, { site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } } });
  const { call } = ctx;
  const send = (body: unknown) => call('POST', '/api/v1/consent/events', ctx.writer, typeof body === 'string' ? body : JSON.stringify(body));
  const audit = async (subject: string) => (await call('GET', `/api/v1/audit?subject=${encodeURIComponent(subject)}`, ctx.auditor)).body.entries as any[];
  const check = async (type: string, id: string, category: string) => (await call('GET', `/api/v1/subjects/${type}/${encodeURIComponent(id)}/check?category=${category}`, ctx.reader)).body;

  it("the seed's example event is stored valid, with its message and customer_ids kept in the audit attributes", async () => {
    const body = SEED_EVENT.replace(/ *\/\/[^\n]*/g, '');
    const r = await send(body);
    expect(r.status).toBe(200);
    expect(r.body.events).toEqual([expect.objectContaining({ index: 0, stored: true, valid: true, applied: true })]);
    expect(await check('user', 'user12345', 'weekly_newsletters_from_web')).toMatchObject({ consented: true, state: 'granted' });
    const [entry, ...rest] = await audit('user:user12345');
    expect(rest).toEqual([]);
    expect(entry).toMatchObject({ action: 'accept', item: 'weekly_newsletters_from_web', valid: true, source: 'private_api', message: 'This consent was tracked from landing page', validUntil: 'unlimited' });
    expect(entry.attributes).toEqual({
      action: 'accept',
      category: 'weekly_newsletters_from_web',
      timestamp: 1528114618,
      valid_until: 'unlimited',
      message: 'This consent was tracked from landing page',
      source: 'private_api',
      imported_timestamp: expect.any(Number),
      customer_ids: { registered: 'user12345' },
    });
    // The payload hash covers the whole event, its customer_ids and event_type included.
    expect(entry.payloadHash).toBe(createHash('sha256').update(JSON.stringify(JSON.parse(body))).digest('hex'));
    // Ours: the time Tagwarden received it, in the seed's unix seconds.
    expect(Math.abs(entry.attributes.imported_timestamp - Date.parse(entry.importedAt) / 1000)).toBeLessThan(5);
    expect((await call('GET', '/api/v1/audit/verify', ctx.auditor)).body).toMatchObject({ ok: true });
  });

  it("the seed's example CSV: the later reject beats the earlier accept, the expired accept reads denied", async () => {
    const r = await call('POST', '/api/v1/consent/import', ctx.writer, SEED_CSV, 'text/csv');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ rows: 3, stored: 3, invalid: 0, errors: [] });
    const customer = '[email protected]';
    expect(await check('user', customer, 'weekly_newsletter')).toMatchObject({ consented: false, state: 'denied' });
    expect(await check('user', customer, 'push_notification')).toMatchObject({ consented: false, state: 'denied', expired: true });
    const record = (await call('GET', `/api/v1/subjects/user/${encodeURIComponent(customer)}`, ctx.reader)).body;
    expect(record.items.weekly_newsletter).toMatchObject({ status: 'denied', consentAt: 1522158555_000 });
    // Accepted, but valid only until 1522112345 (before its own timestamp, long past): it reads denied.
    expect(record.items.push_notification).toMatchObject({ status: 'denied', expired: true, validUntil: 1522112345_000 });
    const entries = await audit(`user:${customer}`);
    expect(entries).toHaveLength(3);
    for (const e of entries) expect(e).toMatchObject({ source: 'import', valid: true, attributes: { source: 'import', imported_timestamp: expect.any(Number) } });
    expect(entries.map((e) => e.attributes.timestamp).sort()).toEqual(['1522152855', '1522156555', '1522158555']);
    expect(entries.find((e) => e.item === 'push_notification')).toMatchObject({ action: 'accept', applied: true, attributes: { valid_until: '1522112345' } });
    expect(entries.filter((e) => e.item === 'weekly_newsletter').map((e) => [e.action, e.applied])).toEqual(expect.arrayContaining([['reject', true], ['accept', false]]));
  });

  it('a CSV file\'s further columns (message, email, custom) are each row\'s evidence', async () => {
    const csv = 'action,category,valid_until,timestamp,customer_id,message,email,campaign\naccept,weekly_newsletter,unlimited,1522156555,u-csv-extra,"Do you agree to...?",u@example.com,spring\n';
    const r = await call('POST', '/api/v1/consent/import', ctx.writer, csv, 'text/csv');
    expect(r.body).toMatchObject({ rows: 1, stored: 1, invalid: 0, errors: [] });
    const [entry] = await audit('user:u-csv-extra');
    expect(entry).toMatchObject({ message: 'Do you agree to...?', attributes: { message: 'Do you agree to...?', email: 'u@example.com', custom: { campaign: 'spring' }, source: 'import' } });
  });

  it('only event_type consent: another type is a 400 alone, and only that event refused in a batch', async () => {
    const other = { customer_ids: { registered: 'u-type' }, event_type: 'double_opt_in', timestamp: 1528114618, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited' } };
    const alone = await send(other);
    expect(alone.status).toBe(400);
    expect(alone.body.error).toMatchObject({ code: 'TW_ERR_VALIDATION', message: expect.stringContaining('event_type: must be consent') });
    const batch = await send({ events: [other, { ...other, event_type: 'consent' }, { ...other, event_type: null }] });
    expect(batch.status).toBe(200);
    expect(batch.body.events).toEqual([
      { index: 0, stored: false, problems: [expect.stringContaining('event_type: must be consent')] },
      expect.objectContaining({ index: 1, stored: true, valid: true }),
      { index: 2, stored: false, problems: [expect.stringContaining('event_type: must be consent')] },
    ]);
    expect(await audit('user:u-type')).toHaveLength(1);
    // Tagwarden's flat shape names no event type: still a consent event.
    const flat = await send({ customer_id: 'u-flat', action: 'accept', category: 'newsletter', timestamp: 1528114618, valid_until: 'unlimited' });
    expect(flat.body.events[0]).toMatchObject({ stored: true, valid: true });
  });

  it('keeps email, every seed attribute and custom attributes; imported_timestamp is ours', async () => {
    const r = await send({
      customer_ids: { registered: 'u-evidence', cookie: 'dab8a3d0d868126' },
      event_type: 'consent',
      timestamp: 1528114618,
      properties: {
        action: 'accept',
        category: 'newsletter',
        valid_until: 1900000000,
        email: 'ann@example.com',
        identification: 'dab8a3d0d868126',
        identification_type: 'cookie',
        imported_timestamp: 1522071973,
        message: 'Do you agree to...?',
        source: 'page',
        form: { id: 'signup', fields: ['email', 'name'] },
        campaign: 'spring',
      },
    });
    expect(r.body.events[0]).toMatchObject({ stored: true, valid: true });
    const [entry] = await audit('user:u-evidence');
    expect(entry).toMatchObject({ source: 'page', identification: 'dab8a3d0d868126', identificationType: 'cookie', message: 'Do you agree to...?' });
    expect(entry.attributes).toEqual({
      action: 'accept',
      category: 'newsletter',
      timestamp: 1528114618,
      valid_until: 1900000000,
      email: 'ann@example.com',
      identification: 'dab8a3d0d868126',
      identification_type: 'cookie',
      imported_timestamp: expect.any(Number),
      imported_timestamp_sent: 1522071973,
      message: 'Do you agree to...?',
      source: 'page',
      customer_ids: { registered: 'u-evidence', cookie: 'dab8a3d0d868126' },
      custom: { campaign: 'spring', form: { fields: ['email', 'name'], id: 'signup' } },
    });
    expect(entry.attributes.imported_timestamp).toBeGreaterThan(1522071973);
  });

  it('evidence beyond the bounds is the event’s problem: stored invalid, it revokes', async () => {
    const grant = { customer_ids: { registered: 'u-bounds' }, event_type: 'consent', timestamp: 1528114618, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited' } };
    await send(grant);
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`attr${i}`, i]));
    const r = await send({ events: [{ ...grant, timestamp: 1528114700, properties: { ...grant.properties, ...tooMany } }] });
    expect(r.status).toBe(200);
    expect(r.body.events[0]).toMatchObject({ stored: true, valid: false, revoked: true, applied: true, problems: [expect.stringContaining('at most 64 custom attributes')] });
    expect(await check('user', 'u-bounds', 'newsletter')).toMatchObject({ consented: false });
    const entries = await audit('user:u-bounds');
    expect(entries[entries.length - 1].attributes).not.toHaveProperty('custom');
  });

  it.each(SEED_SOURCES)('source %s is accepted', async (source) => {
    const r = await send({ customer_ids: { registered: `u-src-${source}` }, event_type: 'consent', timestamp: 1528114618, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited', source } });
    expect(r.body.events[0]).toMatchObject({ stored: true, valid: true });
    expect((await audit(`user:u-src-${source}`))[0]).toMatchObject({ source });
  });

  it('another source is an invalid event: stored, it revokes, the value kept as evidence only', async () => {
    const grant = { customer_ids: { registered: 'u-badsrc' }, event_type: 'consent', timestamp: 1528114618, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited' } };
    await send(grant);
    expect(await check('user', 'u-badsrc', 'newsletter')).toMatchObject({ consented: true });
    const r = await send({ ...grant, timestamp: 1528114700, properties: { ...grant.properties, source: 'website' } });
    expect(r.body.events[0]).toMatchObject({ stored: true, valid: false, revoked: true, problems: [expect.stringContaining('source: one of crm, import, list_unsubscribe')] });
    expect(await check('user', 'u-badsrc', 'newsletter')).toMatchObject({ consented: false });
    const entries = await audit('user:u-badsrc');
    expect(entries[1]).toMatchObject({ valid: false, source: 'private_api', attributes: { source: 'website' } });
  });

  it('customer_ids.email identifies the customer (trimmed, lowercased) and is linked to a registered id', async () => {
    const byEmail = await send({ customer_ids: { email: '  Ann.Lee@Example.COM ' }, event_type: 'consent', timestamp: 1528114618, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited' } });
    expect(byEmail.body.events[0]).toMatchObject({ stored: true, valid: true });
    expect(await check('user', 'ann.lee@example.com', 'newsletter')).toMatchObject({ consented: true });
    expect((await audit('user:ann.lee@example.com'))[0].attributes.customer_ids).toEqual({ email: '  Ann.Lee@Example.COM ' });
    // Both ids: the registered id is the subject, the email's user is linked to it.
    await send({ customer_ids: { registered: 'u-ann', email: 'ann.lee@example.com' }, event_type: 'consent', timestamp: 1528114700, properties: { action: 'reject', category: 'newsletter' } });
    expect(await check('user', 'u-ann', 'newsletter')).toMatchObject({ consented: false });
    expect(await check('user', 'ann.lee@example.com', 'newsletter')).toMatchObject({ consented: false });
    const record = (await call('GET', '/api/v1/subjects/user/u-ann', ctx.reader)).body;
    expect(record.linked).toEqual(expect.arrayContaining([{ type: 'user', id: 'u-ann' }, { type: 'user', id: 'ann.lee@example.com' }]));
    expect((await audit('user:u-ann'))[0].attributes.customer_ids).toEqual({ registered: 'u-ann', email: 'ann.lee@example.com' });
  });
});
