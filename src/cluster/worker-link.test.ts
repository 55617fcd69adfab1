import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import { createMetrics } from '../observability/metrics.ts';
import type { ToPrimary } from './messages.ts';
import { connectWorker, type Channel } from './worker-link.ts';

/** A worker's IPC channel: what it sends is recorded, `deliver` plays the supervisor. */
function channel(connected = true): { ch: Channel; sent: ToPrimary[]; deliver: (m: unknown) => void } {
  const emitter = new EventEmitter();
  const sent: ToPrimary[] = [];
  const ch = {
    connected,
    send: (m: ToPrimary) => {
      sent.push(m);
      return true;
    },
    on: (event: string, fn: (m: unknown) => void) => emitter.on(event, fn),
  } as unknown as Channel;
  return { ch, sent, deliver: (m) => emitter.emit('message', m) };
}

describe('connectWorker', () => {
  it('asks the supervisor for every worker\'s metrics and resolves with its answer; answers a collect with its own registry', async () => {
    const { ch, sent, deliver } = channel();
    const link = connectWorker(ch, 3, new FakeClock());
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.journalHits.inc(5);
    link.serve(metrics.registry);
    const answer = link.metrics();
    expect(sent).toEqual([{ tw: 'scrape', id: 1 }]);
    deliver({ tw: 'metrics', id: 1, text: 'tagwarden_workers 2\n' });
    expect(await answer).toBe('tagwarden_workers 2\n');
    deliver({ tw: 'collect', id: 9 });
    await new Promise((r) => setImmediate(r));
    const collected = sent[1] as Extract<ToPrimary, { tw: 'collected' }>;
    expect(collected.id).toBe(9);
    expect(collected.metrics.find((m) => m.name === 'tagwarden_journal_hits_total')?.values[0]?.value).toBe(5);
    expect(link.worker).toBe(3);
  });

  it('a scrape with no answer fails after the timeout (503), and with no supervisor at once', async () => {
    const clock = new FakeClock();
    const link = connectWorker(channel().ch, 1, clock, 1_000);
    const late = link.metrics();
    clock.advance(1_000);
    await expect(late).rejects.toMatchObject({ code: 'TW_ERR_UNAVAILABLE' });
    await expect(connectWorker(channel(false).ch, 1, clock).metrics()).rejects.toMatchObject({ code: 'TW_ERR_UNAVAILABLE' });
  });

  it('carries consent changes both ways; other messages are ignored', () => {
    const { ch, sent, deliver } = channel();
    const link = connectWorker(ch, 1, new FakeClock());
    const heard: string[] = [];
    link.relay.subscribe((site, subject) => heard.push(`${site}/${subject}`));
    link.relay.publish('shop', 'visitor:v1');
    deliver({ tw: 'consent_changed', siteId: 'shop', subjectKey: 'visitor:v2' });
    deliver({ type: 'prom-client:getMetricsReq' });
    deliver('NODE_CLUSTER');
    expect(sent).toEqual([{ tw: 'consent_changed', siteId: 'shop', subjectKey: 'visitor:v1' }]);
    expect(heard).toEqual(['shop/visitor:v2']);
  });
});
