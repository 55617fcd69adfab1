import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { listDead } from '../src/store/journal.ts';
import { openDb } from '../src/store/open.ts';
import { accessibilityProblems } from './browser/a11y.ts';
import { chromiumMissing, launchLocalOnly, localContext } from './browser/chromium.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';
import { UPDATE_SCREENSHOTS } from './test-database.ts';

/**
 * The dashboard (/ui, issue 15) in Debian's Chromium against the real app: a store, receipts, a
 * webhook destination on a fake vendor on 127.0.0.1 and one that refuses (a dead letter). At a
 * laptop's and a phone's size: a wrong key is refused, the right one signs in, the overview counts
 * the hits, the visitor lookup shows the consent, its audit trail and the receipts, the tabs are
 * reached and opened with the keyboard, a dead letter is sent again, secrets stay masked, signing
 * out returns to the login form. No console errors, no sideways scrolling, every field labelled and
 * every button named. Screenshots go to a temporary directory; with UPDATE_SCREENSHOTS=1 to
 * docs/ui/ (docs/ui-pages.md shows them), so a test run does not rewrite tracked files.
 */
const missing = chromiumMissing();
if (missing !== undefined) console.warn(missing);

const ADMIN_KEY = 'ui-admin-key-0123456789';
const HOOK_SECRET = 'hook-secret-do-not-show';
const SHOTS =
  UPDATE_SCREENSHOTS ? fileURLToPath(new URL('../docs/ui/', import.meta.url)) : `${mkdtempSync(join(tmpdir(), 'tagwarden-ui-'))}/`;

const VIEWPORTS = [
  { name: 'laptop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
] as const;

describe.skipIf(missing !== undefined)('the dashboard in Chromium (laptop and phone)', () => {
  let db: Db;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let chromium: { browser: Browser; close: () => Promise<void> };
  let writer: string;
  let crmAccepts = false;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    db = await openDb('sqlite::memory:');
    // `crm` refuses with 400 (not retried: a dead letter at once) until the test fixes it.
    vendor = await startVendor((hit) => (hit.path === '/crm' && !crmAccepts ? { status: 400, body: '{"error":"invalid token"}' } : { status: 200, body: '{}' }));
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {}, advertising: {} } },
        debug: { adminKey: ADMIN_KEY },
        receipts: { enabled: true, flushMs: 100 },
        delivery: { baseDelayMs: 10, maxDelayMs: 50 },
        api: { rateLimit: { perSecond: 1000, burst: 1000 } },
        destinations: [
          { id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats`, secret: HOOK_SECRET }, consent: { categories: ['analytics'] } },
          { id: 'crm', template: 'webhook', settings: { url: `${vendor.url}/crm` } },
        ],
      }),
      undefined,
      { db },
    );
    writer = (await createApiKey(db, { label: 'cmp', scopes: ['consent:write'] })).key;
    // Traffic: a visitor who consents (stored too), one who declines; one event for the dead letter.
    expect((await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-yes', categories: { analytics: true } }, { 'x-api-key': writer })).status).toBe(200);
    const track = (messageId: string, anonymousId: string, analytics: boolean) =>
      post(`${tw.url}/v1/track`, { messageId, event: 'Order Completed', anonymousId, context: { consent: { categoryPreferences: { analytics } } } });
    for (const [m, v, a] of [
      ['m-yes-1', 'v-yes', true],
      ['m-yes-2', 'v-yes', true],
      ['m-no-1', 'v-no', false],
    ] as const) {
      expect((await track(m, v, a)).status).toBe(200);
    }
    await tw.app.flush(5000);
    const deadline = Date.now() + 10_000;
    while ((await listDead(db, { siteId: 'shop' })).length === 0) {
      if (Date.now() > deadline) throw new Error('no dead letter for crm');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Receipts are written in batches: write what is buffered now instead of waiting out flushMs.
    await tw.app.receipts?.flush();
    chromium = await launchLocalOnly();
  });

  afterAll(async () => {
    await chromium?.close();
    await tw?.close();
    await vendor?.close();
    await db?.close();
  });

  for (const vp of VIEWPORTS) {
    it(`signs in, shows counts, a visitor, dead letters and destinations, and signs out (${vp.name} ${vp.width}x${vp.height})`, async () => {
      const escaped: string[] = [];
      const errors: string[] = [];
      const context: BrowserContext = await localContext(chromium.browser, escaped);
      try {
        const page = await context.newPage();
        await page.setViewportSize({ width: vp.width, height: vp.height });
        page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
        // Chromium logs every 4xx answer as a console error. The answers this test causes on purpose
        // are listed (status and path); any other console error fails it. The session check answers
        // 401 whenever the page is signed out, by contract.
        const expectedAnswers = new Set(['401 /ui/api/session']);
        page.on('console', (m) => {
          if (m.type() !== 'error') return;
          const status = /status of (\d{3})/.exec(m.text())?.[1];
          const url = m.location().url;
          if (status !== undefined && url !== '' && expectedAnswers.has(`${status} ${new URL(url).pathname}${new URL(url).search}`)) return;
          errors.push(`console: ${m.text()} (${url})`);
        });
        const shot = (name: string, fullPage = false) => page.screenshot({ path: `${SHOTS}${name}-${vp.name}.png`, fullPage });
        const check = async (where: string) => {
          expect(await accessibilityProblems(page), where).toEqual([]);
          const sideways = await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).innerWidth);
          expect(sideways, `${where}: no horizontal scroll`).toBeLessThanOrEqual(0);
        };

        // Signed out: the login form. A wrong key is refused.
        await page.goto(`${tw.url}/ui`);
        const key = page.getByLabel('Admin key');
        await key.waitFor();
        await check('login');
        await key.fill('not-the-admin-key-at-all');
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByText('That key did not work').waitFor();
        expect(page.url()).toContain('login=failed');
        await check('login failed');
        if (vp.name === 'phone') await shot('login');

        // The right key: the dashboard, on the overview.
        await page.getByLabel('Admin key').fill(ADMIN_KEY);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('heading', { name: 'Overview', level: 2 }).waitFor();
        expect(new URL(page.url()).search).toBe('');

        // Overview: counts per destination after the hits.
        const received = page.locator('tr', { has: page.locator('th', { hasText: 'stats' }) }).locator('td[data-count="received"]');
        await expect.poll(async () => Number((await received.textContent())?.replace(/\D/g, '') ?? 0), { timeout: 8000 }).toBeGreaterThanOrEqual(3);
        const filtered = page.locator('tr', { has: page.locator('th', { hasText: 'stats' }) }).locator('td[data-count="filtered"]');
        expect(Number((await filtered.textContent())?.replace(/\D/g, ''))).toBeGreaterThanOrEqual(1);
        // The vendor accepted the two consented ones; none waits for consent.
        const delivered = page.locator('tr', { has: page.locator('th', { hasText: 'stats' }) }).locator('td[data-count="delivered"]');
        await expect.poll(async () => Number((await delivered.textContent())?.replace(/\D/g, '') ?? 0), { timeout: 8000 }).toBeGreaterThanOrEqual(2);
        expect(await page.locator('tr', { has: page.locator('th', { hasText: 'stats' }) }).locator('td[data-count="held"]').textContent()).toBe('0');
        await page.getByText('Filtered by visitor consent: “analytics” was declined').first().waitFor();
        await page.locator('.chart canvas').first().waitFor();
        await page.getByLabel('Time window').selectOption('15m');
        await page.locator('caption', { hasText: 'last 15 minutes' }).waitFor();
        await check('overview');
        await shot('overview');

        // Keyboard: Tab reaches the section links, Enter opens one and focuses its heading.
        await page.evaluate(() => (globalThis as any).document.activeElement?.blur());
        let reached = false;
        for (let i = 0; i < 25 && !reached; i++) {
          await page.keyboard.press('Tab');
          reached = await page.evaluate(() => (globalThis as any).document.activeElement?.textContent === 'Visitor lookup');
        }
        expect(reached, 'Tab reaches the Visitor lookup tab').toBe(true);
        await page.keyboard.press('Enter');
        await page.waitForURL(/#visitor$/);
        await expect.poll(() => page.evaluate(() => (globalThis as any).document.activeElement?.id)).toBe('visitor-title');
        await check('visitor (empty)');

        // Visitor lookup: the stored consent, its audit trail, the receipts.
        await page.getByLabel('Id', { exact: true }).fill('v-yes');
        await page.keyboard.press('Enter');
        await page.waitForURL(/#visitor\/visitor\/v-yes$/);
        const consent = page.locator('table', { has: page.locator('caption', { hasText: 'Consent per category' }) });
        await consent.getByText('Given').waitFor();
        await consent.getByText('analytics').waitFor();
        await page.getByText('Consent given').first().waitFor();
        await expect.poll(() => page.locator('ol.receipts li').count()).toBeGreaterThanOrEqual(2);
        await page.locator('ol.receipts').getByText('Visitor consented to “analytics”').first().waitFor();
        await check('visitor');
        await shot('visitor', true);
        if (vp.name === 'phone') {
          // Someone Tagwarden knows nothing about: empty states, not errors.
          expectedAnswers.add('404 /api/v1/subjects/visitor/v-nobody');
          await page.getByLabel('Id', { exact: true }).fill('v-nobody');
          await page.getByRole('button', { name: 'Look up' }).click();
          await page.getByText('No consent is recorded for this visitor.').waitFor();
          await page.getByText('No consent changes are recorded for this id.').waitFor();
          await page.getByText('No decisions are recorded for this id').waitFor();
          await check('visitor unknown');
        }

        // Recent decisions: the declined visitor's event, and a link to look them up.
        await page.getByRole('link', { name: 'Recent decisions' }).click();
        await page.getByRole('link', { name: 'Look up visitor v-no' }).first().waitFor();
        await check('decisions');
        if (vp.name === 'laptop') await shot('decisions');

        // Dead letters: the refused event; once the vendor is fixed, send it again (asks first).
        await page.getByRole('link', { name: 'Dead letters' }).click();
        await page.getByRole('heading', { name: 'Dead letters', level: 2 }).waitFor();
        if (vp.name === 'laptop') {
          // The three events crm refused (it needs no consent, so it got every one).
          await page.locator('caption', { hasText: '3 dead letters' }).waitFor();
          await page.getByText('The vendor answered 400').first().waitFor();
          await check('dead letters');
          await shot('dead-letters');
          crmAccepts = true;
          const before = vendor.hits.length;
          const resent = () => ['m-yes-1', 'm-yes-2', 'm-no-1'].filter((m) => vendor.hits.slice(before).some((h) => h.path === '/crm' && JSON.stringify(h.body).includes(m)));
          // One, from its row: it asks first.
          await page.getByRole('button', { name: 'Send again', exact: true }).first().click();
          await page.getByRole('button', { name: 'Yes, send again' }).click();
          await page.getByText('1 event is being sent again').waitFor();
          await page.locator('caption', { hasText: '2 dead letters' }).waitFor();
          // Then the rest.
          await page.getByRole('button', { name: 'Send all again' }).click();
          await page.getByRole('button', { name: 'Yes, send again' }).click();
          await page.getByText('2 events are being sent again').waitFor();
          await page.getByText('No dead letters').waitFor();
          await expect.poll(() => resent().length, { timeout: 8000 }).toBe(3);
        } else {
          await page.getByText('No dead letters').waitFor();
          await check('dead letters (none)');
        }

        // Destinations: as configured, the secret masked.
        await page.getByRole('link', { name: 'Destinations' }).click();
        await page.getByRole('heading', { name: 'Destinations', level: 2 }).waitFor();
        await page.locator('.cards').getByText('stats', { exact: true }).waitFor();
        expect(await page.content()).not.toContain(HOOK_SECRET);
        await check('destinations');
        if (vp.name === 'laptop') await shot('destinations');

        // Preview: start a silent one, a hit carrying its token shows up live, stop it.
        await page.getByRole('link', { name: 'Preview' }).click();
        await page.getByRole('button', { name: 'Start preview' }).waitFor();
        await check('preview');
        if (vp.name === 'laptop') {
          await page.getByRole('radio', { name: /Silent/ }).check();
          await page.getByRole('button', { name: 'Start preview' }).click();
          const link = page.getByRole('link', { name: /\/preview\/start\?token=/ });
          const token = new URL((await link.getAttribute('href'))!).searchParams.get('token')!;
          await page.getByText('(listening)').waitFor();
          const hit = await post(`${tw.url}/v1/track`, { messageId: 'm-preview', event: 'Product Viewed', anonymousId: 'v-preview', context: { consent: { categoryPreferences: { analytics: true } } } }, { 'x-tagwarden-preview': token });
          expect(hit.status).toBe(200);
          const live = page.locator('ol.receipts li', { hasText: 'Product Viewed' });
          await expect.poll(() => live.count()).toBe(2);
          await live.filter({ hasText: 'stats' }).getByText('Preview (silent): decided, not sent to the vendor').waitFor();
          await check('preview live');
          await shot('preview');
          await page.getByRole('button', { name: 'Stop preview' }).click();
          await page.getByText('Preview stopped.').waitFor();
          expect(vendor.hits.some((h) => JSON.stringify(h.body).includes('m-preview'))).toBe(false);
        }

        if (vp.name === 'phone') {
          // The session ends under the page (the cookie expired): the next request says so and shows the login.
          expectedAnswers.add('401 /ui/api/decisions?limit=50');
          await context.clearCookies();
          await page.evaluate(() => {
            (globalThis as any).location.hash = '#decisions';
          });
          await page.getByText('Your session has ended. Please sign in again.').waitFor();
          await page.getByLabel('Admin key').fill(ADMIN_KEY);
          await page.getByRole('button', { name: 'Sign in' }).click();
          await page.getByRole('heading', { name: 'Overview', level: 2 }).waitFor();
        }

        // Sign out: back to the login form, and the session is gone.
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.getByLabel('Admin key').waitFor();
        await page.getByText('You are signed out.').waitFor();
        expect((await page.evaluate(() => fetch('/ui/api/session').then((r) => r.status)))).toBe(401);
        await check('signed out');

        expect(errors).toEqual([]);
        expect(escaped).toEqual([]);
      } finally {
        await context.close();
      }
    });
  }
});
