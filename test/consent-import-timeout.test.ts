import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { startTagwarden, testConfig } from './helpers.ts';

/**
 * A CSV import reads its upload only as fast as the store takes the rows, so on a slow store a
 * large file outlasts `server.requestTimeoutMs`, and Node would cut it with a bare 408, part of the
 * file stored and the client told nothing. The import stops itself first and answers what it
 * stored and where to go on from. Here the store is made slow on the consent clock (each
 * transaction moves it on 12 s), so no test waits on real time: with the default 30 s request
 * timeout, the import stops after the first chunk of 5,000 rows (at 12 s, a second one as long
 * again, with a margin, would end past the 27 s it allows itself), and Node's own timeout never
 * comes near.
 */
describe('CSV import near the request timeout', () => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let key: string;
  const clock = new FakeClock(Date.now());
  const header = 'action,category,valid_until,timestamp,customer_id\n';
  const rows = (from: number, to: number): string => Array.from({ length: to - from }, (_, k) => `accept,analytics,unlimited,${1_700_000_000 + from + k},customer-${from + k}\n`).join('');

  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    const slow: Db = {
      ...db,
      engine: db.engine,
      transaction: async (fn) => {
        const out = await db.transaction(fn);
        clock.advance(12_000);
        return out;
      },
      close: () => db.close(),
    };
    tw = await startTagwarden(testConfig({ site: { id: 'shop', categories: { analytics: {} } } }), undefined, { db: slow, webhooks: false, consentClock: clock });
    key = (await createApiKey(db, { label: 'w', scopes: ['consent:write'] })).key;
  });
  afterAll(async () => {
    await tw.close();
    await db.close();
  });

  const send = (body: string): Promise<Response> => fetch(`${tw.url}/api/v1/consent/import`, { method: 'POST', headers: { 'content-type': 'text/csv', 'x-api-key': key }, body });
  const stored = async (): Promise<number> => Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM audit_log'))?.n ?? 0);

  it('stops before the timeout, answers 408 TW_ERR_IMPORT_INCOMPLETE with the row to resume from, and the rest goes in when sent again', async () => {
    const res = await send(`${header}${rows(0, 30_000)}`);
    expect(res.status).toBe(408);
    expect(res.headers.get('connection')).toBe('close');
    const body = (await res.json()) as { error: { code: string; message: string; details: { resumeFromRow: number; stored: number; rows: number; requestTimeoutMs: number } } };
    expect(body.error.code).toBe('TW_ERR_IMPORT_INCOMPLETE');
    const { resumeFromRow, stored: reported, rows: read, requestTimeoutMs } = body.error.details;
    expect(requestTimeoutMs).toBe(30_000);
    expect(body.error.message).toContain(`row ${resumeFromRow}`);
    // Every row before resumeFromRow is stored (the header is row 1), nothing after it.
    expect(reported).toBe(5_000);
    expect(read).toBe(reported);
    expect(resumeFromRow).toBe(reported + 2);
    expect(await stored()).toBe(reported);

    // The rest of the file from that row, as the answer says (this file has a row per line).
    const rest = await send(`${header}${rows(resumeFromRow - 2, 30_000)}`);
    const second = (await rest.json()) as { error: { details: { resumeFromRow: number; stored: number } } };
    expect(rest.status).toBe(408);
    expect(await stored()).toBe(reported + second.error.details.stored);

    // The whole file again: what is stored is a duplicate, and the import goes on further.
    const again = await send(`${header}${rows(0, 30_000)}`);
    const third = (await again.json()) as { error: { details: { duplicates: number; stored: number } } };
    expect(third.error.details.duplicates).toBeGreaterThan(0);
    expect(third.error.details.stored).toBe(0);
  });

  it('a file that fits in the time is answered 200 as before', async () => {
    const res = await send(`${header}${rows(100_000, 100_100)}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ rows: 100, stored: 100 });
  });
});
