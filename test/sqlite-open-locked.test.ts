import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../src/store/open.ts';

/**
 * Regression (CI, 2026-12-04): two processes opening a new SQLite file at once (the shared-limits
 * test's grant takers; workers or the CLI beside a server) failed with "database is locked": the
 * switch to WAL needs the file's lock, and the busy timeout was set only after it, so the second
 * opener gave up at once instead of waiting. The timeout now comes first.
 */
describe('opening a SQLite file another process has locked', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('waits for the lock instead of failing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-locked-'));
    const path = join(dir, 'store.db');
    // A new file, locked exclusively for 40 ms by another process (still in rollback mode, so the
    // opener's switch to WAL must wait for it).
    const holder = spawn(
      process.execPath,
      ['-e', `const { DatabaseSync } = require('node:sqlite'); const db = new DatabaseSync(${JSON.stringify(path)}); db.exec('CREATE TABLE t (x)'); db.exec('BEGIN EXCLUSIVE'); db.exec('INSERT INTO t VALUES (1)'); console.log('locked'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, 40);`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<number | null>((resolve) => holder.once('exit', resolve));
    for await (const line of createInterface({ input: holder.stdout })) if (line === 'locked') break;
    const db = await openDb(`sqlite:${path}`);
    try {
      expect(await db.get<{ n: number }>('SELECT count(*) AS n FROM t')).toEqual({ n: 1 });
    } finally {
      await db.close();
    }
    expect(await exited).toBe(0);
  });
});
