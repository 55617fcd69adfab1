import { bodyText, type BoundDestination, type RenderedEvent, type VendorRequest } from '../destinations/types.ts';
import type { Event } from '../ingest/event.ts';
import { truncateIp } from '../destinations/mapping/ip.ts';
import { maskRequest } from '../observability/mask.ts';
import { scrubPii } from '../lib/pii.ts';
import type { Decision } from '../policy/decide.ts';
import { reasonText, type Reason } from '../policy/reasons.ts';
import type { Evaluation, RuntimeDestination } from './types.ts';

/**
 * Step "render": the vendor request of a forwarded or redacted event (nothing for a hold or a drop).
 * The one place a vendor rule acts: a rendered event that breaks one of its template's `rules`
 * (checked by the bound destination on what would be sent) is decided `drop` with reason
 * `vendor_rule:<id>`, so it is counted, logged and explained like any other drop, and never sent.
 */
export function render(d: RuntimeDestination, event: Event, decision: Decision): Evaluation {
  if (decision.outcome !== 'forward' && decision.outcome !== 'redact') return { destinationId: d.policy.id, decision };
  const rendered = d.bound.render(d.truncateIp === true ? withTruncatedIp(event) : event, decision.redactions);
  if (!rendered.ok && rendered.kind === 'vendor_rule') {
    return { destinationId: d.policy.id, decision: vendorRuleDrop(decision, rendered.rule), vendorRule: { rule: rendered.rule, path: rendered.path } };
  }
  return { destinationId: d.policy.id, decision, rendered };
}

/** The decision turned into a drop by a vendor rule: its reasons, then the rule that settled it. */
function vendorRuleDrop(decision: Decision, rule: string): Decision {
  const reason: Reason = { code: 'vendor_rule', rule };
  const { category: _category, ...rest } = decision;
  return { ...rest, outcome: 'drop', reason: reason.code, metricLabel: reasonText(reason), awaitsConsent: false, reasons: [...decision.reasons, reason] };
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
  if (rendered.kind === 'vendor_rule') return reasonText({ code: 'vendor_rule', rule: rendered.rule });
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
