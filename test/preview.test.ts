import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { post, startTagwarden, startVendor, testConfig, type VendorHit } from './helpers.ts';

/**
 * Issue 15, preview (docs/preview.md): through the real app, its HTTP API and a fake Meta on
 * 127.0.0.1. A preview's hits are decided as usual, shown live on its stream (read with a real
 * HTTP client), and sent with the vendor's test mode in requests of their own, or not at all;
 * other visitors' hits in the same window are untouched, and the counts still add up.
 */
const ADMIN_KEY = 'preview-admin-key-0123456789';
const META_TOKEN = 'meta-secret-token-abc';
const GA_SECRET = 'ga-api-secret-xyz';

interface SseMessage {
  event: string;
  data: any;
}

/** A live stream read with fetch: its messages so far, and a wait for one that matches. */
async function openStream(url: string, key: string) {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { 'x-api-key': key }, signal: abort.signal });
  const messages: SseMessage[] = [];
  let heartbeats = 0;
  let text = '';
  let ended = false;
  const reading = (async () => {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = text.indexOf('\n\n')) !== -1) {
          const block = text.slice(0, cut);
          text = text.slice(cut + 2);
          if (block === ': heartbeat') heartbeats++;
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) messages.push({ event, data: JSON.parse(data) });
        }
      }
    } catch {
      // aborted
    }
    ended = true;
  })();
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    messages,
    get heartbeats() {
      return heartbeats;
    },
    get ended() {
      return ended;
    },
    async waitFor(pred: (m: SseMessage) => boolean, ms = 3000): Promise<SseMessage> {
      const until = performance.now() + ms;
      for (;;) {
        const m = messages.find(pred);
        if (m !== undefined) return m;
        if (performance.now() > until) throw new Error(`no such message; got ${JSON.stringify(messages)}`);
        await new Promise((r) => setImmediate(r));
      }
    },
    async close() {
      abort.abort();
      await reading;
    },
  };
}

describe('preview', () => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let admin: string;
  const clock = new FakeClock(Date.now());

  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {} } },
        destinations: [
          { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: META_TOKEN }, endpoint: `${vendor.url}/meta/events` },
          { id: 'ga', template: 'ga4', settings: { measurementId: 'G-ABCDEF1', apiSecret: GA_SECRET }, endpoint: `${vendor.url}/ga/mp/collect`, consent: { categories: ['advertising'] } },
          // The webhook template has no test mode: never sent in preview.
          { id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` }, consent: { categories: ['advertising'] } },
          // Waits for consent the hit does not carry.
          { id: 'held', template: 'webhook', settings: { url: `${vendor.url}/held` }, consent: { categories: ['advertising'], whenUnknown: 'hold' } },
        ],
        hold: { maxEvents: 100, maxAgeMs: 120_000 },
        api: { rateLimit: { perSecond: 1000, burst: 1000 } },
        debug: { adminKey: ADMIN_KEY },
      }),
      undefined,
      { db, consentClock: clock },
    );
    admin = (await createApiKey(db, { label: 'admin', scopes: ['admin'] })).key;
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  const startPreview = async (body: unknown) => post(`${tw.url}/api/v1/preview`, body, { 'x-api-key': admin });
  const track = (messageId: string, headers: Record<string, string> = {}) =>
    post(
      `${tw.url}/v1/track`,
      { messageId, event: 'Order Completed', anonymousId: `v-${messageId}`, properties: { value: 10, currency: 'eur' }, context: { page: { url: 'https://shop.example/checkout' }, consent: { categoryPreferences: { advertising: true } } } },
      { 'user-agent': 'Mozilla/5.0 preview-test', ...headers },
    );
  const settle = async () => {
    await tw.app.flush(5000);
    await tw.app.flush(5000);
  };
  /** The vendor requests that carry the event, and the events of each (Meta's data, the webhook's batch). */
  const requestsWith = (messageId: string, path: string): VendorHit[] =>
    vendor.hits.filter((h) => h.path === path && JSON.stringify(h.body).includes(messageId));
  const ids = (h: VendorHit): string[] => ((h.body as any).data ?? (h.body as any).batch).map((e: any) => e.event_id ?? e.messageId);
  const metrics = async () => (await fetch(`${tw.url}/metrics`)).text();
  const sum = (text: string, name: string, labels: string[] = []): number =>
    [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))].filter((m) => labels.every((l) => m[1]!.includes(l))).reduce((a, m) => a + Number(m[2]), 0);
  const total = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);

  it('test mode: the preview hit reaches Meta with its test_event_code in a request of its own; a visitor in the same window without; the stream shows the decision and request, no access token', async () => {
    const started = await startPreview({ mode: 'test', ttlMinutes: 30, testEventCodes: { meta: 'TEST4242' } });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ mode: 'test', startUrl: `/preview/start?token=${encodeURIComponent(started.body.token)}` });
    expect(started.body.expiresAt).toBe(clock.now() + 30 * 60_000);
    const stream = await openStream(`${tw.url}/api/v1/preview/${started.body.id}/stream`, admin);
    expect(stream.status).toBe(200);
    expect(stream.contentType).toMatch(/^text\/event-stream/);

    const journaled = total(await metrics(), 'tagwarden_journal_hits_total');
    // The same event loop window: both lingering in Meta's lane at once.
    const [p, n] = await Promise.all([track('m-prev', { cookie: `other=1; tw_preview=${started.body.token}` }), track('m-norm')]);
    expect([p.status, n.status]).toEqual([200, 200]);
    await settle();

    const prev = requestsWith('m-prev', '/meta/events');
    const norm = requestsWith('m-norm', '/meta/events');
    expect(prev).toHaveLength(1);
    expect(norm).toHaveLength(1);
    expect(prev[0]).not.toBe(norm[0]);
    expect(ids(prev[0]!)).toEqual(['m-prev']);
    expect((prev[0]!.body as any).test_event_code).toBe('TEST4242');
    expect((norm[0]!.body as any).test_event_code).toBeUndefined();
    expect(ids(norm[0]!)).toEqual(['m-norm']);
    // GA4: debug_mode on the preview's event only, each in its own request.
    const gaPrev = requestsWith('m-prev', '/ga/mp/collect');
    const gaNorm = requestsWith('m-norm', '/ga/mp/collect');
    expect(gaPrev).toHaveLength(1);
    expect(gaNorm).toHaveLength(1);
    expect((gaPrev[0]!.body as any).events.map((e: any) => e.params.debug_mode)).toEqual([true]);
    expect((gaNorm[0]!.body as any).events.map((e: any) => e.params.debug_mode)).toEqual([undefined]);
    // Not sent where the template has no test mode; the visitor's event is.
    expect(requestsWith('m-prev', '/hook')).toHaveLength(0);
    expect(requestsWith('m-norm', '/hook')).toHaveLength(1);
    // The preview hit was not journaled (a restart must not send it as an ordinary hit); the other was.
    expect(total(await metrics(), 'tagwarden_journal_hits_total') - journaled).toBe(1);

    const decision = await stream.waitFor((m) => m.event === 'decision' && m.data.destinationId === 'meta');
    expect(decision.data).toMatchObject({ messageId: 'm-prev', eventType: 'track', eventName: 'Order Completed', outcome: 'forward', reason: 'consent_granted:advertising', sent: true });
    expect(decision.data.rules).toContain('consent_granted:advertising');
    expect(decision.data.consent.advertising).toMatchObject({ status: 'granted' });
    expect(decision.data.request.method).toBe('POST');
    expect(decision.data.request.body.test_event_code).toBe('TEST4242');
    expect(decision.data.request.body.data[0].event_id).toBe('m-prev');
    expect(decision.data.request.url).toContain('access_token=');
    const hook = await stream.waitFor((m) => m.event === 'decision' && m.data.destinationId === 'hook');
    expect(hook.data).toMatchObject({ outcome: 'drop', reason: 'preview_no_test_mode', sent: false });
    const delivered = await stream.waitFor((m) => m.event === 'delivery');
    expect(delivered.data).toEqual({ messageId: 'm-prev', destinationId: 'meta', outcome: 'delivered', status: 200 });
    // No stream message ever carries the access token; nothing of the other visitor either.
    const all = JSON.stringify(stream.messages);
    expect(all).not.toContain(META_TOKEN);
    expect(all).not.toContain(encodeURIComponent(META_TOKEN));
    expect(all).not.toContain(GA_SECRET);
    const ga = await stream.waitFor((m) => m.event === 'decision' && m.data.destinationId === 'ga');
    expect(ga.data).toMatchObject({ outcome: 'forward', sent: true });
    expect(ga.data.request.url).toContain('api_secret=[secret]');
    expect(ga.data.request.body.events[0].params.debug_mode).toBe(true);
    expect(all).not.toContain('m-norm');
    // Meta needs its code: a test preview without one sends nothing to Meta, and says why.
    const codeless = await startPreview({ mode: 'test' });
    const s2 = await openStream(`${tw.url}/api/v1/preview/${codeless.body.id}/stream`, admin);
    await track('m-nocode', { 'x-tagwarden-preview': codeless.body.token });
    await settle();
    expect(requestsWith('m-nocode', '/meta/events')).toHaveLength(0);
    expect((await s2.waitFor((m) => m.event === 'decision' && m.data.destinationId === 'meta')).data).toMatchObject({ outcome: 'drop', reason: 'preview_no_test_code', sent: false });
    await s2.close();
    await stream.close();
  });

  it('silent mode: decided and shown, sent to no vendor; the visitor beside it is sent as usual', async () => {
    const started = await startPreview({ mode: 'silent' });
    const stream = await openStream(`${tw.url}/api/v1/preview/${started.body.id}/stream`, admin);
    await Promise.all([track('m-silent', { 'x-tagwarden-preview': started.body.token }), track('m-norm2')]);
    await settle();
    expect(vendor.hits.filter((h) => JSON.stringify(h.body).includes('m-silent'))).toHaveLength(0);
    expect(requestsWith('m-norm2', '/meta/events')).toHaveLength(1);
    expect(requestsWith('m-norm2', '/hook')).toHaveLength(1);
    const meta = await stream.waitFor((m) => m.event === 'decision' && m.data.destinationId === 'meta');
    // The request it would have sent (without any test mode), not sent.
    expect(meta.data).toMatchObject({ messageId: 'm-silent', outcome: 'drop', reason: 'preview_silent', sent: false });
    expect(meta.data.request.body.data[0].event_id).toBe('m-silent');
    expect(meta.data.request.body.test_event_code).toBeUndefined();
    expect(JSON.stringify(stream.messages)).not.toContain(META_TOKEN);
    await stream.close();
  });

  it('a forged, expired or stopped token has no effect: the hit is an ordinary one; the streams end', async () => {
    const started = await startPreview({ mode: 'silent', ttlMinutes: 1 });
    const token: string = started.body.token;
    // Forged: another mode under the same signature, a changed signature, another key's token.
    const forged = [token.replace('.silent.', '.test.'), `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`, 'tp1.AAAAAAAAAAAAAAAAAAAAAA.99999999999999.silent.' + 'A'.repeat(43), 'x'.repeat(5000)];
    for (const [i, f] of forged.entries()) await track(`m-forged-${i}`, { 'x-tagwarden-preview': f });
    await settle();
    for (let i = 0; i < forged.length; i++) expect(requestsWith(`m-forged-${i}`, '/meta/events'), `forged ${i}`).toHaveLength(1);

    const stream = await openStream(`${tw.url}/api/v1/preview/${started.body.id}/stream`, admin);
    clock.advance(60_000);
    await stream.waitFor((m) => m.event === 'end');
    expect(stream.messages.at(-1)).toEqual({ event: 'end', data: { reason: 'expired' } });
    await track('m-expired', { cookie: `tw_preview=${token}` });
    const stopped = await startPreview({ mode: 'silent' });
    const s2 = await openStream(`${tw.url}/api/v1/preview/${stopped.body.id}/stream`, admin);
    const del = await fetch(`${tw.url}/api/v1/preview/${stopped.body.id}`, { method: 'DELETE', headers: { 'x-api-key': admin } });
    expect(del.status).toBe(204);
    expect((await s2.waitFor((m) => m.event === 'end')).data).toEqual({ reason: 'stopped' });
    await track('m-stopped', { 'x-tagwarden-preview': stopped.body.token });
    await settle();
    expect(requestsWith('m-expired', '/meta/events')).toHaveLength(1);
    expect(requestsWith('m-stopped', '/meta/events')).toHaveLength(1);
    expect((await fetch(`${tw.url}/api/v1/preview/${stopped.body.id}`, { method: 'DELETE', headers: { 'x-api-key': admin } })).status).toBe(404);
    expect((await fetch(`${tw.url}/api/v1/preview/${stopped.body.id}/stream`, { headers: { 'x-api-key': admin } })).status).toBe(404);
    await stream.close();
    await s2.close();
  });

  it('the start page sets the cookie for a valid token only; stop clears it; the API is admin only and bounded', async () => {
    const started = await startPreview({ mode: 'test', testEventCodes: { meta: 'T1' } });
    const ok = await fetch(`${tw.url}${started.body.startUrl}`);
    expect(ok.status).toBe(200);
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toMatch(new RegExp(`^tw_preview=${started.body.token.replace(/[.]/g, '\\.')}; Path=/; HttpOnly; Secure; SameSite=None; Max-Age=3600$`));
    expect(ok.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await ok.text()).not.toContain(started.body.token);
    const bad = await fetch(`${tw.url}/preview/start?token=${encodeURIComponent(`${started.body.token}x`)}`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('set-cookie')).toBeNull();
    const stop = await fetch(`${tw.url}/preview/stop`);
    expect(stop.headers.get('set-cookie')).toBe('tw_preview=; Path=/; HttpOnly; Secure; SameSite=None; Max-Age=0');

    const writer = (await createApiKey(db, { label: 'writer', scopes: ['consent:write'] })).key;
    expect((await post(`${tw.url}/api/v1/preview`, { mode: 'silent' }, { 'x-api-key': writer })).status).toBe(403);
    expect((await post(`${tw.url}/api/v1/preview`, { mode: 'silent' })).status).toBe(401);
    expect((await startPreview({ mode: 'loud' })).status).toBe(400);
    expect((await startPreview({ mode: 'test', ttlMinutes: 241 })).status).toBe(400);
    expect((await startPreview({ mode: 'test', testEventCodes: { nope: 'X' } })).status).toBe(400);
    // A failure of the whole body is named `body`, as on the consent routes (was an empty path).
    const extra = await startPreview({ mode: 'test', extra: 1 });
    expect(extra.status).toBe(400);
    expect((extra.body as { error: { message: string } }).error.message).toMatch(/^body: /);
    // Five streams per preview, then 429.
    const streams = await Promise.all([1, 2, 3, 4, 5].map(() => openStream(`${tw.url}/api/v1/preview/${started.body.id}/stream`, admin)));
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200, 200]);
    expect((await fetch(`${tw.url}/api/v1/preview/${started.body.id}/stream`, { headers: { 'x-api-key': admin } })).status).toBe(429);
    // A client that goes away frees its place.
    await streams[0]!.close();
    let again = await openStream(`${tw.url}/api/v1/preview/${started.body.id}/stream`, admin);
    // The server sees the disconnect a moment later.
    for (let i = 0; i < 100 && again.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
      again = await openStream(`${tw.url}/api/v1/preview/${started.body.id}/stream`, admin);
    }
    expect(again.status).toBe(200);
    // The heartbeat runs on the injected clock, every 15 s.
    expect(again.heartbeats).toBe(0);
    clock.advance(15_000);
    const until = performance.now() + 2000;
    while (again.heartbeats === 0 && performance.now() < until) await new Promise((r) => setImmediate(r));
    expect(again.heartbeats).toBe(1);
    for (const s of [...streams.slice(1), again]) await s.close();
  });

  it('a preview hit held for consent: the stream shows the hold, then the drop when it expires', async () => {
    const started = await startPreview({ mode: 'silent' });
    const stream = await openStream(`${tw.url}/api/v1/preview/${started.body.id}/stream`, admin);
    expect((await post(`${tw.url}/v1/track`, { messageId: 'm-held', event: 'x', anonymousId: 'v-held' }, { 'x-tagwarden-preview': started.body.token })).status).toBe(200);
    await settle();
    expect((await stream.waitFor((m) => m.event === 'decision' && m.data.destinationId === 'held')).data).toMatchObject({ messageId: 'm-held', outcome: 'hold', reason: 'consent_resolving', sent: false });
    clock.advance(120_001);
    await settle();
    expect((await stream.waitFor((m) => m.event === 'decision' && m.data.destinationId === 'held' && m.data.outcome === 'drop')).data).toMatchObject({ messageId: 'm-held', reason: 'consent_unresolved', sent: false });
    await stream.close();
  });

  it('counts still add up: per destination, decisions_total = events considered (none still held)', async () => {
    await settle();
    const text = await metrics();
    const received = sum(text, 'tagwarden_events_received_total') - sum(text, 'tagwarden_events_rejected_total', ['client="journal"']);
    for (const d of ['meta', 'ga', 'hook', 'held']) {
      expect(sum(text, 'tagwarden_decisions_total', [`destination="${d}"`]), d).toBe(received);
      expect(sum(text, 'tagwarden_held_events', [`destination="${d}"`]), d).toBe(0);
    }
    expect(sum(text, 'tagwarden_decisions_total', ['destination="meta"', 'reason="preview_silent"'])).toBe(1);
    expect(sum(text, 'tagwarden_decisions_total', ['destination="hook"', 'reason="preview_no_test_mode"'])).toBe(2);
    expect(sum(text, 'tagwarden_decisions_total', ['destination="meta"', 'reason="preview_no_test_code"'])).toBe(1);
  });
});
