import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSubscription } from '../src/api/webhook-subscriptions.ts';
import { EXIT_FAILED, EXIT_OK, runCli } from '../src/cli.ts';
import { appendAudit, verifyAuditChain, verifyAuditState, type AuditVerdict } from '../src/store/audit.ts';
import { createConsentStore } from '../src/store/consent.ts';
import { sweepExpired } from '../src/store/expiry.ts';
import type { Db } from '../src/store/db.ts';
import { migrate } from '../src/store/migrations.ts';
import { openDb } from '../src/store/open.ts';
import type { ConsentInput, RecordPatch, SubjectRef } from '../src/store/types.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { consentApiHarness } from './consent-api-harness.ts';
import { forEachEngine } from './engines.ts';

/**
 * The audit trail proves the state, not just itself (issue 13): `audit verify` replays the log
 * (src/store/replay.ts) and compares it with consent_items, consent_records and the profile
 * partition of subjects. Shown on both engines: an untouched store verifies after every kind of
 * write; a direct edit of each state table, or of the log, is caught by the API and by the CLI;
 * invalid Bloomreach events can be expired, restoring the previous grant; links made before
 * migration 6 are backfilled; and for random sequences of writes the replay equals the store.
 */
forEachEngine('audit state', (engine) => {
  let url: string;
  let dir: string | undefined;
  const ctx = consentApiHarness(
    engine,
    { site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {}, advertising: {} } } },
    {
      // No webhook worker: the deliveries a change enqueues stay in the table, where the test reads them.
      deps: { webhooks: false },
      open: async () => {
        if (engine.name === 'sqlite') {
          // The CLI opens its own connection: a file both can see, not :memory:.
          dir = mkdtempSync(join(tmpdir(), 'tw-audit-state-'));
          url = `sqlite:${join(dir, 'tw.db')}`;
          return openDb(url);
        }
        const db = await engine.open();
        url = engine.url();
        return db;
      },
      afterClose: () => {
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      },
    },
  );
  const { call } = ctx;

  beforeAll(async () => {
    await createSubscription(ctx.db, { siteId: 'shop', url: 'http://127.0.0.1:9/hook', filters: {} }, { guard: { allowHosts: ['127.0.0.1'] } });
  });

  const verifyApi = async (): Promise<AuditVerdict> => (await call('GET', '/api/v1/audit/verify', ctx.auditor)).body as AuditVerdict;
  async function verifyCli(): Promise<{ code: number; verdict: AuditVerdict }> {
    let stdout = '';
    const code = await runCli(['audit', 'verify', '--store', url, '--json'], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: () => undefined }, env: {} });
    return { code, verdict: JSON.parse(stdout) as AuditVerdict };
  }
  /** The same verdict from the API and from the CLI. */
  async function verifyBoth(): Promise<AuditVerdict> {
    const api = await verifyApi();
    const cli = await verifyCli();
    expect(cli.verdict).toEqual(api);
    expect(cli.code).toBe(api.ok ? EXIT_OK : EXIT_FAILED);
    return api;
  }

  // The seed's example event (bloomreach-tracking-consent.txt), its `//` comments removed (JSON has none).
  const seedEvent = {
    customer_ids: { registered: 'user12345' },
    event_type: 'consent',
    timestamp: 1528114618,
    properties: { action: 'accept', category: 'weekly_newsletters_from_web', valid_until: 'unlimited', message: 'This consent was tracked from landing page' },
  };
  const seedCsv = 'action,category,valid_until,timestamp,customer_id\nreject,weekly_newsletter,unlimited,1522158555,[email protected]\naccept,weekly_newsletter,unlimited,1522156555,[email protected]\naccept,push_notification,1522112345,1522152855,[email protected]\n';

  it('an untouched store verifies after pushes, events, CSV imports, links and expiries', async () => {
    expect(await verifyBoth()).toMatchObject({ ok: true });
    const push = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'v1', userId: 'u1', categories: { analytics: true, advertising: false }, timestamp: '2026-01-10T00:00:00Z', geoCountry: 'DE' });
    expect(push.status).toBe(200);
    await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'v2', categories: { analytics: false }, timestamp: '2026-02-01T00:00:00Z' });
    await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'v2', categories: { analytics: true }, timestamp: '2026-01-01T00:00:00Z' });
    await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'v3', userId: 'u1', categories: { advertising: true }, timestamp: '2026-03-01T00:00:00Z' });
    expect((await call('POST', '/api/v1/consent/events', ctx.writer, seedEvent)).body.events[0]).toMatchObject({ stored: true, valid: true });
    expect((await call('POST', '/api/v1/consent/import', ctx.writer, seedCsv, 'text/csv')).body).toMatchObject({ rows: 3, stored: 3 });
    expect((await call('POST', '/api/v1/consent/import', ctx.writer, seedCsv, 'text/csv')).body).toMatchObject({ duplicates: 3 });
    // Links outside inputs (what a hit carrying a user id does), including a refused one.
    const direct = createConsentStore(ctx.db);
    expect(await direct.link('shop', { type: 'user', id: 'u9' }, { type: 'visitor', id: 'v9' })).toBe('linked');
    expect(await direct.link('shop', { type: 'user', id: 'u8' }, { type: 'visitor', id: 'v9' })).toBe('refused');
    expect(await direct.link('shop', { type: 'user', id: 'u9' }, { type: 'visitor', id: 'v9' })).toBe('already');
    expect(await direct.link('shop', { type: 'user', id: 'u7' }, { type: 'user', id: 'u7' })).toBe('already');
    const links = await ctx.db.all<{ subject_key: string; message: string }>("SELECT subject_key, message FROM audit_log WHERE action = 'link' AND source = 'link' ORDER BY seq");
    expect(links).toEqual([
      { subject_key: 'user:u9', message: 'visitor:v9' },
      { subject_key: 'user:u8', message: 'user:u8' },
      { subject_key: 'user:u7', message: 'user:u7' },
    ]);
    const bad = await call('POST', '/api/v1/consent/events', ctx.writer, { customer_ids: { registered: 'user12345' }, event_type: 'consent', timestamp: 1528114700, properties: { action: 'accpt', category: 'weekly_newsletters_from_web', valid_until: 'unlimited' } });
    expect(bad.body.events[0]).toMatchObject({ valid: false, revoked: true });
    // A grant whose valid_until passes: the expiry sweep (src/store/expiry.ts) marks it with an
    // `expired` row, which changes no state.
    const nowSec = Math.floor(Date.now() / 1000);
    await call('POST', '/api/v1/consent/events', ctx.writer, { customer_ids: { registered: 'u-sweep' }, event_type: 'consent', timestamp: nowSec - 10, properties: { action: 'accept', category: 'analytics', valid_until: nowSec + 1 } });
    const swept = await sweepExpired(ctx.db, { now: (nowSec + 60) * 1000, limit: 100 });
    expect(swept.expired.map((e) => e.subject.id)).toContain('u-sweep');
    expect(await ctx.db.get("SELECT seq FROM audit_log WHERE action = 'expired' AND subject_key = 'user:u-sweep'")).toBeDefined();
    expect(await verifyBoth()).toMatchObject({ ok: true });
    const invalid = await call('GET', '/api/v1/audit?valid=false&subject=user:user12345', ctx.auditor);
    expect((await call('POST', '/api/v1/consent/events/expire', ctx.writer, { seqs: [invalid.body.entries[0].seq] })).status).toBe(200);
    const verdict = await verifyBoth();
    expect(verdict).toMatchObject({ ok: true });
    expect(verdict.rows).toBe(Number((await ctx.db.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM audit_log'))!.n));
  });

  it('expire: an invalid Bloomreach event revokes; expiring it restores the previous grant, audited, announced, once', async () => {
    const check = async () => (await call('GET', '/api/v1/subjects/user/user-exp/check?category=weekly_newsletters_from_web', ctx.reader)).body;
    const grant = { ...seedEvent, customer_ids: { registered: 'user-exp' } };
    expect((await call('POST', '/api/v1/consent/events', ctx.writer, grant)).body.events[0]).toMatchObject({ valid: true, applied: true });
    expect(await check()).toMatchObject({ consented: true, state: 'granted' });
    // The seed's "unrecognized action value": stored, invalid, and it revokes.
    const invalid = { customer_ids: { registered: 'user-exp' }, event_type: 'consent', timestamp: 1528114700, properties: { action: 'acept', category: 'weekly_newsletters_from_web', valid_until: 'unlimited' } };
    expect((await call('POST', '/api/v1/consent/events', ctx.writer, invalid)).body.events[0]).toMatchObject({ valid: false, revoked: true, applied: true });
    expect(await check()).toMatchObject({ consented: false, state: 'denied' });
    const versionRevoked = (await call('GET', '/api/v1/subjects/user/user-exp', ctx.reader)).body.version as number;

    const audit = (await call('GET', '/api/v1/audit?subject=user:user-exp', ctx.auditor)).body.entries as { seq: number; valid: boolean; action: string }[];
    const validSeq = audit.find((e) => e.valid)!.seq;
    const invalidSeq = audit.find((e) => !e.valid)!.seq;
    const before = Number((await ctx.db.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM webhook_deliveries'))!.n);

    // A valid event, or a seq that is not there, is refused naming it; nothing is written.
    const refusedValid = await call('POST', '/api/v1/consent/events/expire', ctx.writer, { seqs: [invalidSeq, validSeq] });
    expect(refusedValid.status).toBe(400);
    expect(refusedValid.body.error.message).toContain(`seqs.1: audit row ${validSeq} is a valid event`);
    const unknown = await call('POST', '/api/v1/consent/events/expire', ctx.writer, { seqs: [99_999_999] });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain('seqs.0');
    expect((await call('POST', '/api/v1/consent/events/expire', ctx.writer, { seqs: Array.from({ length: 501 }, (_, i) => i + 1) })).status).toBe(400);
    expect((await call('POST', '/api/v1/consent/events/expire', ctx.reader, { seqs: [invalidSeq] })).status).toBe(403);
    expect(await check()).toMatchObject({ consented: false });

    const expired = await call('POST', '/api/v1/consent/events/expire', ctx.writer, { seqs: [invalidSeq] });
    expect(expired.status).toBe(200);
    expect(expired.body).toEqual({ events: [{ seq: invalidSeq, expired: true, auditSeq: expect.any(Number) }], more: false });
    expect(await check()).toMatchObject({ consented: true, state: 'granted' });
    const record = (await call('GET', '/api/v1/subjects/user/user-exp', ctx.reader)).body;
    expect(record.version).toBeGreaterThan(versionRevoked);
    expect(record.items.weekly_newsletters_from_web).toMatchObject({ status: 'granted', consentAt: 1528114618000 });
    // Audited: an `expire` row naming the event.
    const row = (await call('GET', '/api/v1/audit?subject=user:user-exp', ctx.auditor)).body.entries.find((e: { action: string }) => e.action === 'expire');
    expect(row).toMatchObject({ seq: expired.body.events[0].auditSeq, item: 'weekly_newsletters_from_web', message: String(invalidSeq), source: 'api' });
    // A webhook-visible change: a delivery with the restored grant.
    const deliveries = await ctx.db.all<{ payload: string }>('SELECT payload FROM webhook_deliveries');
    expect(deliveries.length).toBe(before + 1);
    const mine = deliveries.map((d) => JSON.parse(d.payload) as { subject: { id: string }; version: number }).filter((p) => p.subject.id === 'user-exp');
    expect(mine.sort((a, b) => a.version - b.version)[mine.length - 1]).toMatchObject({
      type: 'consent.changed',
      subject: { type: 'user', id: 'user-exp' },
      version: record.version,
      items: [{ item: 'weekly_newsletters_from_web', status: 'granted', source: 'private_api' }],
    });

    // Idempotent: again by seq, or by subject and category, changes nothing.
    const again = await call('POST', '/api/v1/consent/events/expire', ctx.writer, { seqs: [invalidSeq] });
    expect(again.body).toEqual({ events: [{ seq: invalidSeq, expired: false, auditSeq: expired.body.events[0].auditSeq }], more: false });
    expect((await call('POST', '/api/v1/consent/events/expire', ctx.writer, { subject: 'user:user-exp', category: 'weekly_newsletters_from_web' })).body).toEqual({ events: [], more: false });
    expect((await call('GET', '/api/v1/subjects/user/user-exp', ctx.reader)).body.version).toBe(record.version);
    expect(Number((await ctx.db.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM webhook_deliveries'))!.n)).toBe(before + 1);

    // By subject and category: every invalid event of it. The only event expired: no item at all.
    await call('POST', '/api/v1/consent/events/expire', ctx.writer, {});
    await call('POST', '/api/v1/consent/events', ctx.writer, { ...invalid, customer_ids: { registered: 'user-only' } });
    await call('POST', '/api/v1/consent/events', ctx.writer, { ...invalid, timestamp: 1528114800, customer_ids: { registered: 'user-only' } });
    const both = await call('POST', '/api/v1/consent/events/expire', ctx.writer, { subject: 'user:user-only', category: 'weekly_newsletters_from_web' });
    expect(both.body.events).toHaveLength(2);
    expect((await call('GET', '/api/v1/subjects/user/user-only', ctx.reader)).body.items).toEqual({});
    expect(await verifyBoth()).toMatchObject({ ok: true });
  });

  it('a direct edit of consent_items, consent_records, subjects or audit_log is caught (API and CLI)', async () => {
    expect(await verifyBoth()).toMatchObject({ ok: true });
    // The measurement: a denied item set to granted in the database.
    const denied = (await ctx.db.get<{ subject_key: string; item: string }>("SELECT subject_key, item FROM consent_items WHERE site_id = 'shop' AND status = 'denied' ORDER BY subject_key, item LIMIT 1"))!;
    await ctx.db.run("UPDATE consent_items SET status = 'granted' WHERE site_id = 'shop' AND subject_key = ? AND item = ?", [denied.subject_key, denied.item]);
    expect(await verifyBoth()).toEqual({ ok: false, reason: 'state_mismatch', rows: expect.any(Number), mismatch: { siteId: 'shop', subject: denied.subject_key, item: denied.item, field: 'status', stored: 'granted', implied: 'denied' } });
    await ctx.db.run("UPDATE consent_items SET status = 'denied' WHERE site_id = 'shop' AND subject_key = ? AND item = ?", [denied.subject_key, denied.item]);
    expect(await verifyApi()).toMatchObject({ ok: true });

    // A deleted item (the log implies it), and one that was never written.
    const item = (await ctx.db.get<Record<string, unknown>>("SELECT * FROM consent_items WHERE site_id = 'shop' AND subject_key = 'visitor:v1' AND item = 'analytics'"))!;
    await ctx.db.run("DELETE FROM consent_items WHERE site_id = 'shop' AND subject_key = 'visitor:v1' AND item = 'analytics'");
    expect(await verifyApi()).toMatchObject({ ok: false, reason: 'state_mismatch', mismatch: { subject: 'visitor:v1', item: 'analytics', field: 'row', stored: 'absent' } });
    await ctx.db.run('INSERT INTO consent_items (site_id, subject_key, item, status, consent_at, valid_until, source, audit_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [item.site_id, item.subject_key, item.item, item.status, item.consent_at, item.valid_until, item.source, item.audit_seq] as never);
    await ctx.db.run("INSERT INTO consent_items (site_id, subject_key, item, status, consent_at, valid_until, source, audit_seq) VALUES ('shop', 'visitor:v1', 'forged', 'granted', 1, NULL, 'push', 1)");
    expect(await verifyApi()).toMatchObject({ ok: false, mismatch: { subject: 'visitor:v1', item: 'forged', field: 'row', stored: 'present', implied: 'absent' } });
    await ctx.db.run("DELETE FROM consent_items WHERE item = 'forged'");

    // A record field.
    await ctx.db.run("UPDATE consent_records SET geo_country = 'US' WHERE site_id = 'shop' AND subject_key = 'visitor:v1'");
    expect(await verifyBoth()).toMatchObject({ ok: false, reason: 'state_mismatch', mismatch: { subject: 'visitor:v1', field: 'geo_country', stored: 'US', implied: 'DE' } });
    await ctx.db.run("UPDATE consent_records SET geo_country = 'DE' WHERE site_id = 'shop' AND subject_key = 'visitor:v1'");
    await ctx.db.run("UPDATE consent_records SET tcf_string = 'CPforged' WHERE site_id = 'shop' AND subject_key = 'visitor:v2'");
    expect(await verifyApi()).toMatchObject({ ok: false, mismatch: { subject: 'visitor:v2', field: 'tcf_string', stored: 'CPforged', implied: null } });
    await ctx.db.run("UPDATE consent_records SET tcf_string = NULL WHERE site_id = 'shop' AND subject_key = 'visitor:v2'");
    expect(await verifyApi()).toMatchObject({ ok: true });

    // A profile split: v1 taken out of u1's profile.
    const p = (await ctx.db.get<{ profile_id: string }>("SELECT profile_id FROM subjects WHERE site_id = 'shop' AND subject_key = 'visitor:v1'"))!.profile_id;
    await ctx.db.run("UPDATE subjects SET profile_id = 'split' WHERE site_id = 'shop' AND subject_key = 'visitor:v1'");
    expect(await verifyBoth()).toMatchObject({ ok: false, reason: 'state_mismatch', mismatch: { field: 'profile' } });
    // A profile merge: v2 (alone) put into u1's profile, so u1's consent would decide for it.
    await ctx.db.run("UPDATE subjects SET profile_id = ? WHERE site_id = 'shop' AND subject_key = 'visitor:v1'", [p]);
    expect(await verifyApi()).toMatchObject({ ok: true });
    await ctx.db.run("UPDATE subjects SET profile_id = ? WHERE site_id = 'shop' AND subject_key = 'visitor:v2'", [p]);
    expect(await verifyBoth()).toMatchObject({ ok: false, reason: 'state_mismatch', mismatch: { field: 'profile' } });
    await ctx.db.run("UPDATE subjects SET profile_id = 'v2-own' WHERE site_id = 'shop' AND subject_key = 'visitor:v2'");
    expect(await verifyApi()).toMatchObject({ ok: true });
    // A forged subject the log never names.
    await ctx.db.run("INSERT INTO subjects (site_id, subject_key, profile_id, created_at) VALUES ('shop', 'user:ghost', ?, 1)", [p]);
    expect(await verifyApi()).toMatchObject({ ok: false, mismatch: { subject: 'user:ghost', field: 'row', stored: 'present', implied: 'absent' } });
    await ctx.db.run("DELETE FROM subjects WHERE subject_key = 'user:ghost'");

    // A log row.
    const last = (await ctx.db.get<{ seq: unknown; source: string }>("SELECT seq, source FROM audit_log WHERE action = 'accept' ORDER BY seq DESC LIMIT 1"))!;
    await ctx.db.run("UPDATE audit_log SET source = 'forged' WHERE seq = ?", [Number(last.seq)]);
    expect(await verifyBoth()).toMatchObject({ ok: false, reason: 'hash_mismatch', brokenAt: Number(last.seq) });
    await ctx.db.run('UPDATE audit_log SET source = ? WHERE seq = ?', [last.source, Number(last.seq)]);
    expect(await verifyBoth()).toMatchObject({ ok: true });
  });

  it('links made before migration 6 are backfilled into the log, so the store verifies', async () => {
    // What a store written before links were audited looks like: subjects joined without a row.
    await ctx.db.run("INSERT INTO subjects (site_id, subject_key, profile_id, created_at) VALUES ('shop', 'visitor:old-a', 'old-profile', 1), ('shop', 'user:old-u', 'old-profile', 1), ('shop', 'visitor:old-lone', 'old-lone', 1)");
    expect(await verifyApi()).toMatchObject({ ok: false, mismatch: { field: 'row', stored: 'present', implied: 'absent' } });
    await ctx.db.run('DELETE FROM schema_migrations WHERE version = 6');
    expect(await migrate(ctx.db)).toEqual([6]);
    const rows = await ctx.db.all<{ subject_key: string; message: string }>("SELECT subject_key, message FROM audit_log WHERE action = 'link' AND source = 'migration' ORDER BY seq");
    // Links that the log already holds (audited since) are written again: harmless, they join what is joined.
    expect(rows).toEqual(expect.arrayContaining([{ subject_key: 'user:old-u', message: 'visitor:old-a' }, { subject_key: 'visitor:old-lone', message: 'visitor:old-lone' }]));
    expect(await verifyBoth()).toMatchObject({ ok: true });
  });
});

forEachEngine('audit state: the replay equals the store (property)', (engine) => {
  let db: Db;
  beforeAll(async () => {
    db = await engine.open();
  });
  afterAll(async () => {
    await db.close();
  });
  const subject = fc.constantFrom<SubjectRef>({ type: 'visitor', id: 'a' }, { type: 'visitor', id: 'b' }, { type: 'visitor', id: 'c' }, { type: 'user', id: 'x' }, { type: 'user', id: 'y' });
  // Few times and sources, so equal claims (ties of the precedence rule) are common.
  const time = fc.constantFrom(1000, 2000);
  // Inputs and patches about two subjects mostly, so they meet often (links join the others in).
  const written = fc.oneof({ weight: 4, arbitrary: fc.constantFrom<SubjectRef>({ type: 'visitor', id: 'a' }, { type: 'user', id: 'x' }) }, { weight: 1, arbitrary: subject });
  const inputOp = fc.record({
    kind: fc.constant('input' as const),
    subject: written,
    links: fc.array(subject, { maxLength: 2 }),
    action: fc.constantFrom<'accept' | 'reject'>('accept', 'reject'),
    item: fc.constantFrom('analytics', 'ads'),
    at: time,
    validUntil: fc.constantFrom(null, 1000, 5000),
    valid: fc.boolean(),
    source: fc.constantFrom('push', 'push', 'import'),
  });
  const patchOp = fc.record({
    kind: fc.constant('patch' as const),
    subject: written,
    at: time,
    tcf: fc.option(fc.constantFrom('CPa', 'CPb'), { nil: undefined }),
    geo: fc.option(fc.option(fc.constantFrom('DE', 'FR'), { nil: null }), { nil: undefined }),
  });
  const linkOp = fc.record({ kind: fc.constant('link' as const), a: subject, b: subject });
  const expireOp = fc.record({ kind: fc.constant('expire' as const), subject, item: fc.constantFrom('analytics', 'ads') });
  // Two denials of one item at one time from one source: equal claims, where the first must stay.
  const denials = [
    { action: 'reject' as const, valid: true, validUntil: null },
    { action: 'reject' as const, valid: true, validUntil: 5000 },
    { action: 'accept' as const, valid: false, validUntil: null },
    { action: 'reject' as const, valid: false, validUntil: 1000 },
  ];
  const tieOp = fc.record({ kind: fc.constant('tie' as const), subject: written, item: fc.constantFrom('analytics', 'ads'), at: time, pair: fc.shuffledSubarray(denials, { minLength: 2, maxLength: 2 }) });
  const op = fc.oneof(inputOp, inputOp, patchOp, linkOp, expireOp, tieOp);
  type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

  it('for random inputs, patches, links and expiries, verify finds the stored state equal to the replayed one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 6, size: 'max' }), { minLength: 1, maxLength: 10, size: 'max' }), async (batches) => {
        // An empty store per run: a failing run is then shrunk on its own.
        for (const table of ['audit_log', 'consent_items', 'consent_records', 'subjects']) await db.run(`DELETE FROM ${table}`);
        await runBatches(db, batches);
        expect(await verifyAuditState(db)).toMatchObject({ ok: true });
      }),
      { seed: 1302, numRuns: 40 },
    );
    // Forty stores in a row: seconds on PostgreSQL, more on a busy machine.
  }, 120_000);

  it('a row whose action the replay does not know fails verification (the chain itself is intact)', async () => {
    for (const table of ['audit_log', 'consent_items', 'consent_records', 'subjects']) await db.run(`DELETE FROM ${table}`);
    await createConsentStore(db, { clock: new FakeClock(10_000) }).apply([{ siteId: 'shop', subject: { type: 'visitor', id: 'a' }, action: 'accept', item: 'ads', consentAt: 1000, validUntil: null, source: 'push', valid: true, payloadHash: 'p'.repeat(64) }]);
    const head = (await db.get<{ hash: string }>('SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1'))!.hash;
    const row = { site_id: 'shop', subject_key: 'visitor:a', action: 'grant', item: 'ads', consent_at: 2000, valid_until: null, message: null, source: 'push', identification: null, identification_type: null, imported_at: 1, api_key_id: null, payload_hash: 'p'.repeat(64), valid: 1 as const, invalid_reason: null, applied: 1 as const, dedup_key: 'unknown-action' };
    const appended = await appendAudit(db, head, row);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    expect(await verifyAuditState(db)).toEqual({ ok: false, reason: 'unknown_action', brokenAt: appended!.seq, detail: 'action "grant"', rows: 2 });
  });

  async function runBatches(db: Db, batches: readonly (readonly Op[])[]): Promise<void> {
    const site = 'shop';
    const store = createConsentStore(db, { clock: new FakeClock(10_000) });
    for (const batch of batches) {
      const inputs: ConsentInput[] = [];
      const patches: RecordPatch[] = [];
      for (const o of batch) {
        if (o.kind === 'input') {
          inputs.push({ siteId: site, subject: o.subject, links: o.links, action: o.action, item: o.item, consentAt: o.at, validUntil: o.validUntil, source: o.source, valid: o.valid, payloadHash: 'p'.repeat(64) });
        } else if (o.kind === 'tie') {
          for (const d of o.pair) inputs.push({ siteId: site, subject: o.subject, item: o.item, consentAt: o.at, source: 'push', payloadHash: 'p'.repeat(64), ...d });
        } else if (o.kind === 'patch') {
          patches.push({ siteId: site, subject: o.subject, consentAt: o.at, source: 'push', ...(o.tcf === undefined ? {} : { tcfString: o.tcf }), ...(o.geo === undefined ? {} : { geoCountry: o.geo }) });
        } else if (o.kind === 'link') {
          await store.link(site, o.a, o.b);
        } else {
          await store.expire(site, { subject: o.subject, item: o.item });
        }
      }
      await store.apply(inputs, patches);
    }
  }
});
