import { describe, expect, it } from 'vitest';
import type { ConsentState } from '../consent/state.ts';
import { visitorCookie } from './cookie.ts';

const options = { name: '_tw_vid', maxAgeDays: 30, category: 'analytics', domain: 'example.com' };
const consent = (status: 'granted' | 'denied' | 'unknown'): ConsentState => ({ categories: { analytics: { status, source: 'segment' } }, preferencesPresent: true });

describe('visitorCookie: computed, never written by identity', () => {
  it('holds the hit visitor id with every attribute when the category is granted', () => {
    expect(visitorCookie(options, undefined, { id: 'v-1', source: 'body:anonymousId' }, consent('granted'), 128)).toEqual({
      name: '_tw_vid',
      value: 'v-1',
      header: '_tw_vid=v-1; Path=/; Max-Age=2592000; Secure; HttpOnly; SameSite=Lax; Domain=example.com',
    });
  });

  it('keeps an id it set before over the hit visitor id', () => {
    expect(visitorCookie(options, 'a=1; _tw_vid=earlier', { id: 'v-1', source: 'q' }, consent('granted'), 128)?.value).toBe('earlier');
  });

  it('makes a random id when the hit has none', () => {
    expect(visitorCookie(options, undefined, undefined, consent('granted'), 128)?.value).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each(['denied', 'unknown'] as const)('is undefined when the category is %s', (status) => {
    expect(visitorCookie(options, undefined, { id: 'v-1', source: 'q' }, consent(status), 128)).toBeUndefined();
  });
});
