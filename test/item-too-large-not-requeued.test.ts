import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUEUE_MS } from '../src/delivery/journal-runtime.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * Regression: DeliverySink.enqueue returned a boolean, so every refusal was taken for queue_full.
 * With the journal on, an event larger than its destination's whole batch (item_too_large, the
 * webhook's 500 000 bytes) was re-queued every REQUEUE_MS forever, logged and never counted. Now
 * it is refused once, counted failed with its own reason, logged once and never tried again.
 */
describe('an event too large for its destination is refused as item_too_large once, not re-queued', () => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  const lines: Array<Record<string, unknown>> = [];
  const deliveryClock = new FakeClock(Date.now());

  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        server: { maxEventBytes: 1_048_576 },
        site: { id: 'shop', dataControlMode: 'disabled', categories: {} },
        destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` } }],
      }),
      pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
      { db, deliveryClock },
    );
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  it('is counted failed{reason=item_too_large} once, logged once, never sent nor tried again', async () => {
    const r = await post(`${tw.url}/v1/track`, { messageId: 'm-huge', event: 'Big', anonymousId: 'a-1', properties: { blob: 'x'.repeat(600_000) } });
    expect(r.status).toBe(200);
    for (let i = 0; i < 5; i++) {
      await tw.app.flush(1000);
      // With the bug, each step past REQUEUE_MS decided the event again and refused it again.
      deliveryClock.advance(REQUEUE_MS + 1);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await tw.app.flush(1000);
    const text = await (await fetch(`${tw.url}/metrics`)).text();
    expect(text).toMatch(/tagwarden_decisions_total\{destination="hook",outcome="failed",reason="item_too_large"\} 1\n/);
    expect(text).not.toMatch(/tagwarden_decisions_total\{destination="hook",outcome="failed",reason="queue_full"\}/);
    expect(text).not.toMatch(/tagwarden_held_events\{destination="hook"\} [1-9]/);
    const refused = lines.filter((l) => l.msg === 'delivery not completed');
    expect(refused).toEqual([expect.objectContaining({ level: 40, destination: 'hook', outcome: 'failed', reason: 'item_too_large', code: 'TW_ERR_RENDER' })]);
    expect(vendor.hits).toEqual([]);
  });
});

describe('without the journal, the same event is counted with its own reason, not queue_full', () => {
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;

  beforeAll(async () => {
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        server: { maxEventBytes: 1_048_576 },
        site: { id: 'shop', dataControlMode: 'disabled', categories: {} },
        destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` } }],
      }),
    );
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
  });

  it('is failed{reason=item_too_large}', async () => {
    expect((await post(`${tw.url}/v1/track`, { messageId: 'm-huge', event: 'Big', anonymousId: 'a-1', properties: { blob: 'x'.repeat(600_000) } })).status).toBe(200);
    await tw.app.flush(1000);
    const text = await (await fetch(`${tw.url}/metrics`)).text();
    expect(text).toMatch(/tagwarden_decisions_total\{destination="hook",outcome="failed",reason="item_too_large"\} 1\n/);
    expect(text).not.toMatch(/reason="queue_full"/);
  });
});
