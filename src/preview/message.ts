import { bodyText } from '../destinations/types.ts';
import { previewRequest } from '../pipeline/render.ts';
import type { PreviewDecision } from '../pipeline/types.ts';
import { reasonText } from '../policy/reasons.ts';
import { maskUrlCredentials } from '../lib/mask-secrets.ts';

const MASK = '[secret]';

/** The `event: decision` message of a preview's stream (docs/preview.md). */
export interface DecisionMessage {
  at: number;
  messageId: string;
  eventType: string;
  eventName?: string;
  destinationId: string;
  outcome: string;
  reason: string;
  rules: string[];
  consent: Record<string, { status: string; source: string }>;
  request?: { method: string; url: string; body: unknown };
  sent: boolean;
}

/**
 * What the marketer sees of one decision: the rules that made it, the consent it was made with, and
 * the request as rendered for the vendor. Credentials never: the template's secret settings are
 * masked wherever they appear (src/observability/mask.ts), credential-like query parameters are
 * masked whatever their value, headers are not shown (they carry tokens: TikTok's Access-Token;
 * an OAuth bearer is added by delivery only, never rendered). The body is the visitor's own
 * browser's data, shown to an admin.
 */
export function decisionMessage(d: PreviewDecision, at: number): DecisionMessage {
  const rules = d.decision === undefined ? [d.reason] : d.decision.reasons.map(reasonText);
  if (!rules.includes(d.reason)) rules.push(d.reason);
  const consent: DecisionMessage['consent'] = {};
  for (const [c, v] of Object.entries(d.consent?.categories ?? {})) consent[c] = { status: v.status, source: v.source };
  const m: DecisionMessage = {
    at,
    messageId: d.event.messageId,
    eventType: d.event.type,
    destinationId: d.destination.policy.id,
    outcome: d.outcome,
    reason: d.reason,
    rules,
    consent,
    sent: d.sent,
  };
  // A track event's name, or a page's or screen's.
  const name = d.event.type === 'track' ? d.event.event : d.event.name;
  if (typeof name === 'string') m.eventName = name;
  if (d.rendered !== undefined) {
    try {
      const req = previewRequest(d.destination.bound, d.rendered);
      const text = bodyText(req);
      m.request = { method: req.method, url: maskUrl(req.url), body: text === undefined ? undefined : jsonOrText(text) };
    } catch {
      // A request that cannot be built is not shown; delivery reports its failure.
    }
  }
  return m;
}

function maskUrl(href: string): string {
  // Not a URL at all: shown as masked rather than as it is.
  return URL.canParse(href) ? maskUrlCredentials(href) : MASK;
}

function jsonOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
