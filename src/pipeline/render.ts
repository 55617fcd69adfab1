import { bodyText, type BoundDestination, type RenderedEvent, type VendorRequest } from '../destinations/types.ts';
import type { Event } from '../ingest/event.ts';
import { truncateIp } from '../destinations/mapping/ip.ts';
import { maskRequest } from '../observability/mask.ts';
import { scrubPii } from '../lib/pii.ts';
import type { Decision } from '../policy/decide.ts';
import type { Evaluation, RuntimeDestination } from './types.ts';

/** Step "render": the vendor request of a forwarded or redacted event (nothing for a hold or a drop). */
export function render(d: RuntimeDestination, event: Event, decision: Decision): Evaluation {
  if (decision.outcome !== 'forward' && decision.outcome !== 'redact') return { destinationId: d.policy.id, decision };
  return { destinationId: d.policy.id, decision, rendered: d.bound.render(d.truncateIp === true ? withTruncatedIp(event) : event, decision.redactions) };
}

/** The event with `context.ip` truncated (an address that cannot be parsed is removed, never sent whole). */
function withTruncatedIp(event: Event): Event {
  const ip = event.context.ip;
  if (ip === undefined) return event;
  const context = { ...event.context };
  const cut = truncateIp(ip);
  if (cut === undefined) delete context.ip;
  else context.ip = cut;
  return { ...event, context };
}

/** The drop reason of an event its template could not render: the skip's own reason, or `render_error`. */
export function renderDropReason(rendered: Extract<RenderedEvent, { ok: false }>): string {
  return rendered.kind === 'skip' ? rendered.reason : 'render_error';
}

/** The request one rendered event would be sent as, secrets masked (dry runs and explain). */
export function previewRequest(bound: BoundDestination, rendered: Extract<RenderedEvent, { ok: true }>): VendorRequest {
  return maskRequest(bound.buildRequest(rendered.envelope, [rendered.item]), bound.secretValues);
}

/** What a dry run logs: the request with secrets masked and personal data scrubbed. */
export function dryRunView(bound: BoundDestination, rendered: Extract<RenderedEvent, { ok: true }>): unknown {
  const req = previewRequest(bound, rendered);
  const text = bodyText(req);
  let body: unknown = text;
  if (text !== undefined) {
    try {
      body = scrubPii(JSON.parse(text));
    } catch {
      body = `[${text.length} characters, not JSON]`;
    }
  }
  return { method: req.method, url: req.url.split('?', 1)[0], headers: Object.keys(req.headers), body };
}
