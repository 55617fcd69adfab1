import type { BoundDestination, RenderedEvent } from '../destinations/types.ts';
import { reasonText } from '../policy/reasons.ts';
import type { PreviewMark } from './types.ts';

type RenderedItem = Extract<RenderedEvent, { ok: true }>;

/**
 * Why a preview's event is not sent to a destination (decision reasons, counted in
 * tagwarden_decisions_total{outcome="drop"} like any drop, docs/policy.md):
 * - `preview_silent`: the preview's mode is silent, nothing goes to any vendor;
 * - `preview_no_test_mode`: the destination's template declares no test mode (`testMode`);
 * - `preview_no_test_code`: the vendor needs a test event code and the preview has none for it.
 * And `vendor_rule:<id>` (src/policy/reasons.ts) when what the test mode adds breaks one of the
 * vendor's rules, as for any event.
 */
export type PreviewDropReason = 'preview_silent' | 'preview_no_test_mode' | 'preview_no_test_code';

/** `drop`: a PreviewDropReason, or a vendor rule's reason text. */
export type PreviewRoute = { send: RenderedItem } | { drop: string };

/**
 * A preview's event that the policy forwards or redacts, as it goes to `bound`: with the vendor's
 * test mode applied (template data, src/destinations/bind.ts), in a batch of its own preview (the
 * group key names the preview, so the batcher never puts it in a request with other visitors'
 * events; delivery, retries and auth are otherwise the same), or not at all. The vendors' test modes:
 * Meta CAPI `test_event_code` (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api#testEventCode),
 * TikTok Events API `test_event_code` (https://business-api.tiktok.com/portal/docs?id=1771100865818625),
 * GA4 `debug_mode` (https://support.google.com/analytics/answer/7201382); each template's `testMode` says where.
 */
export function previewRoute(mark: PreviewMark, bound: BoundDestination, rendered: RenderedItem, receivedAt: number): PreviewRoute {
  if (mark.mode === 'silent') return { drop: 'preview_silent' };
  const testMode = bound.testMode;
  if (testMode === undefined) return { drop: 'preview_no_test_mode' };
  const code = Object.hasOwn(mark.testEventCodes, bound.id) ? mark.testEventCodes[bound.id] : undefined;
  if (testMode.needsCode && code === undefined) return { drop: 'preview_no_test_code' };
  const applied = testMode.apply(rendered, code, receivedAt);
  if (!applied.ok) return { drop: reasonText({ code: 'vendor_rule', rule: applied.rule }) };
  // Never JSON (which starts with `{`), so never equal to an ordinary event's group key.
  return { send: { ...applied, groupKey: `preview:${mark.id}\u0000${applied.groupKey}` } };
}
