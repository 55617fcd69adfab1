import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Db } from '../src/store/db.ts';
import { listDead } from '../src/store/journal.ts';
import { forEachEngine } from './engines.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * Issue 11, whole-batch rejections: Meta rejects a Conversions API request whole when one of its
 * events is invalid (templates/meta-capi/README.md, "Vendor errors"). A fake Meta on 127.0.0.1
 * answers its real-looking 400 (Graph API error code 100) to any batch holding the event marked
 * bad; the batch is bisected, the nine others are delivered once each, and the bad one is reported
 * failed with Meta's message and kept as a dead letter.
 */
const META_INVALID_PARAMETER = {
  error: {
    message: 'Invalid parameter',
    type: 'OAuthException',
    code: 100,
    error_subcode: 2804016,
    is_transient: false,
    error_user_title: 'User Parameter Not Hashed',
    error_user_msg: 'The ct parameter is not hashed. Hash all user parameters as SHA256.',
    fbtrace_id: 'AWxZ3rTq9bKc1',
  },
};

interface MetaBody {
  data: { event_id: string }[];
}

forEachEngine('a Meta batch with one bad event is bisected', (engine) => {
  let db: Db;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  const logLines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    db = await engine.open();
    vendor = await startVendor((hit) => {
      const ids = (hit.body as MetaBody).data.map((e) => e.event_id);
      return ids.includes('m-bad')
        ? { status: 400, body: JSON.stringify(META_INVALID_PARAMETER) }
        : { status: 200, body: JSON.stringify({ events_received: ids.length, messages: [], fbtrace_id: 'AOk' }) };
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'disabled', categories: { advertising: {} } },
        destinations: [{ id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'tok' }, endpoint: `${vendor.url}/meta` }],
      }),
      pino({ level: 'warn' }, sink),
      { db },
    );
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  it('delivers the other events once each, reports the bad one failed with Meta’s message, and keeps it as a dead letter', async () => {
    const context = { userAgent: 'Mozilla/5.0 (test)', page: { url: 'https://shop.example/thanks' } };
    const messageIds = ['m0', 'm1', 'm2', 'm-bad', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9'];
    // Within the template's 500 ms linger: one batch of ten.
    const answers = await Promise.all(messageIds.map((messageId) => post(`${tw.url}/v1/track`, { anonymousId: `v-${messageId}`, messageId, event: 'Purchase', context })));
    expect(answers.map((a) => a.status)).toEqual(messageIds.map(() => 200));
    await tw.app.flush(5_000);

    const sent = vendor.hits.map((h) => (h.body as MetaBody).data.map((e) => e.event_id));
    expect(sent[0]).toHaveLength(10);
    // One bad event among 10: at most 2·⌈log2 10⌉ = 8 requests more than the batch's own.
    expect(sent.length - 1).toBeLessThanOrEqual(8);
    const accepted = sent.filter((ids) => !ids.includes('m-bad')).flat();
    expect(accepted.sort()).toEqual(messageIds.filter((id) => id !== 'm-bad').sort());
    expect(sent.filter((ids) => ids.length === 1 && ids[0] === 'm-bad')).toHaveLength(1);

    const failed = logLines.filter((l) => l.msg === 'delivery not completed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ destination: 'meta', outcome: 'failed', reason: 'status_400', status: 400, events: 1 });
    expect(String(failed[0]!.response)).toContain('The ct parameter is not hashed');

    // The dead row is written by the journal writer after the result (a group commit): wait for it.
    let dead = await listDead(db, { siteId: 'shop', destinationId: 'meta' });
    for (const until = Date.now() + 5_000; dead.length === 0 && Date.now() < until; dead = await listDead(db, { siteId: 'shop', destinationId: 'meta' })) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ state: 'dead', reason: 'status_400', lastStatus: 400 });
    expect(dead[0]!.excerpt).toContain('"error_user_msg":"The ct parameter is not hashed');
    // The excerpt is bounded (256 characters, src/lib/http/send.ts): Meta's fbtrace_id, last in
    // its error object, falls beyond it after a long error_user_msg.
    expect(dead[0]!.payload).toContain('m-bad');
    // The delivered ones left the journal: nothing else is dead.
    expect(dead[0]!.payload).not.toContain('"m0"');
  });
});
