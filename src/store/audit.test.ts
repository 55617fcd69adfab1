import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { ValidationError } from '../errors.ts';
import { auditHash, auditHead, GENESIS_HASH, iterateAudit, queryAudit, verifyAuditChain, type AuditColumns, type AuditRow } from './audit.ts';
import { createConsentStore } from './consent.ts';
import type { Db } from './db.ts';
import type { ConsentInput } from './types.ts';
import { FakeClock } from '../lib/fake-clock.ts';

function input(over: Partial<ConsentInput> = {}): ConsentInput {
  return { siteId: 'shop', subject: { type: 'visitor', id: 'v1' }, action: 'accept', item: 'analytics', consentAt: 1000, validUntil: null, source: 'private_api', valid: true, payloadHash: 'p'.repeat(64), ...over };
}

/** Five rows in the chain: seqs of the first, middle and last. */
async function fiveRows(db: Db): Promise<number[]> {
  const s = createConsentStore(db, { clock: new FakeClock(9_000) });
  const out = await s.apply(Array.from({ length: 5 }, (_, k) => input({ subject: { type: 'visitor', id: `v${k}` }, consentAt: 1000 + k })));
  return out.map((o) => o.auditSeq!);
}

forEachEngine('audit log', (engine) => {
  let db: Db;
  beforeEach(async () => {
    db = await engine.open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('an empty log verifies; a written one verifies and links from 64 zeros', async () => {
    expect(await verifyAuditChain(db)).toEqual({ ok: true, rows: 0 });
    const seqs = await fiveRows(db);
    const head = await auditHead(db);
    expect(await verifyAuditChain(db, { pageSize: 2 })).toEqual({ ok: true, rows: 5, head });
    const first = await db.get<{ prev_hash: string }>('SELECT prev_hash FROM audit_log WHERE seq = ?', [seqs[0]!]);
    expect(first!.prev_hash).toBe(GENESIS_HASH);
    expect(head!.seq).toBe(seqs[4]);
  });

  it('keeps an input\'s evidence (attributes) in its row, hashed: an edit of it breaks the chain', async () => {
    const s = createConsentStore(db, { clock: new FakeClock(9_000) });
    const [out] = await s.apply([input({ attributes: { email: 'a@example.com', custom: { b: 1, a: [2, 'x\u0000y'] } } })]);
    const page = await queryAudit(db, { siteId: 'shop' });
    expect(page.rows[0]!.attributes).toEqual({ custom: { a: [2, 'x\uFFFDy'], b: 1 }, email: 'a@example.com' });
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, rows: 1 });
    await db.run("UPDATE audit_log SET attributes = '{\"email\":\"b@example.com\"}' WHERE seq = ?", [out!.auditSeq!]);
    expect(await verifyAuditChain(db)).toEqual({ ok: false, brokenAt: out!.auditSeq, reason: 'hash_mismatch', rows: 0 });
  });

  it('keeps a __proto__ key of the evidence as an ordinary key', async () => {
    const s = createConsentStore(db, { clock: new FakeClock(9_000) });
    await s.apply([input({ attributes: JSON.parse('{"__proto__":{"x":1},"a":2}') as Record<string, unknown> })]);
    const row = await db.get<{ attributes: string }>('SELECT attributes FROM audit_log');
    expect(row!.attributes).toBe('{"__proto__":{"x":1},"a":2}');
  });

  it('refuses evidence beyond 16 KiB with a 400, writing nothing', async () => {
    const s = createConsentStore(db, { clock: new FakeClock(9_000) });
    await expect(s.apply([input({ attributes: { big: 'x'.repeat(20_000) } })])).rejects.toBeInstanceOf(ValidationError);
    expect((await queryAudit(db, { siteId: 'shop' })).rows).toEqual([]);
  });

  it('detects an edited row (hash mismatch at that row)', async () => {
    const seqs = await fiveRows(db);
    await db.run("UPDATE audit_log SET action = 'reject' WHERE seq = ?", [seqs[2]!]);
    expect(await verifyAuditChain(db)).toEqual({ ok: false, brokenAt: seqs[2], reason: 'hash_mismatch', rows: 2 });
  });

  it('detects an edit of the last row', async () => {
    const seqs = await fiveRows(db);
    await db.run('UPDATE audit_log SET consent_at = 1 WHERE seq = ?', [seqs[4]!]);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: false, brokenAt: seqs[4], reason: 'hash_mismatch' });
  });

  it('detects a deleted middle row (the next row no longer links)', async () => {
    const seqs = await fiveRows(db);
    await db.run('DELETE FROM audit_log WHERE seq = ?', [seqs[2]!]);
    expect(await verifyAuditChain(db)).toEqual({ ok: false, brokenAt: seqs[3], reason: 'prev_hash_mismatch', rows: 2 });
  });

  it('detects a deleted first row', async () => {
    const seqs = await fiveRows(db);
    await db.run('DELETE FROM audit_log WHERE seq = ?', [seqs[0]!]);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: false, brokenAt: seqs[1], reason: 'prev_hash_mismatch' });
  });

  it('detects reordered rows (two rows swapped, hashes and all)', async () => {
    const seqs = await fiveRows(db);
    const cols = 'site_id, subject_key, action, item, consent_at, valid_until, message, source, identification, identification_type, imported_at, api_key_id, payload_hash, valid, invalid_reason, applied, dedup_key, prev_hash, hash';
    const a = (await db.get(`SELECT ${cols} FROM audit_log WHERE seq = ?`, [seqs[1]!]))!;
    const b = (await db.get(`SELECT ${cols} FROM audit_log WHERE seq = ?`, [seqs[2]!]))!;
    const names = cols.split(', ');
    const set = names.map((n) => `${n} = ?`).join(', ');
    const setRow = (row: Record<string, unknown>, seq: number) => db.run(`UPDATE audit_log SET ${set} WHERE seq = ?`, [...names.map((n) => row[n] as string | number | null), seq]);
    // dedup_key is unique: park one row's key while swapping.
    await db.run("UPDATE audit_log SET dedup_key = 'tmp' WHERE seq = ?", [seqs[1]!]);
    await setRow(a, seqs[2]!);
    await setRow(b, seqs[1]!);
    expect(await verifyAuditChain(db)).toEqual({ ok: false, brokenAt: seqs[1], reason: 'prev_hash_mismatch', rows: 1 });
  });

  it('deleting the LAST row leaves a valid (shorter) chain: only an anchor kept elsewhere detects it', async () => {
    const seqs = await fiveRows(db);
    const anchor = (await auditHead(db))!;
    expect(await verifyAuditChain(db, { anchor })).toMatchObject({ ok: true, rows: 5 });
    await db.run('DELETE FROM audit_log WHERE seq = ?', [seqs[4]!]);
    // Undetectable from the table alone: by design of any hash chain without an external anchor.
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, rows: 4 });
    expect(await verifyAuditChain(db, { anchor })).toEqual({ ok: false, brokenAt: anchor.seq, reason: 'anchor_missing', rows: 4 });
  });

  it('an anchor also catches a rewritten tail (every hash recomputed after an edit)', async () => {
    const seqs = await fiveRows(db);
    const anchor = (await auditHead(db))!;
    // The attacker edits row 3 and recomputes the hashes of rows 3..5 so the chain itself verifies.
    let prev = (await db.get<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = ?', [seqs[1]!]))!.hash;
    for (const seq of seqs.slice(2)) {
      const r = (await db.get<AuditColumns & Record<string, unknown>>('SELECT * FROM audit_log WHERE seq = ?', [seq]))!;
      const cols: AuditColumns = { ...r, consent_at: Number(r.consent_at), imported_at: Number(r.imported_at), valid: 1, applied: 1, valid_until: null, action: seq === seqs[2] ? 'reject' : r.action };
      const hash = auditHash(prev, cols);
      await db.run('UPDATE audit_log SET action = ?, prev_hash = ?, hash = ? WHERE seq = ?', [cols.action, prev, hash, seq]);
      prev = hash;
    }
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, rows: 5 });
    expect(await verifyAuditChain(db, { anchor })).toMatchObject({ ok: false, brokenAt: anchor.seq, reason: 'anchor_mismatch' });
  });

  it('queries a site by subject, item, source, time and validity, oldest first', async () => {
    const s = createConsentStore(db, { clock: new FakeClock(9_000) });
    await s.apply([
      input({ consentAt: 100 }),
      input({ consentAt: 200, item: 'ads', source: 'import' }),
      input({ consentAt: 300, subject: { type: 'user', id: 'u1' }, valid: false, action: 'reject', invalidReason: 'action: required' }),
      input({ consentAt: 400, siteId: 'other' }),
    ]);
    const q = async (f: Partial<Parameters<typeof queryAudit>[1]>) => (await queryAudit(db, { siteId: 'shop', ...f })).rows.map((r) => r.consentAt);
    expect(await q({})).toEqual([100, 200, 300]);
    expect(await q({ subjectKey: 'visitor:v1' })).toEqual([100, 200]);
    expect(await q({ item: 'ads' })).toEqual([200]);
    expect(await q({ source: 'import' })).toEqual([200]);
    expect(await q({ from: 200 })).toEqual([200, 300]);
    expect(await q({ to: 300 })).toEqual([100, 200]);
    expect(await q({ valid: false })).toEqual([300]);
    expect(await q({ valid: true, subjectKey: 'visitor:v1', item: 'analytics' })).toEqual([100]);
    const [row] = (await queryAudit(db, { siteId: 'shop', valid: false })).rows;
    expect(row).toMatchObject<Partial<AuditRow>>({ siteId: 'shop', subjectKey: 'user:u1', action: 'reject', valid: false, invalidReason: 'action: required', applied: true, importedAt: 9_000, message: null });
    expect(row!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('pages with an opaque keyset cursor; iterateAudit streams everything', async () => {
    const s = createConsentStore(db, { clock: new FakeClock(9_000) });
    await s.apply(Array.from({ length: 25 }, (_, k) => input({ consentAt: 1 + k, siteId: k % 5 === 0 ? 'other' : 'shop' })));
    const all = (await queryAudit(db, { siteId: 'shop' }, undefined, 1000)).rows;
    expect(all).toHaveLength(20);
    const pages: AuditRow[][] = [];
    let cursor: string | undefined;
    do {
      const page = await queryAudit(db, { siteId: 'shop' }, cursor, 7);
      pages.push(page.rows);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(pages.map((p) => p.length)).toEqual([7, 7, 6]);
    expect(pages.flat()).toEqual(all);
    // Rows appended after a page was read are on the following pages, none skipped.
    const first = await queryAudit(db, { siteId: 'shop' }, undefined, 20);
    await s.apply([input({ consentAt: 999 })]);
    expect((await queryAudit(db, { siteId: 'shop' }, first.nextCursor, 20)).rows.map((r) => r.consentAt)).toEqual([999]);
    const streamed: AuditRow[] = [];
    for await (const r of iterateAudit(db, { siteId: 'shop' }, 4)) streamed.push(r);
    expect(streamed.map((r) => r.seq)).toEqual([...all, ...(await queryAudit(db, { siteId: 'shop', from: 999 })).rows].map((r) => r.seq));
  });

  it('rejects a forged cursor and a limit outside 1..1000', async () => {
    await expect(queryAudit(db, { siteId: 'shop' }, 'not-a-cursor')).rejects.toBeInstanceOf(ValidationError);
    await expect(queryAudit(db, { siteId: 'shop' }, Buffer.from('{"v":1,"seq":-1}').toString('base64url'))).rejects.toBeInstanceOf(ValidationError);
    await expect(queryAudit(db, { siteId: 'shop' }, undefined, 1001)).rejects.toBeInstanceOf(ValidationError);
    await expect(queryAudit(db, { siteId: 'shop' }, undefined, 0)).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('audit hash', () => {
  it('is SHA-256 over prev_hash and the canonical JSON of the columns, independent of key order', () => {
    const cols: AuditColumns = {
      site_id: 's', subject_key: 'visitor:v', action: 'accept', item: 'a', consent_at: 1, valid_until: null, message: null, source: 'push', identification: null,
      identification_type: null, imported_at: 2, api_key_id: null, payload_hash: 'h', valid: 1, invalid_reason: null, applied: 1, dedup_key: 'k',
    };
    const reversed = Object.fromEntries(Object.entries(cols).reverse()) as unknown as AuditColumns;
    expect(auditHash(GENESIS_HASH, reversed)).toBe(auditHash(GENESIS_HASH, cols));
    expect(auditHash(GENESIS_HASH, { ...cols, message: '' })).not.toBe(auditHash(GENESIS_HASH, cols));
    expect(auditHash('1'.repeat(64), cols)).not.toBe(auditHash(GENESIS_HASH, cols));
    // Rows from before migration 5 (no attributes) keep their hash; evidence changes it.
    expect(auditHash(GENESIS_HASH, { ...cols, attributes: null })).toBe(auditHash(GENESIS_HASH, cols));
    expect(auditHash(GENESIS_HASH, { ...cols, attributes: '{"email":"a@example.com"}' })).not.toBe(auditHash(GENESIS_HASH, cols));
  });
});
