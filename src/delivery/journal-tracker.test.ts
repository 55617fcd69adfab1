import { describe, expect, it } from 'vitest';
import type { Event } from '../ingest/event.ts';
import type { WorkRow } from '../store/journal.ts';
import { createJournalTracker } from './journal-tracker.ts';

const event = (messageId: string): Event => ({ messageId, type: 'track', event: 'X', timestamp: '', receivedAt: '', context: {}, properties: {}, traits: {}, integrations: {} });
const info = { at: 1_000, attempts: 3, reason: 'status_400', code: 'TW_ERR_DELIVERY_REJECTED', lastStatus: 400, excerpt: '{"error":"bad"}' };

function setup() {
  const log: string[] = [];
  const rows: WorkRow[] = [];
  const t = createJournalTracker({
    finish: (ids) => log.push(`finish ${ids.join(',')}`),
    putWork: (r) => {
      rows.push(...r);
      log.push(`work ${r.map((w) => `${w.hitId}/${w.destinationId}/${w.state}@${w.notBefore}`).join(' ')}`);
    },
    settleWork: (d, ids) => log.push(`settle ${d} ${ids.join(',')}`),
  });
  return { t, log, rows };
}

describe('journal tracker', () => {
  it('finishes a hit once every destination settled it, by policy or by a delivery result', () => {
    const { t, log } = setup();
    const e = event('m1');
    t.begin(e, 7, ['crm', 'meta', 'ga4']);
    t.settle(e, 'crm'); // dropped by policy
    t.enqueued('meta', e);
    t.enqueued('ga4', e);
    t.delivered('meta', ['m1']);
    expect(log).toEqual([]);
    t.delivered('ga4', ['m1', 'unknown']);
    expect(log).toEqual(['finish 7']);
    expect(t.open).toBe(0);
    // Late or repeated results change nothing.
    t.delivered('ga4', ['m1']);
    t.settle(e, 'crm');
    expect(log).toEqual(['finish 7']);
  });

  it('two hits with the same messageId are settled one result each, in order', () => {
    const { t, log } = setup();
    const a = event('dup');
    const b = event('dup');
    t.begin(a, 1, ['hook']);
    t.begin(b, 2, ['hook']);
    t.enqueued('hook', a);
    t.enqueued('hook', b);
    t.delivered('hook', ['dup']);
    expect(log).toEqual(['finish 1']);
    t.delivered('hook', ['dup']);
    expect(log).toEqual(['finish 1', 'finish 2']);
  });

  it('a give-up writes a dead row, and waiting rows for the destinations still busy with the hit', () => {
    const { t, log, rows } = setup();
    const e = event('m');
    t.begin(e, 5, ['meta', 'ga4', 'crm']);
    t.settle(e, 'crm');
    t.enqueued('meta', e);
    t.enqueued('ga4', e);
    t.gaveUp('meta', ['m'], info);
    expect(log).toEqual(['work 5/meta/dead@1000 5/ga4/waiting@1000']);
    expect(rows[0]).toMatchObject({ reason: 'status_400', lastStatus: 400, attempts: 3, excerpt: '{"error":"bad"}' });
    // Tracked now: GA4's delivery removes its row, then the hit is finished (its dead row keeps it).
    t.delivered('ga4', ['m']);
    expect(log.slice(1)).toEqual(['settle ga4 5', 'finish 5']);
  });

  it('a scheduled retry keeps its time in a waiting row; a later delivery settles it', () => {
    const { t, log } = setup();
    const e = event('r');
    t.begin(e, 9, ['ga4']);
    t.enqueued('ga4', e);
    t.retrying('ga4', ['r'], 6_000, { ...info, reason: 'status_429', code: 'TW_ERR_DELIVERY_RETRYABLE', lastStatus: 429 });
    t.retrying('ga4', ['r'], 9_000, { ...info, reason: 'status_429', code: 'TW_ERR_DELIVERY_RETRYABLE', lastStatus: 429 });
    expect(log).toEqual(['work 9/ga4/waiting@6000', 'work 9/ga4/waiting@9000']);
    t.delivered('ga4', ['r']);
    expect(log.slice(2)).toEqual(['settle ga4 9', 'finish 9']);
  });

  it('a give-up of the last destination writes the dead row before the finish', () => {
    const { t, log } = setup();
    const e = event('x');
    t.begin(e, 3, ['meta']);
    t.enqueued('meta', e);
    t.gaveUp('meta', ['x'], info);
    expect(log).toEqual(['work 3/meta/dead@1000', 'finish 3']);
    expect(t.open).toBe(0);
  });

  it('ignores events that were never journaled, and finishes a hit with no destination at once', () => {
    const { t, log } = setup();
    const e = event('m');
    t.settle(e, 'meta');
    t.enqueued('meta', e);
    t.delivered('meta', ['m']);
    t.gaveUp('meta', ['m'], info);
    t.begin(event('n'), 9, []);
    expect(log).toEqual(['finish 9']);
  });
});

describe('journal tracker: a replayed dead letter of a hit still open here', () => {
  it('reopens only the destinations not at work, and tracks the stored event as the same hit', () => {
    const { t, log } = setup();
    const e = event('m');
    t.begin(e, 4, ['meta', 'ga4']);
    t.enqueued('meta', e);
    t.enqueued('ga4', e);
    t.gaveUp('meta', ['m'], info); // meta dead, ga4 still retrying here
    const stored = event('m'); // read back from the journal: another object than the live one
    const again = t.reopen(4, ['meta', 'ga4'], stored);
    expect(again).toEqual({ event: stored, added: ['meta'] });
    t.enqueued('meta', stored);
    t.delivered('ga4', ['m']);
    t.delivered('meta', ['m']);
    expect(log.at(-1)).toBe('finish 4');
    expect(t.reopen(4, ['meta'], stored)).toBeUndefined();
  });

  it('three hits with one messageId on one destination settle in enqueue order', () => {
    const { t, log } = setup();
    const [a, b, c] = [event('same'), event('same'), event('same')];
    t.begin(a, 1, ['hook']);
    t.begin(b, 2, ['hook']);
    t.begin(c, 3, ['hook']);
    t.enqueued('hook', a);
    t.enqueued('hook', b);
    t.enqueued('hook', c);
    t.retrying('hook', ['same'], 5_000, info); // the first one queued
    t.delivered('hook', ['same', 'same']);
    t.delivered('hook', ['same']);
    expect(log).toEqual(['work 1/hook/waiting@5000', 'settle hook 1', 'finish 1', 'finish 2', 'finish 3']);
  });
});

describe('journal tracker: events held for consent', () => {
  const holdInfo = { at: 2_000, attempts: 0, reason: 'consent_resolving', code: null, lastStatus: null, excerpt: null };

  it('writes a held row with the deadline for the destinations held, and waiting rows for the others left', () => {
    const { t, log, rows } = setup();
    const e = event('h');
    t.begin(e, 6, ['ads', 'stats', 'crm']);
    t.settle(e, 'crm');
    t.enqueued('stats', e);
    t.held(e, ['ads'], 32_000, holdInfo);
    expect(log).toEqual(['work 6/ads/held@32000 6/stats/waiting@2000']);
    expect(rows[0]).toMatchObject({ reason: 'consent_resolving', attempts: 0 });
    // Held again with the same deadline (a resumed hold asked again): nothing new to write.
    t.held(e, ['ads'], 32_000, holdInfo);
    expect(log).toHaveLength(1);
    t.delivered('stats', ['h']);
    expect(log.slice(1)).toEqual(['settle stats 6']);
  });

  it('once decided, a held row goes: settled when dropped, replaced by a waiting row when handed to the delivery', () => {
    const { t, log } = setup();
    const denied = event('d');
    t.begin(denied, 1, ['ads']);
    t.held(denied, ['ads'], 30_000, holdInfo);
    t.settle(denied, 'ads');
    expect(log).toEqual(['work 1/ads/held@30000', 'settle ads 1', 'finish 1']);

    log.length = 0;
    const granted = event('g');
    t.begin(granted, 2, ['ads']);
    t.held(granted, ['ads'], 30_000, holdInfo);
    t.enqueued('ads', granted);
    t.decided('ads', granted, 5_000);
    // Decided once: a second decision (a requeue, then the enqueue) writes nothing more.
    t.decided('ads', granted, 6_000);
    t.retrying('ads', ['g'], 9_000, { ...info, reason: 'status_503', code: 'TW_ERR_DELIVERY_RETRYABLE', lastStatus: 503 });
    t.delivered('ads', ['g']);
    expect(log).toEqual(['work 2/ads/held@30000', 'work 2/ads/waiting@5000', 'work 2/ads/waiting@9000', 'settle ads 2', 'finish 2']);
  });

  it('a resumed hit knows its held rows: held again with the same deadline writes nothing, decided writes its waiting row', () => {
    const { t, log } = setup();
    const e = event('r');
    t.begin(e, 8, ['ads', 'stats'], true, new Map([['ads', 30_000]]));
    t.held(e, ['ads'], 30_000, holdInfo);
    t.decided('stats', e, 3_000); // never held: nothing to replace
    expect(log).toEqual([]);
    // A shorter maxAgeMs since the restart cut the hold: the new deadline is written.
    t.held(e, ['ads'], 20_000, holdInfo);
    t.decided('ads', e, 4_000);
    expect(log).toEqual(['work 8/ads/held@20000', 'work 8/ads/waiting@4000']);
  });
});
