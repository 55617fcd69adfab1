import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { journalSize } from '../src/store/journal.ts';
import { openDb } from '../src/store/open.ts';
import { forEachEngine } from './engines.ts';
import { exited, killSpawned, spawnTagwarden, startVendor } from './helpers.ts';

/**
 * Regression (issue 11): 2,000 events acknowledged with 200 while the vendor answered 503, then
 * `kill -9`, then a restart with the vendor up: 0 of 2,000 were delivered (they lived in memory).
 * Now every acknowledged hit is in the journal before its 200, so after the restart every
 * acknowledged messageId reaches the vendor, and once, since none had been delivered before the
 * crash. Then a SIGTERM, and the journal is empty: finished hits leave it.
 */
forEachEngine('crash: SIGKILL with 2,000 acknowledged events undelivered', (engine) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-delivery-crash-'));
  afterAll(async () => {
    // A failed run must not leave servers behind.
    await killSpawned();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every acknowledged event after the restart, each once', async () => {
    let storeUrl: string;
    if (engine.name === 'sqlite') storeUrl = `sqlite:${join(dir, 'tagwarden.db')}`;
    else {
      await (await engine.open()).close(); // a fresh, migrated schema
      storeUrl = engine.url();
    }
    let up = false;
    const vendor = await startVendor(() => (up ? { status: 200, body: '{}' } : { status: 503, body: '{"error":"down"}' }));
    try {
      const config = join(dir, `config-${engine.name}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          server: { host: '127.0.0.1', port: 0 },
          site: { id: 'shop', dataControlMode: 'disabled', categories: { analytics: {} } },
          store: { url: storeUrl },
          log: { level: 'info' },
          // A short lease: on PostgreSQL the restarted instance takes over the killed one's hits once it lapses.
          delivery: { baseDelayMs: 50, maxDelayMs: 200, maxAttempts: 10_000, journal: { leaseMs: 2000 } },
          destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` } }],
        }),
      );

      const first = spawnTagwarden(config);
      const port = await first.port;
      const acknowledged: string[] = [];
      for (let b = 0; b < 20; b++) {
        const batch = Array.from({ length: 100 }, (_, i) => ({ type: 'track', event: 'Order Completed', messageId: `m-${b}-${i}`, anonymousId: `v-${i}` }));
        const r = await fetch(`http://127.0.0.1:${port}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ batch }) });
        expect(r.status).toBe(200);
        acknowledged.push(...batch.map((e) => e.messageId));
      }
      // Some attempts meet the 503 before the crash: nothing was delivered.
      const until = Date.now() + 5000;
      while (vendor.hits.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(vendor.hits.length).toBeGreaterThan(0);
      first.child.kill('SIGKILL');
      await exited(first.child);

      up = true;
      vendor.hits.length = 0;
      const second = spawnTagwarden(config);
      await second.port;
      const delivered = (): string[] => vendor.hits.filter((h) => h.path === '/hook').flatMap((h) => (h.body as { batch: Array<{ messageId: string }> }).batch.map((e) => e.messageId));
      const deadline = Date.now() + 20_000;
      while (new Set(delivered()).size < acknowledged.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const got = delivered();
      expect(new Set(got)).toEqual(new Set(acknowledged));
      expect(got).toHaveLength(acknowledged.length);

      second.child.kill('SIGTERM');
      await exited(second.child);
      const db = await openDb(storeUrl);
      try {
        expect(await journalSize(db, 'shop')).toEqual({ hits: 0, bytes: 0, dead: 0 });
      } finally {
        await db.close();
      }
    } finally {
      await vendor.close();
    }
  }, 60_000);
});
