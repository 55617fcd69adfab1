import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { forEachEngine } from './engines.ts';
import { exited, killSpawned, spawnTagwarden, startVendor } from './helpers.ts';

/**
 * Two instances on one PostgreSQL share the delivery journal (issue 11): while both run, each sends
 * the hits it answered, so every event arrives exactly once; when one is SIGKILLed with its events
 * undelivered (the vendor down), the other takes them over once the dead one's lease lapses
 * (FOR UPDATE SKIP LOCKED), and every acknowledged event arrives, once.
 */
forEachEngine('journal: two instances on one PostgreSQL', (engine) => {
  if (engine.name !== 'postgres') {
    describe.skip('(PostgreSQL only: one SQLite file serves one instance)', () => undefined);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tw-instances-'));
  afterAll(async () => {
    // A failed run must not leave servers behind.
    await killSpawned();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exactly once while both run; at least once, and here once, after one is SIGKILLed', async () => {
    await (await engine.open()).close(); // a fresh, migrated schema
    let up = true;
    const accepted: string[] = [];
    // Only what the vendor accepted counts as delivered (a 503 is an attempt, not a delivery).
    const vendor = await startVendor((hit) => {
      if (!up) return { status: 503, body: '{}' };
      if (hit.path === '/hook') for (const e of (hit.body as { batch: Array<{ messageId: string }> }).batch) accepted.push(e.messageId);
      return { status: 200, body: '{}' };
    });
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0 },
        site: { id: 'shop', dataControlMode: 'disabled', categories: {} },
        store: { url: engine.url() },
        log: { level: 'info' }, // the listening line (its port) is logged at info
        // Retries back off to 1 s so the outage's retry storm cannot starve the answers on a loaded machine (delivery-crash.test.ts).
        delivery: { baseDelayMs: 50, maxDelayMs: 1000, maxAttempts: 10_000, journal: { leaseMs: 2000 } },
        destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` } }],
      }),
    );
    const a = spawnTagwarden(config);
    const b = spawnTagwarden(config);
    const ports = [await a.port, await b.port];
    const delivered = (): string[] => accepted;
    const send = async (prefix: string, n: number, to: number[]): Promise<string[]> => {
      const sent: string[] = [];
      for (let i = 0; i < n; i++) {
        const messageId = `${prefix}-${i}`;
        const r = await fetch(`http://127.0.0.1:${to[i % to.length]}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event: 'E', messageId, anonymousId: `v-${i % 7}` }) });
        expect(r.status).toBe(200);
        sent.push(messageId);
      }
      return sent;
    };
    const waitFor = async (ids: readonly string[], ms: number): Promise<void> => {
      const deadline = Date.now() + ms;
      const want = new Set(ids);
      while (Date.now() < deadline && ![...want].every((id) => delivered().includes(id))) await new Promise((r) => setTimeout(r, 50));
    };
    try {
      // Both running: each hit goes out once, by the instance that answered it.
      const both = await send('both', 300, ports);
      await waitFor(both, 15_000);
      const once = delivered().filter((id) => id.startsWith('both-'));
      expect(new Set(once)).toEqual(new Set(both));
      expect(once).toHaveLength(both.length);

      // The vendor goes down; A answers its share, then dies with all of it undelivered.
      up = false;
      const ofA = await send('a', 150, [ports[0]!]);
      const ofB = await send('b', 150, [ports[1]!]);
      const until = Date.now() + 5000;
      while (vendor.hits.filter((h) => JSON.stringify(h.body).includes('"a-')).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      a.child.kill('SIGKILL');
      await exited(a.child);
      up = true;
      await waitFor([...ofA, ...ofB], 25_000);
      const after = delivered().filter((id) => id.startsWith('a-') || id.startsWith('b-'));
      expect(new Set(after)).toEqual(new Set([...ofA, ...ofB]));
      expect(after).toHaveLength(ofA.length + ofB.length);
    } finally {
      a.child.kill('SIGKILL');
      b.child.kill('SIGTERM');
      await exited(b.child);
      await vendor.close();
    }
  }, 90_000);
});
