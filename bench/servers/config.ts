/** The benchmark's Tagwarden configuration (bench/servers/tagwarden.ts and bench/stages.ts). */

/** The API key the bench's Tagwarden sends to the fake verify server (bench/servers/verify.ts). */
export const BENCH_VERIFY_API_KEY = 'bench-verify-key';
/**
 * The bench's `upstream.verify.requestsPerMinute`: the schema's maximum, far above what a run can
 * ask, so the budget is never what limits the calls (CookieBoss plans allow 100, 500 or 1,000).
 */
export const BENCH_VERIFY_REQUESTS_PER_MINUTE = 1_000_000;
/** The bench's `upstream.verify.categories`: upstream name → site category. */
export const BENCH_VERIFY_CATEGORIES: Readonly<Record<string, string>> = { marketing: 'advertising', analytics: 'analytics' };

export interface BenchConfigOptions {
  /** Origin of a CookieBoss-compatible verify server: adds an `upstream.verify` block asking it. */
  verifyOrigin?: string;
  /** `upstream.verify.requestsPerMinute` (default BENCH_VERIFY_REQUESTS_PER_MINUTE: never the limit). */
  verifyRequestsPerMinute?: number;
}

/** The benchmark configuration, as a tagwarden.yaml would say it, with the destinations named. */
export function benchConfig(sinkOrigin: string, logLevel: string, destinationIds: readonly string[], options: BenchConfigOptions = {}): unknown {
  const all = [
    {
      id: 'meta',
      template: 'meta-capi',
      endpoint: `${sinkOrigin}/meta`,
      settings: { pixelId: '1234567890', accessToken: 'bench-token' },
      consent: { categories: ['advertising'] },
    },
    {
      id: 'ga4',
      template: 'ga4',
      endpoint: `${sinkOrigin}/ga4`,
      settings: { measurementId: 'G-BENCH', apiSecret: 'bench-secret' },
      consent: { categories: ['analytics'] },
    },
    {
      id: 'webhook',
      template: 'webhook',
      endpoint: `${sinkOrigin}/webhook`,
      settings: { url: `${sinkOrigin}/webhook` },
      consent: { categories: ['analytics'] },
    },
  ];
  return {
    server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 5_000 },
    site: {
      id: 'bench',
      dataControlMode: 'opt-in',
      categories: {
        // gcm: GA4 and pixel hits (bench --client ga4|pixel) carry their consent as gcs=G111.
        advertising: { description: 'Ads measurement', gcm: ['ad_storage'] },
        analytics: { description: 'Audience measurement', gcm: ['analytics_storage'] },
      },
    },
    ...(options.verifyOrigin === undefined
      ? {}
      : {
          upstream: {
            verify: {
              url: `${options.verifyOrigin}/api/v1/public/sites/{siteId}/consent/verify?visitor_id={visitorId}`,
              apiKey: BENCH_VERIFY_API_KEY,
              requestsPerMinute: options.verifyRequestsPerMinute ?? BENCH_VERIFY_REQUESTS_PER_MINUTE,
              categories: { ...BENCH_VERIFY_CATEGORIES },
            },
          },
        }),
    destinations: all.filter((d) => destinationIds.includes(d.id)),
    log: { level: logLevel },
  };
}
