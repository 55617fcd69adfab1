/**
 * The canonical event every client (Segment, GA4, Meta pixel) produces, shaped after the
 * Segment spec (https://segment.com/docs/connections/spec/common/). Nothing downstream of
 * ingest knows which protocol a hit came in on.
 */
export type EventType = 'track' | 'page' | 'identify' | 'screen' | 'group' | 'alias';

export const EVENT_TYPES: readonly EventType[] = ['track', 'page', 'identify', 'screen', 'group', 'alias'];

export interface EventContext {
  ip?: string;
  userAgent?: string;
  locale?: string;
  page?: { url?: string; path?: string; referrer?: string; title?: string; search?: string };
  traits?: Record<string, unknown>;
  consent?: { categoryPreferences?: unknown } & Record<string, unknown>;
  [key: string]: unknown;
}

export interface Event {
  /** Unique per event; generated when the sender gave none. The dedup key downstream. */
  messageId: string;
  type: EventType;
  /** Name of a track event. */
  event?: string;
  /** Name of a page or screen. */
  name?: string;
  /** When the event happened (ISO 8601), sender's clock; defaults to receivedAt. */
  timestamp: string;
  /** When Tagwarden received it (ISO 8601). */
  receivedAt: string;
  sentAt?: string;
  anonymousId?: string;
  userId?: string;
  previousId?: string;
  groupId?: string;
  context: EventContext;
  properties: Record<string, unknown>;
  traits: Record<string, unknown>;
  /** Segment integrations object: `All` plus per-destination booleans or option objects. */
  integrations: Record<string, unknown>;
}
