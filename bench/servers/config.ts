/** The benchmark's Tagwarden configuration (bench/servers/tagwarden.ts and bench/stages.ts). */
import { parseConfig } from '../../src/config/load.ts';

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
  /** `server.workers` (node:cluster processes); absent: the key is left out, one process. */
  workers?: number | 'auto';
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
    server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 5_000, ...(options.workers === undefined ? {} : { workers: options.workers }) },
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

/**
 * Why a config with `server.workers` cannot be used, or undefined when it can. The key belongs to
 * the node:cluster work of issue 16; a build without it refuses it as an unknown key, and the
 * bench then skips its clustered target instead of failing.
 */
export function workersUnsupported(workers: number | 'auto'): string | undefined {
  try {
    parseConfig(benchConfig('http://127.0.0.1:9', 'warn', [], { workers }), { env: {} }, 'bench config');
    return undefined;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return message.includes('workers') ? `this build's config does not know server.workers (${message.split('\n').find((l) => l.includes('workers'))?.trim() ?? message})` : message;
  }
}
