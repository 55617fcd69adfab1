import { describe, expect, it } from 'vitest';
import { bindDestination } from '../destinations/bind.ts';
import { compileTemplate, loadTemplates } from '../destinations/load.ts';
import type { Event } from '../ingest/event.ts';
import { previewRoute } from './test-mode.ts';
import type { PreviewMark } from './types.ts';

const templates = loadTemplates();
const bind = (template: string, id: string, settings: Record<string, unknown>) => bindDestination({ id, template: templates.get(template)!, settings });
const now = new Date().toISOString();
const event: Event = {
  messageId: 'm-1',
  type: 'track',
  event: 'Order Completed',
  timestamp: now,
  receivedAt: now,
  anonymousId: 'anon-1',
  context: { userAgent: 'Mozilla/5.0', ip: '203.0.113.9', page: { url: 'https://shop.example/' } },
  properties: { value: 10, currency: 'EUR' },
  traits: {},
  integrations: {},
};
const mark = (mode: PreviewMark['mode'], testEventCodes: Record<string, string> = {}): PreviewMark => ({ id: 'preview-id-0123456789', mode, testEventCodes });

function rendered(d: ReturnType<typeof bind>) {
  const r = d.render(event, []);
  if (!r.ok) throw new Error(`not rendered: ${JSON.stringify(r)}`);
  return r;
}

describe('previewRoute: the template test modes', () => {
  const meta = bind('meta-capi', 'meta', { pixelId: '1234567890', accessToken: 'tok' });
  const tiktok = bind('tiktok-events', 'tt', { pixelCode: 'COQDA8RC77U2TMR44LI0', accessToken: 'tok' });
  const ga4 = bind('ga4', 'ga', { measurementId: 'G-ABCDEF1', apiSecret: 'sec' });
  const hook = bind('webhook', 'hook', { url: 'https://hooks.example/x' });

  it('meta-capi and tiktok-events: test_event_code at the top of the body, from the preview', () => {
    for (const d of [meta, tiktok]) {
      const r = previewRoute(mark('test', { [d.id]: 'TEST77' }), d, rendered(d), Date.parse(now));
      if (!('send' in r)) throw new Error(r.drop);
      expect(r.send.envelope.test_event_code).toBe('TEST77');
      const body = JSON.parse(d.buildRequest(r.send.envelope, [r.send.item]).body as string);
      expect(body.test_event_code).toBe('TEST77');
      // Without a code for it, the destination is not sent in preview.
      expect(previewRoute(mark('test', { other: 'X' }), d, rendered(d), Date.parse(now))).toEqual({ drop: 'preview_no_test_code' });
    }
  });

  it('ga4: params.debug_mode true on the event, no code needed; its own batch even beside an equal envelope', () => {
    const plain = rendered(ga4);
    const r = previewRoute(mark('test'), ga4, plain, Date.parse(now));
    if (!('send' in r)) throw new Error(r.drop);
    expect((r.send.item as any).params.debug_mode).toBe(true);
    expect((plain.item as any).params.debug_mode).toBeUndefined();
    expect(r.send.envelope).toEqual(plain.envelope);
    expect(r.send.groupKey).not.toBe(plain.groupKey);
    expect(r.send.groupKey.startsWith('preview:preview-id-0123456789')).toBe(true);
  });

  it("the vendor's rules are checked again with the test mode's fields: one that breaks a rule is not sent, with its reason", () => {
    const { template, issues } = compileTemplate({
      id: 'probe',
      name: 'Probe',
      version: 1,
      description: 'A template whose vendor takes one parameter',
      request: { method: 'POST', url: 'https://vendor.example/collect' },
      mappings: [{ event: { name: { '@path': '$.event' }, params: { value: { '@path': '$.properties.value' } } } }],
      rules: { checks: [{ id: 'probe_params', kind: 'keys', path: 'params', maxCount: 1, description: 'At most one parameter', docs: 'https://vendor.example/limits' }] },
      testMode: { docs: 'https://vendor.example/debug', set: { 'params.debug_mode': true } },
    });
    expect(issues).toEqual([]);
    const probe = bindDestination({ id: 'probe', template: template! });
    expect(previewRoute(mark('test'), probe, rendered(probe), Date.parse(now))).toEqual({ drop: 'vendor_rule:probe_params' });
  });

  it('silent, or no test mode in the template: not sent', () => {
    expect(previewRoute(mark('silent', { meta: 'X' }), meta, rendered(meta), Date.parse(now))).toEqual({ drop: 'preview_silent' });
    expect(previewRoute(mark('test'), hook, rendered(hook), Date.parse(now))).toEqual({ drop: 'preview_no_test_mode' });
  });
});
