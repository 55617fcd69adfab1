import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { HitSources } from '../identity/visitor.ts';
import type { Event } from './event.ts';

/**
 * What a parameter hit's visitor id and consent signals are read from (GA4 `/g/collect`, the Meta
 * pixel's `/tr`): its parameters as both query and body, with the id the client parsed as the
 * visitor (GA4's `cid`, the pixel's `_fbp`) as `anonymousId`. Shared by the routes and /debug/explain.
 */
export function paramHitSources(headers: IncomingHttpHeaders, params: URLSearchParams, event: Event, response?: ServerResponse): HitSources {
  const body: Record<string, unknown> = Object.fromEntries(params);
  if (event.anonymousId !== undefined) body.anonymousId = event.anonymousId;
  const hit: HitSources = { headers, query: params, body };
  if (response !== undefined) hit.response = response;
  return hit;
}
