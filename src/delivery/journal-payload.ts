/**
 * The journal's record of one accepted hit: its canonical event and the request signals its
 * decisions need (consent is decided again from them on resume). One encoder and one decoder, so
 * the writer, the resume path and the dead-letter views read the same format.
 */
import type { RequestSignals } from '../consent/signals.ts';
import type { Event } from '../ingest/event.ts';
import { eventJson } from './event-json.ts';

export interface JournaledHit {
  event: Event;
  signals: RequestSignals;
}

/** The same text as JSON.stringify({ event, signals }), with the event's part shared (event-json.ts). */
export function encodeJournaledHit(hit: JournaledHit): string {
  return `{"event":${eventJson(hit.event)},"signals":${JSON.stringify(hit.signals)}}`;
}

/** The stored hit, or undefined when the payload is unreadable (never written by this version). */
export function decodeJournaledHit(payload: string): JournaledHit | undefined {
  try {
    const stored = JSON.parse(payload) as Partial<JournaledHit> | null;
    if (stored === null || typeof stored !== 'object' || typeof stored.event?.messageId !== 'string' || stored.signals === undefined) return undefined;
    return stored as JournaledHit;
  } catch {
    return undefined;
  }
}
