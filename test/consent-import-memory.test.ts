import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { startTagwarden, testConfig } from './helpers.ts';

/**
 * A 100 MB CSV import does not sit in memory: the body is streamed through the CSV reader a chunk
 * at a time. The file is generated on the fly (never held by the test either) and its rows are
 * refused before the store (no customer id), so the test measures the streaming path, not SQLite.
 */
describe('CSV import memory', () => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let key: string;

  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    tw = await startTagwarden(testConfig({ site: { id: 'shop', categories: { analytics: {} } }, api: { maxCsvBytes: 200 * 1024 * 1024 } }), undefined, { db, webhooks: false });
    key = (await createApiKey(db, { label: 'w', scopes: ['consent:write'] })).key;
  });
  afterAll(async () => {
    await tw.close();
    await db.close();
  });

  it('streams a 100 MB file with a bounded heap', async () => {
    const row = 'accept,analytics,unlimited,1522156555,\n'; // no customer id: reported, not stored
    const chunk = Buffer.from(row.repeat(Math.floor(65_536 / row.length)));
    const total = 100 * 1024 * 1024;
    let sent = 0;
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 20);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(Buffer.from('action,category,valid_until,timestamp,customer_id\n'));
      },
      pull(controller) {
        if (sent >= total) {
          controller.close();
          return;
        }
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
    const res = await fetch(`${tw.url}/api/v1/consent/import`, { method: 'POST', headers: { 'content-type': 'text/csv', 'x-api-key': key }, body, duplex: 'half' });
    const report = (await res.json()) as { rows: number; stored: number; errors: unknown[]; errorsTruncated: boolean };
    clearInterval(sampler);
    expect(res.status).toBe(200);
    expect(report.rows).toBeGreaterThan(2_500_000);
    expect(report.stored).toBe(0);
    expect(report.errors).toHaveLength(1000);
    expect(report.errorsTruncated).toBe(true);
    // 100 MB went through; the heap grew by far less than the file (GC timing allows some slack).
    expect(peak - before).toBeLessThan(48 * 1024 * 1024);
  }, 120_000);
});
