import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { verifyAuditChain } from '../src/store/audit.ts';
import { createConsentStore } from '../src/store/consent.ts';
import { openDb } from '../src/store/open.ts';

/**
 * Crash safety: consent pushes acknowledged (200) by a Tagwarden process that is then killed with
 * SIGKILL mid-stream are all in the store after restart, and the audit chain still verifies.
 * (SQLite in WAL mode, synchronous=NORMAL by default: a commit is in the WAL, in the OS's hands,
 * before the answer, which a process crash cannot take back.)
 */
describe('crash: SIGKILL while consent is being pushed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every acknowledged push, and the audit chain verifies after restart', async () => {
    const storeUrl = `sqlite:${join(dir, 'tagwarden.db')}`;
    const setup = await openDb(storeUrl);
    const key = (await createApiKey(setup, { label: 'crash', scopes: ['consent:write'] })).key;
    await setup.close();
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, site: { id: 'shop', categories: { analytics: {} } }, store: { url: storeUrl }, log: { level: 'info' } }));

    const child = spawn(process.execPath, ['src/main.ts', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"port":(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`tagwarden exited early (${code}): ${out}`)));
    });

    const acknowledged: string[] = [];
    let stop = false;
    const push = async (worker: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const visitorId = `v-${worker}-${i}`;
        try {
          const r = await fetch(`http://127.0.0.1:${port}/api/v1/consent`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-api-key': key },
            body: JSON.stringify({ visitorId, categories: { analytics: i % 2 === 0 } }),
          });
          if (r.status === 200) acknowledged.push(visitorId);
        } catch {
          return; // the process is gone
        }
      }
    };
    const workers = [0, 1, 2, 3].map(push);
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGKILL');
    stop = true;
    await Promise.all(workers);
    await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    expect(acknowledged.length).toBeGreaterThan(10);

    // Restart: open the same file (recovery of the WAL happens here) and check everything.
    const db = await openDb(storeUrl);
    try {
      const store = createConsentStore(db);
      for (const visitorId of acknowledged) {
        const consent = await store.read('shop', { type: 'visitor', id: visitorId });
        expect(consent?.items.analytics, visitorId).toBeDefined();
      }
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    } finally {
      await db.close();
    }
  }, 30_000);
});
