import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { readCookie } from '../http/cookies.ts';
import { requestIdOf } from '../observability/request-id.ts';
import type { PreviewRegistry } from './registry.ts';
import type { PreviewMark } from './types.ts';

export const PREVIEW_COOKIE = 'tw_preview';
export const PREVIEW_HEADER = 'x-tagwarden-preview';

/**
 * The preview a hit's request belongs to: its `X-Tagwarden-Preview` header, else its `tw_preview`
 * cookie (what /preview/start sets), as sGTM's preview does. Read once per request: the answer is
 * kept by the request's headers object, which every event of a batch shares. An invalid, expired
 * or stopped token is ignored (the hit is an ordinary one), logged at debug without the token.
 * With no preview on, no request is looked at.
 */
export function previewReader(registry: Pick<PreviewRegistry, 'active' | 'resolve'>, log: Logger): (headers: IncomingHttpHeaders) => PreviewMark | undefined {
  const read = new WeakMap<IncomingHttpHeaders, PreviewMark | null>();
  return (headers) => {
    if (registry.active === 0) return undefined;
    const known = read.get(headers);
    if (known !== undefined) return known ?? undefined;
    const header = headers[PREVIEW_HEADER];
    const token = typeof header === 'string' ? header : readCookie(headers.cookie, PREVIEW_COOKIE);
    const mark = token === undefined ? undefined : registry.resolve(token)?.mark;
    if (token !== undefined && mark === undefined) log.debug({ requestId: requestIdOf(headers), from: typeof header === 'string' ? 'header' : 'cookie' }, 'preview token ignored (invalid, expired or stopped)');
    read.set(headers, mark ?? null);
    return mark;
  };
}
