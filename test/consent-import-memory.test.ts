import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { startTagwarden, testConfig } from './helpers.ts';

/**
 * A CSV import does not sit in memory: rows are parsed and committed (one transaction per 5,000
 * rows) while the file is still arriving. The test sends 6,000 rows, holds the upload open, and
 * sees the first 5,000 in the store before it sends the end of the file: a server that buffered
 * the body would have stored nothing yet. (Heap figures were tried and are not a reliable measure:
 * garbage counts until the GC runs.)
 */
describe('CSV import streaming', () => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let key: string;

  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    tw = await startTagwarden(testConfig({ site: { id: 'shop', categories: { analytics: {} } } }), undefined, { db, webhooks: false });
    key = (await createApiKey(db, { label: 'w', scopes: ['consent:write'] })).key;
  });
  afterAll(async () => {
    await tw.close();
    await db.close();
  });

  it('commits the first chunk of rows before the file has finished arriving', async () => {
    const rows = (from: number, to: number): string =>
      Array.from({ length: to - from }, (_, k) => `accept,analytics,unlimited,${1_700_000_000 + from + k},customer-${from + k}\n`).join('');
    let finish: () => void = () => undefined;
    const rest = new Promise<void>((resolve) => (finish = resolve));
    let step = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (step === 0) controller.enqueue(Buffer.from(`action,category,valid_until,timestamp,customer_id\n${rows(0, 6000)}`));
        else if (step === 1) {
          await rest;
          controller.enqueue(Buffer.from(rows(6000, 6100)));
        } else controller.close();
        step++;
      },
    });
    const upload = fetch(`${tw.url}/api/v1/consent/import`, { method: 'POST', headers: { 'content-type': 'text/csv', 'x-api-key': key }, body, duplex: 'half' });
    let stored = 0;
    for (let i = 0; i < 200 && stored < 5000; i++) {
      stored = Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM audit_log'))?.n ?? 0);
      if (stored < 5000) await new Promise((r) => setTimeout(r, 25));
    }
    // The first transaction is in while the upload is still open.
    expect(stored).toBe(5000);
    finish();
    const res = await upload;
    expect(await res.json()).toMatchObject({ rows: 6100, stored: 6100, errors: [] });
  }, 30_000);

  it('a file over api.maxCsvBytes gets 413, and a JSON body over api.maxBodyBytes too', async () => {
    const small = await openDb('sqlite::memory:');
    const tw2 = await startTagwarden(testConfig({ site: { id: 'shop', categories: { analytics: {} } }, api: { maxCsvBytes: 2048, maxBodyBytes: 1024 } }), undefined, { db: small, webhooks: false });
    try {
      const k = (await createApiKey(small, { label: 'w', scopes: ['consent:write'] })).key;
      const file = `action,category,valid_until,timestamp,customer_id\n${'accept,analytics,unlimited,1700000000,c\n'.repeat(100)}`;
      const r = await fetch(`${tw2.url}/api/v1/consent/import`, { method: 'POST', headers: { 'content-type': 'text/csv', 'x-api-key': k }, body: file });
      expect(r.status).toBe(413);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('TW_ERR_PAYLOAD_TOO_LARGE');
      const big = await fetch(`${tw2.url}/api/v1/consent`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': k }, body: JSON.stringify({ visitorId: 'v', message: 'x'.repeat(2000), categories: { analytics: true } }) });
      expect(big.status).toBe(413);
    } finally {
      await tw2.close();
      await small.close();
    }
  });
});
