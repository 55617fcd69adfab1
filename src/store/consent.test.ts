import fc from 'fast-check';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { ValidationError } from '../errors.ts';
import { verifyAuditChain } from './audit.ts';
import { createConsentStore, dedupKeyOf, type ConsentStoreOptions } from './consent.ts';
import type { Db } from './db.ts';
import type { ConsentChange, ConsentInput, SubjectConsent, SubjectRef } from './types.ts';
import { FakeClock } from '../lib/fake-clock.ts';

const SITE = 'shop';
const V1: SubjectRef = { type: 'visitor', id: 'v1' };
const V2: SubjectRef = { type: 'visitor', id: 'v2' };
const U1: SubjectRef = { type: 'user', id: 'u1' };
const U2: SubjectRef = { type: 'user', id: 'u2' };

function input(over: Partial<ConsentInput> = {}): ConsentInput {
  return { siteId: SITE, subject: V1, action: 'accept', item: 'analytics', consentAt: 1000, validUntil: null, source: 'private_api', valid: true, payloadHash: 'p'.repeat(64), ...over };
}

async function auditCount(db: Db): Promise<number> {
  return Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM audit_log'))!.n);
}

/** What a reader acts on, without the version and times the change itself moves. */
function state(c: SubjectConsent | undefined): unknown {
  if (c === undefined) return undefined;
  const { version: _v, updatedAt: _u, ...rest } = c;
  return rest;
}

forEachEngine('consent store', (engine) => {
  let db: Db;
  beforeEach(async () => {
    db = await engine.open();
  });
  afterEach(async () => {
    await db.close();
  });
  const store = (opts: ConsentStoreOptions = {}) => createConsentStore(db, { clock: new FakeClock(5_000), ...opts });

  it('reads undefined for a subject never seen, and the stored decision after an input', async () => {
    const s = store();
    expect(await s.read(SITE, V1)).toBeUndefined();
    const [out] = await s.apply([input()]);
    expect(out).toMatchObject({ valid: true, applied: true, duplicate: false });
    expect(out!.auditSeq).toBeGreaterThan(0);
    const c = await s.read(SITE, V1);
    expect(c).toMatchObject({ siteId: SITE, subject: V1, linked: [V1], consentAt: 1000, tcfString: null, gcm: null });
    expect(c!.items.analytics).toEqual({ item: 'analytics', status: 'granted', consentAt: 1000, validUntil: null, source: 'private_api', expired: false });
    expect(c!.version).toBeGreaterThan(0);
    // Another site's subject with the same id is someone else.
    expect(await s.read('other', V1)).toBeUndefined();
  });

  it('refuses ids the engines would store differently (NUL, controls, lone surrogates, > 256): a ValidationError, nothing written', async () => {
    const s = store();
    for (const id of ['a\u0000b', 'tab\there', 'c1\u009f', 'lone\ud800', 'x'.repeat(257)]) {
      await expect(s.apply([input(), input({ subject: { type: 'user', id } })]), JSON.stringify(id)).rejects.toBeInstanceOf(ValidationError);
      await expect(s.apply([input({ links: [{ type: 'user', id }] })])).rejects.toBeInstanceOf(ValidationError);
      await expect(s.apply([], [{ siteId: SITE, subject: { type: 'visitor', id }, consentAt: 1000, source: 'push', tcfString: 'x' }])).rejects.toBeInstanceOf(ValidationError);
      await expect(s.link(SITE, U1, { type: 'visitor', id })).rejects.toBeInstanceOf(ValidationError);
      if (id.length <= 256) await expect(s.apply([input({ item: `ref:${id}` })])).rejects.toBeInstanceOf(ValidationError);
      // Never sent to the engine: no record.
      expect(await s.read(SITE, { type: 'user', id })).toBeUndefined();
    }
    expect(await auditCount(db)).toBe(0);
    // Printable text of any script is an id as it is.
    await s.apply([input({ subject: { type: 'user', id: 'Zoë 😀 [email protected]' } })]);
    expect(await s.read(SITE, { type: 'user', id: 'Zoë 😀 [email protected]' })).toBeDefined();
  });

  it('last-write-wins by consentAt: an older input is audited with applied=0 and changes nothing', async () => {
    const s = store();
    await s.apply([input({ action: 'reject', consentAt: 2000 })]);
    const v = (await s.read(SITE, V1))!.version;
    const [old] = await s.apply([input({ action: 'accept', consentAt: 1500 })]);
    expect(old).toMatchObject({ applied: false, duplicate: false });
    expect(await auditCount(db)).toBe(2);
    const row = await db.get<{ applied: number }>('SELECT applied FROM audit_log WHERE seq = ?', [old!.auditSeq]);
    expect(Number(row!.applied)).toBe(0);
    const c = (await s.read(SITE, V1))!;
    expect(c.items.analytics).toMatchObject({ status: 'denied', consentAt: 2000 });
    expect(c.version).toBe(v);
    const [newer] = await s.apply([input({ action: 'accept', consentAt: 2500 })]);
    expect(newer!.applied).toBe(true);
    expect((await s.read(SITE, V1))!.items.analytics!.status).toBe('granted');
  });

  it('equal consentAt: the denial wins whatever the order', async () => {
    const s = store();
    const [a, r] = await s.apply([input({ consentAt: 3000 }), input({ action: 'reject', consentAt: 3000 })]);
    expect([a!.applied, r!.applied]).toEqual([true, true]);
    expect((await s.read(SITE, V1))!.items.analytics!.status).toBe('denied');
    const [r2, a2] = await s.apply([input({ subject: V2, action: 'reject', consentAt: 3000 }), input({ subject: V2, consentAt: 3000 })]);
    expect([r2!.applied, a2!.applied]).toEqual([true, false]);
    expect((await s.read(SITE, V2))!.items.analytics!.status).toBe('denied');
  });

  it('equal consentAt across linked subjects: the merged read is denied, whichever subject holds which', async () => {
    const s = store();
    await s.apply([input({ subject: U1, links: [V1], consentAt: 50 }), input({ subject: V1, action: 'reject', consentAt: 50 })]);
    await s.apply([input({ subject: U2, links: [V2], action: 'reject', consentAt: 50 }), input({ subject: V2, consentAt: 50 })]);
    for (const subject of [U1, V1, U2, V2]) expect((await s.read(SITE, subject))!.items.analytics!.status).toBe('denied');
  });

  it('any arrival order of the same inputs ends in the same state (property)', async () => {
    const s = store();
    let run = 0;
    const arbInput = fc.record({
      subject: fc.constantFrom(V1, U1),
      action: fc.constantFrom('accept' as const, 'reject' as const),
      item: fc.constantFrom('analytics', 'ads'),
      consentAt: fc.integer({ min: 1, max: 3 }),
      validUntil: fc.constantFrom(null, 3, 10),
      valid: fc.boolean(),
      source: fc.constantFrom('push', 'import'),
    });
    // Distinct by the default dedup key, so no input is a duplicate of another.
    const arbBatch = fc.uniqueArray(arbInput, { minLength: 1, maxLength: 12, selector: (i) => JSON.stringify([i.subject, i.action, i.item, i.consentAt, i.validUntil, i.valid]) });
    await fc.assert(
      fc.asyncProperty(
        arbBatch.chain((batch) => fc.tuple(fc.constant(batch), fc.shuffledSubarray(batch, { minLength: batch.length, maxLength: batch.length }), fc.integer({ min: 1, max: 4 }))),
        async ([batch, shuffled, chunk]) => {
          run++;
          const siteA = `a${run}`;
          const siteB = `b${run}`;
          // One input per call in one order; chunks of several per call in the other; the user
          // linked to the visitor from the start in both.
          await s.link(siteA, V1, U1);
          await s.link(siteB, V1, U1);
          for (const i of batch) await s.apply([input({ ...i, siteId: siteA })]);
          for (let k = 0; k < shuffled.length; k += chunk) await s.apply(shuffled.slice(k, k + chunk).map((i) => input({ ...i, siteId: siteB })));
          for (const subject of [V1, U1]) {
            const a = state(await s.read(siteA, subject, 5));
            const b = state(await s.read(siteB, subject, 5));
            expect({ ...(b as object), siteId: siteA }).toEqual(a);
          }
        },
      ),
      { seed: 20260301, numRuns: engine.name === 'postgres' ? 25 : 60 },
    );
  });

  it('a large batch (its stored items read up front) ends where one input per call does (property)', async () => {
    const s = store();
    let run = 0;
    const arbInput = fc.record({
      subject: fc.constantFrom(V1, U1, V2),
      action: fc.constantFrom('accept' as const, 'reject' as const),
      item: fc.constantFrom('analytics', 'ads', 'email', 'sms'),
      consentAt: fc.integer({ min: 1, max: 5 }),
      validUntil: fc.constantFrom(null, 3, 10),
      valid: fc.boolean(),
      source: fc.constantFrom('push', 'import'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(arbInput, { minLength: 20, maxLength: 45 }), fc.array(arbInput, { maxLength: 6 }), async (batch, earlier) => {
        run++;
        const siteA = `pa${run}`;
        const siteB = `pb${run}`;
        // Some items stored before the batch, so the prefetch finds rows as well as absences.
        for (const site of [siteA, siteB]) for (const i of earlier) await s.apply([input({ ...i, siteId: site, consentAt: i.consentAt - 1 })]);
        for (const i of batch) await s.apply([input({ ...i, siteId: siteA })]);
        await s.apply(batch.map((i) => input({ ...i, siteId: siteB })));
        for (const subject of [V1, U1, V2]) {
          const a = state(await s.read(siteA, subject, 5));
          const b = state(await s.read(siteB, subject, 5));
          expect(b === undefined ? undefined : { ...(b as object), siteId: siteA }).toEqual(a);
        }
      }),
      { seed: 20261123, numRuns: engine.name === 'postgres' ? 15 : 40 },
    );
  });

  it('an expired grant reads as denied from validUntil on', async () => {
    const s = store();
    await s.apply([input({ consentAt: 10, validUntil: 100 })]);
    expect((await s.read(SITE, V1, 99))!.items.analytics).toMatchObject({ status: 'granted', expired: false, validUntil: 100 });
    expect((await s.read(SITE, V1, 100))!.items.analytics).toMatchObject({ status: 'denied', expired: true, validUntil: 100 });
    // The store's clock is the default for reads.
    expect((await createConsentStore(db, { clock: new FakeClock(101) }).read(SITE, V1))!.items.analytics!.status).toBe('denied');
  });

  it('an invalid input is stored as invalid and revokes the item', async () => {
    const s = store();
    await s.apply([input({ consentAt: 1000 })]);
    const [out] = await s.apply([input({ action: 'accept', consentAt: 2000, valid: false, invalidReason: 'valid_until: required' })]);
    expect(out).toMatchObject({ valid: false, invalidReason: 'valid_until: required', applied: true, duplicate: false });
    expect((await s.read(SITE, V1))!.items.analytics).toMatchObject({ status: 'denied', consentAt: 2000 });
    const row = await db.get<{ valid: number; invalid_reason: string }>('SELECT valid, invalid_reason FROM audit_log WHERE seq = ?', [out!.auditSeq]);
    expect([Number(row!.valid), row!.invalid_reason]).toEqual([0, 'valid_until: required']);
  });

  it('re-applying the same batch is a no-op: all duplicates, same state, same audit, no change events', async () => {
    const changes: ConsentChange[][] = [];
    const s = store({ afterCommit: (c) => changes.push(c) });
    const batch = [
      input({ subject: U1, links: [V1], consentAt: 1 }),
      input({ subject: U1, item: 'ads', action: 'reject', consentAt: 2 }),
      input({ subject: V2, consentAt: 3, validUntil: 9_999 }),
      input({ subject: V2, consentAt: 1, action: 'reject' }), // older: audited, not applied
      input({ subject: V2, item: 'x', valid: false, action: 'reject', invalidReason: 'bad', consentAt: 4 }),
    ];
    const first = await s.apply(batch);
    expect(first.map((o) => o.duplicate)).toEqual([false, false, false, false, false]);
    expect(first.map((o) => o.applied)).toEqual([true, true, true, false, true]);
    const before = [await s.read(SITE, V1), await s.read(SITE, V2), await s.read(SITE, U1)];
    const rows = await auditCount(db);
    expect(changes).toHaveLength(1);
    const second = await s.apply(batch);
    expect(second.every((o) => o.duplicate && !o.applied)).toBe(true);
    expect(second.map((o) => o.auditSeq)).toEqual(first.map((o) => o.auditSeq));
    expect([await s.read(SITE, V1), await s.read(SITE, V2), await s.read(SITE, U1)]).toEqual(before);
    expect(await auditCount(db)).toBe(rows);
    expect(changes).toHaveLength(1);
    // A duplicate inside one batch is caught too.
    const dup = await s.apply([input({ subject: U2, consentAt: 7 }), input({ subject: U2, consentAt: 7, message: 'same decision, other text' })]);
    expect(dup.map((o) => o.duplicate)).toEqual([false, true]);
    // An explicit key decides instead of the fields, per site.
    const k1 = await s.apply([input({ subject: U2, consentAt: 8, dedupKey: 'row-1' }), input({ subject: U2, consentAt: 9, dedupKey: 'row-1' })]);
    expect(k1.map((o) => o.duplicate)).toEqual([false, true]);
    expect(dedupKeyOf(input({ dedupKey: 'row-1' }))).not.toBe(dedupKeyOf(input({ siteId: 'other', dedupKey: 'row-1' })));
  });

  it('linked subjects share consent both ways; the latest input over the profile wins per item', async () => {
    const s = store();
    await s.apply([input({ subject: U1, links: [V1], consentAt: 10 })]);
    let v = (await s.read(SITE, V1))!;
    expect(v.linked).toEqual([U1, V1]);
    expect(v.items.analytics).toMatchObject({ status: 'granted', consentAt: 10 });
    // Pushed for the visitor, read for the user.
    await s.apply([input({ subject: V1, action: 'reject', consentAt: 20 })]);
    expect((await s.read(SITE, U1))!.items.analytics).toMatchObject({ status: 'denied', consentAt: 20 });
    // An older one for the user is applied to the user's own record, but the visitor's newer one still decides.
    const [older] = await s.apply([input({ subject: U1, consentAt: 15 })]);
    expect(older!.applied).toBe(true);
    v = (await s.read(SITE, V1))!;
    expect(v.items.analytics).toMatchObject({ status: 'denied', consentAt: 20 });
    expect(await s.read(SITE, U1)).toEqual({ ...v, subject: U1 });
  });

  it('linking merges two profiles: every subject of one joins the other, versions rise for all', async () => {
    const s = store();
    await s.apply([input({ subject: U1, links: [V1], item: 'analytics', consentAt: 10 })]);
    await s.apply([input({ subject: V2, item: 'ads', consentAt: 11 })]);
    const before = [(await s.read(SITE, V1))!.version, (await s.read(SITE, V2))!.version];
    expect(await s.link(SITE, V2, U1)).toBe('linked');
    expect(await s.link(SITE, V1, V2)).toBe('already');
    for (const subject of [V1, V2, U1]) {
      const c = (await s.read(SITE, subject))!;
      expect(c.linked).toEqual([U1, V1, V2]);
      expect(Object.keys(c.items)).toEqual(['ads', 'analytics']);
      expect(c.version).toBeGreaterThan(Math.max(...before));
    }
    const profiles = await db.all<{ profile_id: string }>('SELECT DISTINCT profile_id FROM subjects WHERE site_id = ?', [SITE]);
    expect(profiles).toHaveLength(1);
  });

  it('a visitor never joins two profiles that each hold a user; two user ids named together do merge', async () => {
    const s = store();
    await s.apply([input({ subject: U1, links: [V1], consentAt: 10 })]);
    await s.apply([input({ subject: U2, action: 'reject', consentAt: 20 })]);
    expect(await s.link(SITE, V1, U2)).toBe('refused');
    expect((await s.read(SITE, V1))!.items.analytics!.status).toBe('granted');
    expect((await s.read(SITE, U2))!.linked).toEqual([U2]);
    // One push naming a visitor, a user id and a custom user id: one person.
    const U3: SubjectRef = { type: 'user', id: 'u3' };
    const C3: SubjectRef = { type: 'user', id: 'me@example.com' };
    const V3: SubjectRef = { type: 'visitor', id: 'v3' };
    await s.apply([input({ subject: V3, links: [U3, C3], consentAt: 30 })]);
    expect((await s.read(SITE, C3))!.linked).toEqual([C3, U3, V3]);
    expect(await s.link(SITE, U1, U2)).toBe('linked');
    expect((await s.read(SITE, V1))!.items.analytics!.status).toBe('denied');
  });

  it('versions increase with every change and only then', async () => {
    const s = store();
    const seen: number[] = [];
    const at = async () => seen.push((await s.read(SITE, V1))!.version);
    await s.apply([input({ consentAt: 1 })]);
    await at();
    await s.apply([input({ consentAt: 2, action: 'reject' })]);
    await at();
    await s.apply([input({ consentAt: 3, item: 'ads' })]);
    await at();
    await s.apply([], [{ siteId: SITE, subject: V1, consentAt: 4, source: 'push', tcfString: 'CP1' }]);
    await at();
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
    // No change: an older input, a same-valued patch.
    await s.apply([input({ consentAt: 0 })]);
    await s.apply([], [{ siteId: SITE, subject: V1, consentAt: 4, source: 'push', tcfString: 'CP1' }]);
    await at();
    expect(seen[seen.length - 1]).toBe(seen[seen.length - 2]);
  });

  it('record patches: last-write-wins by consentAt, absent fields kept, merged per field over the profile', async () => {
    const s = store();
    await s.apply([], [{ siteId: SITE, subject: U1, consentAt: 20, source: 'push', tcfString: 'CP-new', consentType: 'Newsletter' }]);
    await s.apply([], [{ siteId: SITE, subject: U1, consentAt: 10, source: 'push', tcfString: 'CP-old', geoCountry: 'FR' }]);
    let c = (await s.read(SITE, U1))!;
    expect([c.tcfString, c.consentType, c.geoCountry, c.consentAt]).toEqual(['CP-new', 'Newsletter', null, 20]);
    await s.apply([], [{ siteId: SITE, subject: U1, consentAt: 30, source: 'push', gcm: { analytics_storage: 'granted', ad_storage: 'denied' } }]);
    c = (await s.read(SITE, U1))!;
    expect([c.tcfString, c.gcm]).toEqual(['CP-new', { ad_storage: 'denied', analytics_storage: 'granted' }]);
    // The visitor's newer geo joins the user's TCF string once linked.
    await s.apply([], [{ siteId: SITE, subject: V1, consentAt: 40, source: 'page', geoCountry: 'DE' }]);
    await s.link(SITE, V1, U1);
    c = (await s.read(SITE, V1))!;
    expect([c.tcfString, c.geoCountry, c.consentType, c.consentAt]).toEqual(['CP-new', 'DE', 'Newsletter', 40]);
  });

  it('onChange runs inside the transaction per changed subject; a throw rolls the whole apply back', async () => {
    const calls: { change: ConsentChange; status: string | undefined }[] = [];
    const committed: ConsentChange[][] = [];
    const s = store({
      onChange: async (tx, change) => {
        const row = await tx.get<{ status: string }>("SELECT status FROM consent_items WHERE site_id = ? AND subject_key = ? AND item = 'analytics'", [change.siteId, 'user:u1']);
        calls.push({ change, status: row?.status });
      },
      afterCommit: (c) => committed.push(c),
    });
    await s.apply([input({ subject: U1, links: [V1], consentAt: 10 })]);
    expect(calls.map((c) => c.change.subject).sort((a, b) => a.type.localeCompare(b.type))).toEqual([U1, V1]);
    expect(calls.every((c) => c.status === 'granted')).toBe(true);
    const change = calls[0]!.change;
    expect(change).toMatchObject({ siteId: SITE, recordChanged: false, at: 5_000 });
    expect(change.items).toEqual([{ item: 'analytics', status: 'granted', consentAt: 10, validUntil: null, source: 'private_api', expired: false }]);
    expect(change.version).toBe((await s.read(SITE, V1))!.version);
    expect(committed).toEqual([calls.map((c) => c.change)]);

    const failing = store({
      onChange: () => Promise.reject(new Error('webhook enqueue failed')),
      afterCommit: (c) => committed.push(c),
    });
    const rows = await auditCount(db);
    const before = await s.read(SITE, V1);
    await expect(failing.apply([input({ subject: V1, action: 'reject', consentAt: 20 }), input({ subject: V2, consentAt: 20 })])).rejects.toThrow('webhook enqueue failed');
    expect(await auditCount(db)).toBe(rows);
    expect(await s.read(SITE, V1)).toEqual(before);
    expect(await s.read(SITE, V2)).toBeUndefined();
    expect(committed).toHaveLength(1);
    expect((await verifyAuditChain(db)).ok).toBe(true);
  });

  it('a throwing afterCommit does not fail a committed write', async () => {
    const errors: unknown[] = [];
    const s = store({ afterCommit: () => { throw new Error('cache gone'); }, onAfterCommitError: (e) => errors.push(e) });
    const [out] = await s.apply([input()]);
    expect(out!.applied).toBe(true);
    expect(errors).toHaveLength(1);
    expect((await s.read(SITE, V1))!.items.analytics!.status).toBe('granted');
  });

  it('rejects inputs the chain cannot hash exactly, before writing anything', async () => {
    const s = store();
    await expect(s.apply([input(), input({ consentAt: 1.5 })])).rejects.toBeInstanceOf(ValidationError);
    await expect(s.apply([input({ subject: { type: 'visitor', id: '' } })])).rejects.toBeInstanceOf(ValidationError);
    expect(await auditCount(db)).toBe(0);
  });

  it('stores text PostgreSQL could not (NUL) so that the chain still verifies', async () => {
    const s = store();
    await s.apply([input({ message: 'a\u0000b', source: 'x\uD800' })]);
    const row = await db.get<{ message: string; source: string }>('SELECT message, source FROM audit_log');
    expect(row).toEqual({ message: 'a\uFFFDb', source: 'x\uFFFD' });
    expect((await verifyAuditChain(db)).ok).toBe(true);
  });

  it('every apply keeps one valid chain, also under concurrent calls', async () => {
    const s = store();
    await Promise.all(Array.from({ length: 10 }, (_, k) => s.apply([input({ subject: { type: 'visitor', id: `c${k}` }, consentAt: k + 1 }), input({ subject: U1, consentAt: k + 1, item: `i${k}` })])));
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, rows: 20 });
  });
});
