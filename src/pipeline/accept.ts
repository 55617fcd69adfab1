import { requestIdOf, tagRequestId } from '../observability/request-id.ts';
import type { ConsentResolver } from '../consent/resolve.ts';
import { readSignals, type SignalReading } from '../consent/signals.ts';
import type { HitToDecide } from '../delivery/journal-runtime.ts';
import { shuttingDownError } from '../errors.ts';
import { withClickIds } from '../identity/click-ids.ts';
import { visitorCookie, type VisitorCookieOptions } from '../identity/cookie.ts';
import { validId, type HitSources } from '../identity/visitor.ts';
import type { Event } from '../ingest/event.ts';
import type { Clock } from '../lib/clock.ts';
import { setCookieOnce } from './set-cookie.ts';
import type { PreviewMark } from '../preview/types.ts';
import type { IncomingHttpHeaders } from 'node:http';

export interface AcceptDeps {
  /** False once shutdown began: a hit is then refused (503), never acknowledged after the drain. */
  accepting: () => boolean;
  /** Where the visitor id and the geo header (site.jurisdiction) are read. */
  identity: SignalReading;
  resolver: ConsentResolver;
  /** Tagwarden's own visitor id cookie (config `identity.cookie`). */
  cookie: VisitorCookieOptions & { enabled: boolean };
  /** Links the hit's visitor id and user id in the consent store; absent: no store. */
  linkHit?: ((visitorId: string, userId: string) => void) | undefined;
  /**
   * The preview a request's hits belong to (src/preview/mark.ts, read once per request: every
   * event of a batch shares the request's headers); absent: preview is off.
   */
  preview?: ((headers: IncomingHttpHeaders) => PreviewMark | undefined) | undefined;
  clock: Clock;
}

/**
 * Step "accept", the first of the pipeline, while the request is at hand: every client's accepted
 * hit comes through here (nothing downstream knows the protocol). Identity and the consent signals
 * are read now; deciding happens after the answer (./commit.ts). Returns what `commit` takes.
 */
export function createAccept(deps: AcceptDeps): (event: Event, hit: HitSources) => HitToDecide {
  const { identity, resolver, cookie, linkHit, clock } = deps;
  return (event, hit) => {
    // A hit whose body was still arriving when shutdown began: refuse it rather than
    // acknowledge it after the pipeline has been drained.
    if (!deps.accepting()) throw shuttingDownError();
    const now = new Date(clock.now());
    // Identity and signals (the visitor id is one of them).
    const signals = readSignals(hit, event, identity);
    const preview = deps.preview?.(hit.headers);
    if (preview !== undefined) signals.preview = preview;
    // The hit's own consent, only where the cookie needs it at the answer; the pipeline reuses it.
    const requestConsent = cookie.enabled ? resolver.fromRequest(event, signals, now) : undefined;
    if (requestConsent !== undefined && hit.response !== undefined) {
      const set = visitorCookie(cookie, hit.headers.cookie, signals.visitor, requestConsent, identity.maxIdLength);
      if (set !== undefined) setCookieOnce(hit.response, set);
    }
    if (linkHit !== undefined && signals.visitor !== undefined && event.userId !== undefined && validId(event.userId, identity.maxIdLength) !== undefined) {
      linkHit(signals.visitor.id, event.userId);
    }
    const accepted = withClickIds(event, now);
    // The request's id travels with the event by identity, not in it (src/observability/request-id.ts).
    tagRequestId(accepted, requestIdOf(hit.response));
    return { event: accepted, signals, requestConsent };
  };
}
