import { describe, expect, it } from 'vitest';
import type { Event } from '../ingest/event.ts';
import { compileSources, type HitSources } from '../identity/visitor.ts';
import { readSignals } from './signals.ts';

const identity = { sources: compileSources([{ cookie: 'cb_vid' }, { body: 'anonymousId' }]), maxIdLength: 128 };

function event(consent?: Record<string, unknown>): Event {
  return { messageId: 'm', type: 'track', timestamp: '2026-03-01T00:00:00.000Z', receivedAt: '2026-03-01T00:00:00.000Z', context: consent === undefined ? {} : { consent }, properties: {}, traits: {}, integrations: {}, anonymousId: 'anon-1' };
}

function hit(headers: HitSources['headers'] = {}, query = '', body: unknown = { anonymousId: 'anon-1' }): HitSources {
  return { headers, query: new URLSearchParams(query), body };
}

describe('readSignals', () => {
  it('reads nothing from a bare hit but the visitor', () => {
    expect(readSignals(hit(), event(), identity)).toEqual({ gpc: false, visitor: { id: 'anon-1', source: 'body:anonymousId' } });
  });

  it.each([
    [{ 'sec-gpc': '1' }, true],
    [{ 'sec-gpc': '0' }, false],
    [{ 'sec-gpc': 'true' }, false],
    [{}, false],
  ])('Sec-GPC %j → gpc %s', (headers, gpc) => {
    expect(readSignals(hit(headers), event(), identity).gpc).toBe(gpc);
  });

  it('reads gcs, gcd and gdpr from the query', () => {
    expect(readSignals(hit({}, 'gcs=G111&gcd=13t3t3t3t5&gdpr=1'), event(), identity)).toMatchObject({ gcs: 'G111', gcd: '13t3t3t3t5', gdprApplies: true });
    expect(readSignals(hit({}, 'gdpr=0'), event(), identity).gdprApplies).toBe(false);
    expect(readSignals(hit({}, 'gdpr=yes'), event(), identity).gdprApplies).toBeUndefined();
  });

  it('takes the TCF string from the query, then the event, then the cookie', () => {
    const all = hit({ cookie: 'euconsent-v2=FROMCOOKIE' }, 'gdpr_consent=FROMQUERY');
    const ev = event({ privacy: { tcfConsentString: 'FROMBODY' } });
    expect(readSignals(all, ev, identity).tcf).toEqual({ value: 'FROMQUERY', source: 'query:gdpr_consent' });
    expect(readSignals(hit({ cookie: 'euconsent-v2=FROMCOOKIE' }), ev, identity).tcf).toEqual({ value: 'FROMBODY', source: 'body:context.consent.privacy.tcfConsentString' });
    expect(readSignals(hit({ cookie: 'euconsent-v2=FROMCOOKIE' }), event(), identity).tcf).toEqual({ value: 'FROMCOOKIE', source: 'cookie:euconsent-v2' });
    expect(readSignals(hit(), event({ privacy: { tcfConsentString: 42 } }), identity).tcf).toBeUndefined();
  });

  it('prefers the CMP cookie for the visitor when configured first', () => {
    expect(readSignals(hit({ cookie: 'cb_vid=v-9' }), event(), identity).visitor).toEqual({ id: 'v-9', source: 'cookie:cb_vid' });
  });

  it('reads the geo header of site.jurisdiction as sent (the policy interprets it), and nothing without one', () => {
    const geo = { ...identity, regionHeader: 'cf-ipcountry' };
    expect(readSignals(hit({ 'cf-ipcountry': 'de' }), event(), geo).region).toEqual({ header: 'cf-ipcountry', value: 'de' });
    expect(readSignals(hit({ 'cf-ipcountry': 'XX' }), event(), geo).region).toEqual({ header: 'cf-ipcountry', value: 'XX' });
    expect(readSignals(hit({ 'cf-ipcountry': ['DE', 'FR'] }), event(), geo).region).toEqual({ header: 'cf-ipcountry', value: 'DE, FR' });
    expect(readSignals(hit({ 'cf-ipcountry': 'D'.repeat(5000) }), event(), geo).region?.value).toHaveLength(16);
    expect(readSignals(hit({ 'cf-ipcountry': '' }), event(), geo).region).toBeUndefined();
    expect(readSignals(hit({}), event(), geo).region).toBeUndefined();
    expect(readSignals(hit({ 'cf-ipcountry': 'DE' }), event(), identity).region).toBeUndefined();
  });
});

