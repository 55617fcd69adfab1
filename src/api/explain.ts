import { Router } from 'express';
import { queryString } from '../http/query.ts';
import { ValidationError } from '../errors.ts';
import { jsonBody } from '../http/body.ts';
import { parseSegmentEvent } from '../ingest/segment.ts';
import { previewRequest, renderDropReason, type Pipeline, type RuntimeDestination } from '../pipeline.ts';
import { bodyText } from '../destinations/types.ts';
import { readSignals } from '../consent/signals.ts';
import type { ConsentState } from '../consent/state.ts';
import type { CompiledSource } from '../identity/visitor.ts';
import { requireAdminKey } from './admin-auth.ts';

/**
 * `POST /debug/explain`: runs a Segment event through consent, policy and the templates and
 * answers, per destination, the decision, its reasons and the vendor request that would be sent
 * (secrets masked). Nothing is sent and nothing is counted.
 */
export function explainRouter(opts: {
  adminKey: string;
  maxBytes: number;
  pipeline: Pipeline;
  destinations: readonly RuntimeDestination[];
  identity: { sources: readonly CompiledSource[]; maxIdLength: number };
}): Router {
  const router = Router();
  router.post('/debug/explain', requireAdminKey(opts.adminKey), jsonBody(opts.maxBytes), (req, res) => {
    const body = req.body as Record<string, unknown>;
    const routeType = body !== null && typeof body === 'object' && body.type === undefined ? 'track' : undefined;
    const parsed = parseSegmentEvent(body, routeType, { ip: req.ip, userAgent: req.headers['user-agent'], now: new Date() });
    if (!parsed.ok) throw new ValidationError('invalid event', { details: { issues: parsed.issues } });
    // The explain request's own headers and query carry the signals (Sec-GPC, cookies, gdpr_consent,
    // gcs/gcd), so an operator can replay what a browser sent.
    const query = new URLSearchParams(queryString(req));
    const signals = readSignals({ headers: req.headers, query, body }, parsed.event, opts.identity);
    const { consent, evaluations } = opts.pipeline.evaluate(parsed.event, signals);
    const destinations = evaluations.map((ev, i) => {
      const dest = opts.destinations[i]!;
      const out: Record<string, unknown> = {
        id: ev.destinationId,
        template: dest.bound.templateId,
        decision: ev.decision.outcome,
        reasons: ev.decision.reasons,
      };
      if (ev.decision.redactions.length > 0) out.redactions = ev.decision.redactions;
      if (dest.dryRun) out.dryRun = true;
      const r = ev.rendered;
      if (r === undefined) return out;
      if (!r.ok) {
        out.decision = 'drop';
        out.reasons = [...ev.decision.reasons, renderDropReason(r)];
        if (r.kind === 'error') out.error = { code: (r.error as { code?: string }).code ?? 'TW_ERR_RENDER', message: r.error.message };
        return out;
      }
      const request = previewRequest(dest.bound, r);
      out.request = { ...request, body: request.body === undefined ? undefined : safeJson(bodyText(request) ?? '') };
      return out;
    });
    res.json({ event: parsed.event, visitor: signals.visitor, consent: consentView(consent), destinations });
  });
  return router;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The consent state as JSON: the decoded TCF string summarised (its model holds functions and Sets). */
function consentView(consent: ConsentState): Record<string, unknown> {
  const out: Record<string, unknown> = { categories: consent.categories, gpc: consent.gpc ?? false };
  const tcf = consent.tcf;
  if (tcf !== undefined) {
    const view: Record<string, unknown> = { applies: tcf.applies };
    if (tcf.source !== undefined) view.source = tcf.source;
    if (tcf.result !== undefined) {
      if (tcf.result.ok) {
        const t = tcf.result.tcf;
        view.valid = true;
        view.policyVersion = t.policyVersion;
        view.cmpId = t.cmpId;
        view.lastUpdated = t.lastUpdated.toISOString();
        view.purposeConsents = [...t.purposeConsents].sort((a, b) => a - b);
        view.purposeLegitimateInterests = [...t.purposeLegitimateInterests].sort((a, b) => a - b);
      } else {
        view.valid = false;
        view.reason = tcf.result.reason;
      }
    }
    out.tcf = view;
  }
  return out;
}
