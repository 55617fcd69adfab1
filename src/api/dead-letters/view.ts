/**
 * A dead letter as the CLI and the API show it. The stored payload holds the whole event (traits,
 * context, IP, user agent: personal data), so only what identifies the event leaves the store: its
 * messageId, type and event name. Never traits, properties or context.
 */
import { decodeJournaledHit } from '../../delivery/journal-payload.ts';
import type { DeadLetter } from '../../store/journal.ts';

export interface DeadLetterView {
  hitId: number;
  destinationId: string;
  reason: string | null;
  /** TW_ERR_* (docs/errors.md): what to match on; `reason` says which limit or status. Null for rows written before the code was kept. */
  code: string | null;
  attempts: number;
  lastStatus: number | null;
  /** The vendor's last answer, bounded, secrets masked and personal data scrubbed when it was stored. */
  excerpt: string | null;
  diedAt: string;
  receivedAt: string;
  messageId: string | null;
  type: string | null;
  event: string | null;
}

/** What identifies the stored event (src/delivery/journal-payload.ts); nulls when unreadable. */
function eventIdentity(payload: string): { messageId: string | null; type: string | null; event: string | null } {
  const e = (decodeJournaledHit(payload)?.event ?? {}) as Record<string, unknown>;
  const text = (v: unknown): string | null => (typeof v === 'string' ? v.slice(0, 200) : null);
  return { messageId: text(e.messageId), type: text(e.type), event: text(e.event) };
}

export function deadLetterView(d: DeadLetter): DeadLetterView {
  return {
    hitId: d.hitId,
    destinationId: d.destinationId,
    reason: d.reason,
    code: d.code,
    attempts: d.attempts,
    lastStatus: d.lastStatus,
    excerpt: d.excerpt,
    diedAt: new Date(d.notBefore).toISOString(),
    receivedAt: new Date(d.receivedAt).toISOString(),
    ...eventIdentity(d.payload),
  };
}
