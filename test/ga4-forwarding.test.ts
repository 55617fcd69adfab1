import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * Transparent forwarding of GA4 hits (templates/ga4-collect): after the policy decides forward or
 * redact, the hit goes to Google's collect endpoint (a fake one here) in gtag.js's format; the
 * redaction strips identifiers, truncates the IP and says gcs=G100; denied hits send nothing.
 */
describe('end to end: GA4 hits forwarded to /g/collect', () => {
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0';

  beforeAll(async () => {
    vendor = await startVendor(() => ({ status: 204 }));
    tw = await startTagwarden(
      testConfig({
        server: { trustProxyHops: 1 },
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: { gcm: ['analytics_storage'] } } },
        destinations: [
          {
            id: 'ga4-hits',
            template: 'ga4-collect',
            settings: { measurementId: 'G-FALLBACK1' },
            consent: { categories: ['analytics'], whenUnknown: 'redact' },
            endpoint: `${vendor.url}/g/collect`,
          },
          {
            id: 'ga4-truncated',
            template: 'ga4-collect',
            settings: { measurementId: 'G-FALLBACK1' },
            consent: { categories: ['analytics'] },
            truncateIp: true,
            endpoint: `${vendor.url}/truncated/g/collect`,
          },
        ],
      }),
    );
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
  });

  const shared = (cid: string, gcs?: string) =>
    `v=2&tid=G-TEST123&cid=${cid}&uid=user-${cid}&_p=1700000000&ul=en-us&_dbg=1&uap=Linux&uamb=0${gcs === undefined ? '' : `&gcs=${gcs}`}`;
  const lines = [
    `en=page_view&_s=1&dl=${encodeURIComponent('https://shop.example/')}&dt=Home&sid=17&sct=2&up.plan=pro`,
    `en=purchase&_s=2&dl=${encodeURIComponent('https://shop.example/thanks')}&cu=eur&epn.value=42.5&ep.transaction_id=T-1`,
  ].join('\n');
  const send = (query: string) =>
    fetch(`${tw.url}/g/collect?${query}`, { method: 'POST', body: lines, headers: { 'content-type': 'text/plain', 'user-agent': UA, 'x-forwarded-for': '198.51.100.23' } });

  it('granted: both hits in one request, shared parameters in the URL, the visitor IP and user agent carried; denied: nothing; unknown: redacted', async () => {
    expect((await send(shared('111.111', 'G111'))).status).toBe(204);
    expect((await send(shared('222.222', 'G100'))).status).toBe(204);
    expect((await send(shared('333.333'))).status).toBe(204);
    await tw.app.flush(5000);

    const full = vendor.hits.filter((h) => h.path === '/g/collect');
    const truncated = vendor.hits.filter((h) => h.path === '/truncated/g/collect');
    // Granted (both destinations) and unknown (redacted, first destination only: the second drops).
    expect(full).toHaveLength(2);
    expect(truncated).toHaveLength(1);
    expect(JSON.stringify(vendor.hits)).not.toContain('222.222');

    const granted = full.find((h) => h.query.cid === '111.111')!;
    expect(granted.method).toBe('POST');
    expect(granted.query).toEqual({ v: '2', tid: 'G-TEST123', cid: '111.111', uid: 'user-111.111', ul: 'en-us', _p: '1700000000', gcs: 'G111', _uip: '198.51.100.23', _dbg: '1', uamb: '0', uap: 'Linux' });
    expect(granted.headers['user-agent']).toBe(UA);
    expect(granted.headers['content-type']).toBe('text/plain;charset=UTF-8');
    expect(granted.body).toBe(
      [
        'en=page_view&_s=1&dl=https%3A%2F%2Fshop.example%2F&dt=Home&sid=17&sct=2&up.plan=pro',
        'en=purchase&_s=2&dl=https%3A%2F%2Fshop.example%2Fthanks&cu=EUR&ep.transaction_id=T-1&epn.value=42.5',
      ].join('\n'),
    );
    expect(truncated[0]!.query).toMatchObject({ cid: '111.111', _uip: '198.51.100.0' });

    const redacted = full.find((h) => h.query.cid === undefined)!;
    expect(redacted.query).toEqual({ v: '2', tid: 'G-TEST123', ul: 'en-us', _p: '1700000000', gcs: 'G100', npa: '1', _uip: '198.51.100.0', _dbg: '1', uamb: '0', uap: 'Linux' });
    expect(redacted.body).toBe(
      [
        'en=page_view&_s=1&dl=https%3A%2F%2Fshop.example%2F&dt=Home&sid=17&sct=2',
        'en=purchase&_s=2&dl=https%3A%2F%2Fshop.example%2Fthanks&cu=EUR&ep.transaction_id=T-1&epn.value=42.5',
      ].join('\n'),
    );
    expect(JSON.stringify(redacted)).not.toContain('333.333');
  });
});
