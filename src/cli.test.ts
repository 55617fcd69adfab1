import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forEachEngine } from '../test/engines.ts';
import { createKeyCache, requireScope } from './api/auth.ts';
import { findApiKey, hashApiKey, listApiKeys } from './api/keys.ts';
import { createApp } from './app.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, runCli } from './cli.ts';
import { loadConfigWithTemplates } from './destinations/load-config.ts';
import { FakeClock } from './lib/fake-clock.ts';
import { errorHandler } from './http/errors.ts';
import type { Db } from './store/db.ts';
import { openDb } from './store/open.ts';
import { createConsentStore } from './store/consent.ts';
import { appendHits, claimLapsed, listDead, putWork, type WorkRow } from './store/journal.ts';

const KEY = /tw_[A-Za-z0-9_-]{43}/g;

async function cli(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env });
  return { code, stdout, stderr };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tw-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

forEachEngine('cli keys', (engine) => {
  let db: Db;
  let url: string;
  beforeEach(async () => {
    if (engine.name === 'sqlite') {
      // The CLI opens its own connection: a file both can see, not :memory:.
      url = `sqlite:${join(dir, 'tw.db')}`;
      db = await openDb(url);
    } else {
      db = await engine.open();
      url = engine.url();
    }
  });
  afterEach(async () => {
    await db.close();
  });

  it('create prints the key once, with its id and scopes; the key then authenticates', async () => {
    const r = await cli(['keys', 'create', '--scopes', 'consent:write,consent:read', '--label', 'crm', '--store', url]);
    expect(r.code).toBe(EXIT_OK);
    expect(r.stderr).toBe('');
    const keys = r.stdout.match(KEY);
    expect(keys).toHaveLength(1);
    const key = keys![0];
    const id = /key_[0-9a-f]{12}/.exec(r.stdout)?.[0];
    expect(r.stdout).toContain('consent:write,consent:read');
    expect(r.stdout).toMatch(/shown only this once/);

    const found = await findApiKey(db, key);
    expect(found).toMatchObject({ id, label: 'crm', scopes: ['consent:write', 'consent:read'] });
    const app = express();
    app.post('/w', requireScope('consent:write', { keys: createKeyCache(db) }), (_req, res) => {
      res.json({ id: res.locals.apiKeyId as unknown });
    });
    app.use(errorHandler(pino({ level: 'silent' })));
    expect((await request(app).post('/w').set('Authorization', `Bearer ${key}`)).body).toEqual({ id });
    expect((await request(app).post('/w')).status).toBe(401);
  });

  it('create --json for scripts', async () => {
    const r = await cli(['keys', 'create', '--scopes=admin', '--store', url, '--json']);
    expect(r.code).toBe(EXIT_OK);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ id: expect.stringMatching(/^key_/), key: expect.stringMatching(/^tw_/), label: '', scopes: ['admin'] });
    expect((await findApiKey(db, out.key))?.id).toBe(out.id);
  });

  it('list shows ids, labels, scopes and dates, never the key or its hash', async () => {
    const empty = await cli(['keys', 'list', '--store', url]);
    expect(empty).toMatchObject({ code: EXIT_OK, stdout: expect.stringMatching(/no API keys/) });
    const a = JSON.parse((await cli(['keys', 'create', '--scopes', 'audit:read', '--label', 'auditor', '--store', url, '--json'])).stdout);
    const b = JSON.parse((await cli(['keys', 'create', '--scopes', 'consent:read', '--label', 'bi', '--store', url, '--json'])).stdout);
    const r = await cli(['keys', 'list', '--store', url]);
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toMatch(/^ID\s+LABEL\s+SCOPES\s+CREATED\s+LAST USED\s+REVOKED$/m);
    expect(r.stdout).toMatch(new RegExp(`^${a.id}\\s+auditor\\s+audit:read\\s`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^${b.id}\\s+bi\\s+consent:read\\s`, 'm'));
    const json = await cli(['keys', 'list', '--store', url, '--json']);
    for (const text of [r.stdout, json.stdout]) {
      expect(text).not.toMatch(KEY);
      expect(text).not.toContain(hashApiKey(a.key));
    }
    // Listed by creation time, then id (two keys made in the same millisecond come in id order).
    const listed = JSON.parse(json.stdout) as Array<{ id: string; createdAt: number }>;
    expect(listed.map((k) => k.id).sort()).toEqual([a.id as string, b.id as string].sort());
    expect(listed).toEqual([...listed].sort((x, y) => x.createdAt - y.createdAt || x.id.localeCompare(y.id)));
  });

  it('revoke: the key stops authenticating; again is harmless; an unknown id fails', async () => {
    const { id, key } = JSON.parse((await cli(['keys', 'create', '--scopes', 'consent:read', '--store', url, '--json'])).stdout);
    const r = await cli(['keys', 'revoke', id, '--store', url]);
    expect(r).toMatchObject({ code: EXIT_OK, stdout: expect.stringContaining(`Revoked ${id}`) });
    expect(await findApiKey(db, key)).toBeUndefined();
    expect((await listApiKeys(db))[0]!.revokedAt).toEqual(expect.any(Number));
    expect(await cli(['keys', 'revoke', id, '--store', url])).toMatchObject({ code: EXIT_OK, stdout: expect.stringContaining('already revoked') });
    expect(await cli(['keys', 'revoke', 'key_000000000000', '--store', url])).toMatchObject({ code: EXIT_FAILED, stderr: expect.stringContaining('no API key key_000000000000') });
  });

  it('an unknown scope exits 2 with a clear message and stores nothing', async () => {
    const r = await cli(['keys', 'create', '--scopes', 'consent:read,consent:delete', '--store', url]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/unknown scope "consent:delete"/);
    expect(await listApiKeys(db)).toEqual([]);
  });
});

describe('cli usage', () => {
  it.each<[string[], RegExp]>([
    [[], /Usage:/],
    [['keys'], /keys needs a command/],
    [['keys', 'rotate'], /unknown command "keys rotate"/],
    [['users', 'list'], /unknown command "users"/],
    [['keys', 'create'], /needs --scopes/],
    [['keys', 'create', '--scopes', ''], /at least one scope/],
    [['keys', 'create', '--scopes'], /--scopes needs a value/],
    [['keys', 'create', '--scopes', 'admin', '--force'], /unknown option --force/],
    [['keys', 'revoke'], /needs the key id/],
    [['keys', 'list', 'extra'], /unexpected argument "extra"/],
  ])('%j exits 2', async (argv, message) => {
    const r = await cli([...argv, '--store', `sqlite:${join(dir, 'never.db')}`].slice(0, argv.length === 0 ? 0 : undefined));
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(dir, 'never.db'))).toBe(false);
  });

  it('--help prints the usage on stdout and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r).toMatchObject({ code: EXIT_OK, stderr: '' });
    expect(r.stdout).toMatch(/keys create --scopes/);
  });
});

describe('cli store URL', () => {
  const yaml = (storeUrl?: string) => `site:\n  id: shop\n${storeUrl === undefined ? '' : `store:\n  url: ${JSON.stringify(storeUrl)}\n`}`;

  it('reads store.url from --config (with ${VAR} expanded)', async () => {
    const config = join(dir, 'tw.yaml');
    writeFileSync(config, yaml('${TW_DB}'));
    const r = await cli(['keys', 'create', '--scopes', 'admin', '--config', config, '--json'], { TW_DB: `sqlite:${join(dir, 'from-config.db')}` });
    expect(r.code).toBe(EXIT_OK);
    const db = await openDb(`sqlite:${join(dir, 'from-config.db')}`);
    try {
      expect((await listApiKeys(db)).map((k) => k.id)).toEqual([JSON.parse(r.stdout).id]);
    } finally {
      await db.close();
    }
  });

  it('--store wins over the config; TAGWARDEN_CONFIG names the config', async () => {
    const config = join(dir, 'tw.yaml');
    writeFileSync(config, yaml(`sqlite:${join(dir, 'config.db')}`));
    expect((await cli(['keys', 'list', '--store', `sqlite:${join(dir, 'flag.db')}`], { TAGWARDEN_CONFIG: config })).code).toBe(EXIT_OK);
    expect(existsSync(join(dir, 'flag.db'))).toBe(true);
    expect(existsSync(join(dir, 'config.db'))).toBe(false);
    expect((await cli(['keys', 'list'], { TAGWARDEN_CONFIG: config })).code).toBe(EXIT_OK);
    expect(existsSync(join(dir, 'config.db'))).toBe(true);
  });

  it('without --store or a config file: sqlite:./data/tagwarden.db', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect((await cli(['keys', 'list'])).code).toBe(EXIT_OK);
      expect(existsSync(join(dir, 'data', 'tagwarden.db'))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  it('a named config that cannot be read fails with exit 1', async () => {
    const r = await cli(['keys', 'list', '--config', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(EXIT_FAILED);
    expect(r.stderr).toMatch(/cannot read configuration/);
  });
});

describe('cli as a process', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [join(import.meta.dirname, 'cli.ts'), ...args], { encoding: 'utf8' });

  it('node src/cli.ts runs runCli and exits with its code', () => {
    const bad = run(['keys', 'create', '--scopes', 'root']);
    expect(bad.status).toBe(EXIT_USAGE);
    expect(bad.stderr).toMatch(/unknown scope "root"/);
    const ok = run(['keys', 'create', '--scopes', 'consent:read', '--store', `sqlite:${join(dir, 'proc.db')}`]);
    expect(ok.status).toBe(EXIT_OK);
    expect(ok.stdout.match(KEY)).toHaveLength(1);
  });
});

describe('cli audit verify', () => {
  it('reports an intact chain (exit 0) and a tampered one (exit 1)', async () => {
    const url = `sqlite:${join(dir, 'audit.db')}`;
    const db = await openDb(url);
    const store = createConsentStore(db);
    await store.apply([1, 2, 3].map((i) => ({ siteId: 's', subject: { type: 'user' as const, id: `u${i}` }, action: 'accept' as const, item: 'newsletter', consentAt: 1_700_000_000_000 + i, validUntil: null, source: 'import', valid: true, payloadHash: 'p'.repeat(64) })));
    expect(await cli(['audit', 'verify', '--store', url])).toMatchObject({ code: EXIT_OK, stdout: 'audit chain intact: 3 rows; stored state matches the log\n' });
    // A state row edited behind the log's back (issue 13): the chain alone would still verify.
    await db.run("UPDATE consent_items SET status = 'denied' WHERE subject_key = 'user:u1'");
    expect(await cli(['audit', 'verify', '--store', url])).toMatchObject({
      code: EXIT_FAILED,
      stdout: 'stored state DIFFERS from the audit log: site s, user:u1, item newsletter, status: stored "denied", log implies "granted"\n',
    });
    await db.run("UPDATE consent_items SET status = 'granted' WHERE subject_key = 'user:u1'");
    await db.run("UPDATE audit_log SET action = 'reject' WHERE subject_key = 'user:u2'");
    const broken = await cli(['audit', 'verify', '--store', url, '--json']);
    expect(broken.code).toBe(EXIT_FAILED);
    expect(JSON.parse(broken.stdout)).toMatchObject({ ok: false, reason: 'hash_mismatch' });
    expect((await cli(['audit', 'check', '--store', url])).code).toBe(EXIT_USAGE);
    await db.close();
  });
});

// A dead letter as the delivery leaves it: the whole event (with personal data) kept in the hit.
const PII_EVENT = {
  type: 'track',
  event: 'Order Completed',
  messageId: 'm-dead-1',
  anonymousId: 'v-1',
  traits: { email: 'jane@example.com' },
  context: { ip: '203.0.113.9', userAgent: 'Mozilla/5.0 (secret UA)' },
  properties: { revenue: 42 },
};
async function seedDead(db: Db): Promise<number[]> {
  const ids = await appendHits(
    db,
    [1, 2, 3].map((n) => ({ siteId: 'shop', receivedAt: Date.parse('2026-01-01T00:00:00Z') + n, payload: JSON.stringify({ event: { ...PII_EVENT, messageId: `m-dead-${n}` }, signals: { ip: '203.0.113.9' } }) })),
    'gone-instance',
    1,
  );
  const dead = (hitId: number, destinationId: string, over: Partial<WorkRow>): WorkRow => ({
    hitId,
    destinationId,
    state: 'dead',
    notBefore: Date.parse('2026-01-02T00:00:00Z'),
    attempts: 1,
    firstAttemptAt: 1,
    reason: 'status_400',
    code: 'TW_ERR_DELIVERY_REJECTED',
    lastStatus: 400,
    excerpt: '{"error":{"message":"Invalid parameter",\n"code":100}}',
    updatedAt: 1,
    ...over,
  });
  await putWork(db, [
    dead(ids[0]!, 'meta', {}),
    dead(ids[1]!, 'meta', { notBefore: Date.parse('2026-01-03T00:00:00Z'), reason: 'max_total_time', lastStatus: 503 }),
    dead(ids[2]!, 'hook', { notBefore: Date.parse('2026-01-04T00:00:00Z') }),
  ]);
  return ids;
}

forEachEngine('cli dlq', (engine) => {
  let db: Db;
  let url: string;
  let ids: number[];
  beforeEach(async () => {
    if (engine.name === 'sqlite') {
      url = `sqlite:${join(dir, 'tw.db')}`;
      db = await openDb(url);
    } else {
      db = await engine.open();
      url = engine.url();
    }
    ids = await seedDead(db);
  });
  afterEach(async () => {
    await db.close();
  });
  const noPii = (text: string) => {
    for (const secret of ['jane@example.com', '203.0.113.9', 'secret UA', 'revenue', 'traits', 'context']) expect(text).not.toContain(secret);
  };

  it('list shows the dead letters in a table and as JSON, never the event data', async () => {
    const r = await cli(['dlq', 'list', '--store', url, '--site', 'shop']);
    expect(r).toMatchObject({ code: EXIT_OK, stderr: '' });
    expect(r.stdout).toMatch(/^HIT\s+DESTINATION\s+CODE\s+REASON\s+ATTEMPTS\s+STATUS\s+DIED\s+MESSAGE ID\s+EVENT\s+VENDOR ANSWER$/m);
    expect(r.stdout).toMatch(new RegExp(`^${ids[0]}\\s+meta\\s+TW_ERR_DELIVERY_REJECTED\\s+status_400\\s+1\\s+400\\s+2026-01-02T00:00:00.000Z\\s+m-dead-1\\s+Order Completed\\s+\\{"error":\\{"message":"Invalid parameter", "code":100\\}\\}$`, 'm'));
    expect(r.stdout.trim().split('\n')).toHaveLength(4);
    noPii(r.stdout);
    const json = await cli(['dlq', 'list', '--store', url, '--site', 'shop', '--json']);
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(rows[0]).toEqual({
      hitId: ids[0],
      destinationId: 'meta',
      code: 'TW_ERR_DELIVERY_REJECTED',
      reason: 'status_400',
      attempts: 1,
      lastStatus: 400,
      excerpt: '{"error":{"message":"Invalid parameter",\n"code":100}}',
      diedAt: '2026-01-02T00:00:00.000Z',
      receivedAt: '2026-01-01T00:00:00.001Z',
      messageId: 'm-dead-1',
      type: 'track',
      event: 'Order Completed',
    });
    noPii(json.stdout);
  });

  it('filters by destination, reason, time and limit; another site sees none', async () => {
    const pick = async (...args: string[]) => (JSON.parse((await cli(['dlq', 'list', '--store', url, '--site', 'shop', '--json', ...args])).stdout) as Array<{ messageId: string }>).map((d) => d.messageId);
    expect(await pick('--destination', 'meta')).toEqual(['m-dead-1', 'm-dead-2']);
    expect(await pick('--reason', 'status_400')).toEqual(['m-dead-1', 'm-dead-3']);
    expect(await pick('--since', '2026-01-03T00:00:00Z', '--before', '2026-01-04T00:00:00Z')).toEqual(['m-dead-2']);
    expect(await pick('--limit', '1')).toEqual(['m-dead-1']);
    expect((await cli(['dlq', 'list', '--store', url, '--site', 'other'])).stdout).toBe('no dead letters\n');
  });

  it('replay makes the matching letters waiting again and releases their hits; it prints how many', async () => {
    const r = await cli(['dlq', 'replay', '--store', url, '--site', 'shop', '--destination', 'meta']);
    expect(r).toMatchObject({ code: EXIT_OK, stdout: expect.stringMatching(/^Replayed 2 dead letters\. .*consent re-checked/) });
    expect((await listDead(db, { siteId: 'shop' })).map((d) => d.destinationId)).toEqual(['hook']);
    // Released: any instance's next takeover sends them.
    const claimed = await claimLapsed(db, { owner: 'running', now: Date.now(), leaseUntil: Date.now() + 1000, limit: 10 });
    expect(claimed.map((c) => c.hit.id)).toEqual([ids[0], ids[1]]);
    expect(claimed.flatMap((c) => c.work.map((w) => w.state))).toEqual(['waiting', 'waiting']);
    expect(JSON.parse((await cli(['dlq', 'replay', '--store', url, '--site', 'shop', '--json'])).stdout)).toEqual({ replayed: 1 });
  });

  it('purge refuses without --yes (exit 2, nothing deleted) and deletes with it', async () => {
    const refused = await cli(['dlq', 'purge', '--store', url, '--site', 'shop', '--reason', 'status_400']);
    expect(refused.code).toBe(EXIT_USAGE);
    expect(refused.stderr).toMatch(/add --yes/);
    expect(await listDead(db, { siteId: 'shop' })).toHaveLength(3);
    const r = await cli(['dlq', 'purge', '--store', url, '--site', 'shop', '--reason', 'status_400', '--yes']);
    expect(r).toMatchObject({ code: EXIT_OK, stdout: 'Purged 2 dead letters.\n' });
    expect((await listDead(db, { siteId: 'shop' })).map((d) => d.reason)).toEqual(['max_total_time']);
    expect(JSON.parse((await cli(['dlq', 'purge', '--store', url, '--site', 'shop', '--yes', '--json'])).stdout)).toEqual({ purged: 1 });
  });
});

describe('cli dlq usage', () => {
  const never = () => `sqlite:${join(dir, 'never.db')}`;
  it.each<[string[], RegExp]>([
    [['dlq'], /dlq needs a command/],
    [['dlq', 'resend'], /unknown command "dlq resend"/],
    [['dlq', 'list', 'extra'], /unexpected argument "extra"/],
    [['dlq', 'list', '--since', 'yesterday'], /--since: ISO 8601/],
    [['dlq', 'list', '--limit', '5000'], /--limit: /],
    [['dlq', 'list', '--limit', 'ten'], /--limit: /],
    [['dlq', 'list', '--destination', 'no/such'], /--destination: a destination id/],
    [['dlq', 'replay', '--since', '2026-02-01', '--before', '2026-01-01'], /--since must be earlier than --before/],
    [['dlq', 'purge'], /add --yes/],
    [['keys', 'list', '--yes'], /--yes is an option of dlq purge/],
    [['keys', 'list', '--reason', 'x'], /--reason is an option of dlq commands/],
  ])('%j exits 2', async (argv, message) => {
    const r = await cli([...argv, '--store', never(), ...(argv[0] === 'dlq' ? ['--site', 'shop'] : [])]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(dir, 'never.db'))).toBe(false);
  });

  it('the site comes from the config file; without one, --site is needed', async () => {
    const config = join(dir, 'tw.yaml');
    writeFileSync(config, `site:\n  id: shop\nstore:\n  url: ${JSON.stringify(`sqlite:${join(dir, 'cfg.db')}`)}\n`);
    const db = await openDb(`sqlite:${join(dir, 'cfg.db')}`);
    try {
      await seedDead(db);
      const r = await cli(['dlq', 'list', '--config', config, '--json']);
      expect(r.code).toBe(EXIT_OK);
      expect(JSON.parse(r.stdout)).toHaveLength(3);
    } finally {
      await db.close();
    }
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const r = await cli(['dlq', 'list', '--store', never()]);
      expect(r.code).toBe(EXIT_USAGE);
      expect(r.stderr).toMatch(/dlq needs the site/);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('cli validate', () => {
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  it('prints OK with the site, destinations and templates (exit 0), and opens no store', async () => {
    const config = write('ok.yaml', `site:\n  id: shop\n  categories: { analytics: {} }\nstore:\n  url: ${JSON.stringify(`sqlite:${join(dir, 'never.db')}`)}\ndestinations:\n  - id: hook\n    template: webhook\n    dryRun: true\n    settings: { url: https://hooks.example.invalid/x }\n    consent: { categories: [analytics] }\n  - id: meta\n    template: meta-capi\n    enabled: if-configured\n    settings: { pixelId: '', accessToken: '' }\n    consent: { categories: [analytics] }\n`);
    const r = await cli(['validate', config]);
    expect(r).toMatchObject({ code: EXIT_OK, stderr: '' });
    expect(r.stdout).toMatch(/^OK .*ok\.yaml\nsite: shop \(opt-in\)\ndestinations: 1 enabled, 1 disabled\n {2}hook: webhook v1 \(dry run\)\n {2}meta: disabled \(settings not set: pixelId, accessToken\)\ntemplates: \d+ in .*: .*webhook v1/);
    const json = JSON.parse((await cli(['validate', '--json', '--config', config])).stdout);
    expect(json).toMatchObject({ ok: true, site: { id: 'shop', dataControlMode: 'opt-in' }, destinations: [{ id: 'hook', template: 'webhook', version: 1, dryRun: true }], disabled: [{ id: 'meta' }] });
    expect(existsSync(join(dir, 'never.db'))).toBe(false);
  });

  it('lists every config problem with its path (exit 1), as the server would refuse to start', async () => {
    const config = write('bad.yaml', 'site:\n  id: shop\n  colour: blue\ndestinations:\n  - id: a\n    template: nope\n  - id: b\n    template: webhook\n    settings: {}\n');
    const r = await cli(['validate', config]);
    expect(r.code).toBe(EXIT_FAILED);
    expect(r.stdout).toMatch(/^FAIL .*bad\.yaml: 3 problems\n/);
    expect(r.stdout).toContain('  site.colour: unknown key\n');
    expect(r.stdout).toMatch(/ {2}destinations\[0\]\.template: unknown template "nope"/);
    expect(r.stdout).toContain('  destinations[1].settings.url: required\n');
    const json = JSON.parse((await cli(['validate', config, '--json'])).stdout);
    expect(json.ok).toBe(false);
    expect(json.errors).toContainEqual({ path: 'site.colour', message: 'unknown key' });
  });

  it('a template directory with a broken template names its file (exit 1); a missing file fails too', async () => {
    const templates = join(dir, 'templates');
    spawnSync('mkdir', ['-p', join(templates, 'broken')]);
    writeFileSync(join(templates, 'broken', 'template.json'), '{"id": "broken"}');
    const r = await cli(['validate', write('t.yaml', `site:\n  id: shop\ntemplatesDir: ${JSON.stringify(templates)}\n`), '--json']);
    expect(r.code).toBe(EXIT_FAILED);
    const errors = JSON.parse(r.stdout).errors as Array<{ file?: string }>;
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.file?.endsWith(join('broken', 'template.json')))).toBe(true);
    expect(await cli(['validate', join(dir, 'missing.yaml')])).toMatchObject({ code: EXIT_FAILED, stdout: expect.stringMatching(/cannot read configuration/) });
  });

  it.each<[string[], RegExp]>([
    [['validate', 'a.yaml', 'b.yaml'], /unexpected argument "b.yaml"/],
    [['validate', 'a.yaml', '--config', 'b.yaml'], /the config once/],
    [['validate', 'a.yaml', '--store', 'sqlite:x.db'], /validate takes no --store/],
    [['explain'], /explain needs the hit file/],
    [['explain', 'h.json', '--ip', 'nope'], /--ip: "nope" is not an IPv4 or IPv6 address/],
    [['keys', 'list', '--ip', '1.2.3.4'], /--ip is an option of explain/],
  ])('%j exits 2', async (argv, message) => {
    const r = await cli(argv);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toMatch(message);
  });
});

describe('cli explain', () => {
  const ADMIN = 'cli-explain-admin-key-0123456789';
  const settings = { site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: { gcm: ['analytics_storage'] } } }, debug: { explain: true, adminKey: ADMIN } };
  const destinations = [
    { id: 'hook', template: 'webhook', settings: { url: 'https://hooks.example.invalid/x', secret: 'hook-secret-value' }, consent: { categories: ['analytics'] } },
    { id: 'meta', template: 'meta-capi', enabled: 'if-configured', settings: { pixelId: '', accessToken: '' }, consent: { categories: ['analytics'] } },
  ];
  const configFile = () => {
    const path = join(dir, 'tw.json');
    writeFileSync(path, JSON.stringify({ ...settings, destinations }));
    return path;
  };
  const hitFile = (body: unknown) => {
    const path = join(dir, `hit-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, typeof body === 'string' ? body : JSON.stringify(body));
    return path;
  };
  const AT = 1_760_000_000_000;
  const event = { type: 'track', event: 'Order Completed', messageId: 'm-1', timestamp: '2025-10-09T08:00:00.000Z', anonymousId: 'v-1', properties: { value: 42 }, context: { consent: { categoryPreferences: { analytics: true } } } };

  async function routeAnswer(body: unknown) {
    const config = loadConfigWithTemplates(configFile(), {});
    const app = createApp(config.config, { logger: pino({ level: 'silent' }), templates: config.templates, consentClock: new FakeClock(AT), webhooks: false });
    try {
      return await request(app.handler).post('/debug/explain').set('authorization', `Bearer ${ADMIN}`).send(body as object);
    } finally {
      await app.shutdown(0);
    }
  }
  const explain = async (argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['explain', ...argv, '--config', configFile()], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {}, clock: new FakeClock(AT) });
    return { code, stdout, stderr };
  };

  it.each<[string, unknown]>([
    ['a Segment event', event],
    ['a raw Segment hit', { hit: { path: '/v1/track', headers: { 'user-agent': 'Mozilla/5.0 test', 'sec-gpc': '1' }, body: event } }],
    ['a raw GA4 hit', { hit: { path: '/g/collect?v=2&tid=G-1&cid=1.2&en=page_view&gcs=G111&_p=1&dl=https%3A%2F%2Fshop.example%2F' } }],
  ])('prints what POST /debug/explain answers for %s (exit 0)', async (_name, body) => {
    const r = await explain([hitFile(body), '--ip', '127.0.0.1']);
    expect(r.code).toBe(EXIT_OK);
    const route = await routeAnswer(body);
    expect(route.status).toBe(200);
    const answer = JSON.parse(r.stdout);
    // A hit without a messageId gets a random one, on both sides.
    const noIds = (a: any) => JSON.parse(JSON.stringify(a).replace(/"messageId":"[0-9a-f-]{36}"/g, '"messageId":"*"'));
    expect(noIds(answer)).toEqual(noIds(route.body));
    expect(r.stdout).not.toContain('hook-secret-value');
    // Disabled destinations are said on stderr, as the server logs them at start.
    expect(r.stderr).toBe('note: destination meta is disabled (settings not set: pixelId, accessToken): not explained\n');
  });

  it('the Segment event decides as the route does: granted analytics forwards, the request shown', async () => {
    const r = await explain([hitFile(event), '--json']);
    expect(r).toMatchObject({ code: EXIT_OK, stderr: '' });
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const answer = JSON.parse(r.stdout);
    expect(answer.destinations).toMatchObject([{ id: 'hook', template: 'webhook', decision: 'forward', reasons: ['consent_granted:analytics'], request: { method: 'POST', url: 'https://hooks.example.invalid/x' } }]);
    expect(answer.event.receivedAt).toBe(new Date(AT).toISOString());
  });

  it('a hit the route refuses fails with its message and code (exit 1); so do an unreadable file and a bad config', async () => {
    const bad = await explain([hitFile({ hit: { path: '/nope' } })]);
    expect(bad).toMatchObject({ code: EXIT_FAILED, stdout: '' });
    expect(bad.stderr).toMatch(/hit\.path: "\/nope" is not a client route .*\(TW_ERR_VALIDATION; \/debug\/explain answers 400\)/);
    const notJson = await explain([hitFile('{nope')]);
    expect(notJson.stderr).toMatch(/not valid JSON.*TW_ERR_MALFORMED_BODY/);
    expect((await explain([join(dir, 'missing.json')])).stderr).toMatch(/cannot read the hit file/);
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'site: {}\n');
    const r = await runCli(['explain', hitFile(event), '--config', config], { stdout: { write: () => true }, stderr: { write: () => true }, env: {} });
    expect(r).toBe(EXIT_FAILED);
  });
});
