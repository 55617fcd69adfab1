import { afterEach, beforeEach, expect, it } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { verifyAuditState } from './audit.ts';
import { createConsentStore } from './consent.ts';
import type { Db } from './db.ts';
import type { ConsentInput, InputOutcome, SubjectRef } from './types.ts';
import { FakeClock } from '../lib/fake-clock.ts';

/**
 * A batch of 20 inputs or more goes through the store's bulk path (runs of inputs that link
 * nothing in a few multi-row statements); fewer go one by one. Both must leave exactly the same
 * log (every hashed column, prev_hash and hash, in chain order), items, profiles and outcomes:
 * here the same random inputs are applied as one batch to one store, and as one batch that goes
 * one by one (`bulkFrom: Infinity`) to another. Seqs are compared through the hash of their row (PostgreSQL burns identity values on
 * conflicting inserts, so the numbers themselves may differ between the two).
 */
const SITE = 'shop';
const SUBJECTS: SubjectRef[] = [
  { type: 'visitor', id: 'v1' },
  { type: 'visitor', id: 'v2' },
  { type: 'user', id: 'u1' },
  { type: 'user', id: 'u2' },
  { type: 'user', id: 'u3' },
];

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function inputs(seed: number, n: number): ConsentInput[] {
  const r = rng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
  const out: ConsentInput[] = [];
  for (let i = 0; i < n; i++) {
    // Exact repeats are duplicates (of a row of this batch or of one stored before).
    if (out.length > 0 && r() < 0.15) {
      out.push({ ...pick(out) });
      continue;
    }
    const valid = r() > 0.15;
    const input: ConsentInput = {
      siteId: SITE,
      subject: pick(SUBJECTS),
      action: r() < 0.5 ? 'accept' : 'reject',
      item: pick(['analytics', 'advertising', 'functional']),
      // Few distinct times: ties decide by the precedence rule, not by arrival.
      consentAt: 1000 + Math.floor(r() * 4) * 100,
      validUntil: r() < 0.3 ? 1500 : r() < 0.1 ? 4000 : null,
      source: pick(['import', 'push']),
      valid,
      payloadHash: String(i % 7).repeat(64),
      ...(valid ? {} : { invalidReason: 'timestamp: invalid' }),
      ...(r() < 0.2 ? { attributes: { email: `x${i}@example.com` } } : {}),
      ...(r() < 0.1 ? { dedupKey: `key-${Math.floor(r() * 3)}` } : {}),
    };
    // Now and then an input that links (a visitor with a user): the bulk path hands it over.
    if (r() < 0.08) input.links = [pick(SUBJECTS)].filter((l) => l.id !== input.subject.id);
    out.push(input);
  }
  return out;
}

interface Snapshot {
  log: unknown[];
  items: unknown[];
  records: unknown[];
  profiles: string[][];
  outcomes: unknown[];
}

async function snapshot(db: Db, outcomes: InputOutcome[]): Promise<Snapshot> {
  const log = await db.all<Record<string, unknown>>('SELECT * FROM audit_log ORDER BY seq');
  const hashOf = new Map(log.map((r) => [Number(r.seq), r.hash]));
  const items = await db.all<Record<string, unknown>>('SELECT * FROM consent_items ORDER BY site_id, subject_key, item');
  const records = await db.all<Record<string, unknown>>('SELECT site_id, subject_key, tcf_string, gcm, consent_type, geo_country, consent_at, source FROM consent_records ORDER BY site_id, subject_key');
  const subjects = await db.all<{ subject_key: string; profile_id: string }>('SELECT subject_key, profile_id FROM subjects ORDER BY subject_key');
  const byProfile = new Map<string, string[]>();
  for (const s of subjects) byProfile.set(s.profile_id, [...(byProfile.get(s.profile_id) ?? []), s.subject_key]);
  return {
    log: log.map(({ seq: _seq, ...rest }) => rest),
    items: items.map((i) => ({ ...i, audit_seq: hashOf.get(Number(i.audit_seq)) })),
    records,
    profiles: [...byProfile.values()].map((m) => m.sort()).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    outcomes: outcomes.map((o) => ({ ...o, auditSeq: o.auditSeq === null ? null : hashOf.get(o.auditSeq) })),
  };
}

forEachEngine('consent store: bulk apply = one by one', (engine) => {
  let bulk: Db;
  let single: Db;
  beforeEach(async () => {
    bulk = await engine.open();
    single = await engine.open();
  });
  afterEach(async () => {
    await bulk.close();
    await single.close();
  });

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}: the same log, hashes, items, profiles and outcomes`, async () => {
      const changesA: unknown[] = [];
      const changesB: unknown[] = [];
      const a = createConsentStore(bulk, { clock: new FakeClock(5_000), onChanges: (_tx, list) => Promise.resolve(void changesA.push(...list)) });
      const b = createConsentStore(single, { clock: new FakeClock(5_000), bulkFrom: Infinity, onChange: (_tx, c) => Promise.resolve(void changesB.push(c)) });
      // What was there before: a linked profile and some state, the same on both.
      const before = inputs(seed + 100, 8).map((x, i) => (i === 0 ? { ...x, subject: SUBJECTS[2]!, links: [SUBJECTS[0]!] } : x));
      for (const x of before) {
        await a.apply([x]);
        await b.apply([x]);
      }
      const batch = [...inputs(seed, 120), ...before.slice(1, 4)];
      const outA = await a.apply(batch);
      const outB = await b.apply(batch);
      const sa = await snapshot(bulk, outA);
      const sb = await snapshot(single, outB);
      expect(sa.log.length).toBeGreaterThan(50);
      expect(sa).toEqual(sb);
      // The same changes announced, in the same order, with the same versions.
      expect(changesA).toEqual(changesB);
      expect(await verifyAuditState(bulk)).toMatchObject({ ok: true });
      for (const s of SUBJECTS) {
        const { version: _va, updatedAt: _ua, ...ra } = (await a.read(SITE, s, 2_000)) ?? { version: 0, updatedAt: 0 };
        const { version: _vb, updatedAt: _ub, ...rb } = (await b.read(SITE, s, 2_000)) ?? { version: 0, updatedAt: 0 };
        expect(ra).toEqual(rb);
      }
    });
  }

  it('a batch announces each changed subject once, as one-by-one applies do', async () => {
    const changes: string[] = [];
    const a = createConsentStore(bulk, { clock: new FakeClock(5_000), onChanges: (_tx, list) => Promise.resolve(void changes.push(...list.map((c) => `${c.subject.id}:${c.items.map((i) => i.item).join(',')}`))) });
    const batch = Array.from({ length: 30 }, (_, i): ConsentInput => ({ siteId: SITE, subject: SUBJECTS[i % 3]!, action: 'accept', item: `c${i % 4}`, consentAt: 1000 + i, validUntil: null, source: 'import', valid: true, payloadHash: 'p'.repeat(64) }));
    await a.apply(batch);
    expect(changes.sort()).toEqual(['u1:c0,c1,c2,c3', 'v1:c0,c1,c2,c3', 'v2:c0,c1,c2,c3']);
    // Again: every input a duplicate, nothing changes, nothing is announced.
    const again = await a.apply(batch);
    expect(again.every((o) => o.duplicate)).toBe(true);
    expect(changes).toHaveLength(3);
  });
});
