/** The benchmark's Tagwarden configuration (bench/servers/tagwarden.ts and bench/stages.ts). */

/** The benchmark configuration, as a tagwarden.yaml would say it, with the destinations named. */
export function benchConfig(sinkOrigin: string, logLevel: string, destinationIds: readonly string[]): unknown {
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
        advertising: { description: 'Ads measurement' },
        analytics: { description: 'Audience measurement' },
      },
    },
    destinations: all.filter((d) => destinationIds.includes(d.id)),
    log: { level: logLevel },
  };
}
