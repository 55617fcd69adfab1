/**
 * Every length bound of a Segment event, in one place: the zod schema (segment.ts) takes each of its
 * bounds from here, and so do its quick pre-check (segment-fast.ts), the batch's `sentAt`
 * (segment-routes.ts) and the GA4 client's fields (ga4.ts).
 */
export const LIMITS = {
  id: 256,
  date: 64,
  ip: 64,
  userAgent: 1024,
  locale: 64,
  pageText: 8192,
  pageTitle: 1024,
  name: 200,
  channel: 64,
  writeKey: 256,
} as const;
