import { describe, expect, it } from 'vitest';
import type { ConsentChange } from './types.ts';
import { matchesFilters } from './webhooks.ts';

const change: ConsentChange = {
  siteId: 'shop',
  subject: { type: 'user', id: 'anna' },
  version: 2,
  items: [
    { item: 'ref:Dealership', status: 'granted', consentAt: 1, validUntil: null, source: 'secureprivacy', expired: false },
    { item: 'analytics', status: 'granted', consentAt: 1, validUntil: null, source: 'secureprivacy', expired: false },
  ],
  recordChanged: false,
  at: 1,
};
const evidence = new Map([['ref:Dealership', { Reference: 'Dealership', ConsentType: 'Dealership', CustomUserId: 'anna' }]]);

describe('webhook evidence filters (SecurePrivacy subscriptions)', () => {
  it('match the evidence of a ref: item the changed subject holds, every criterion given', () => {
    expect(matchesFilters({ references: ['Dealership'] }, change, evidence)).toBe(true);
    expect(matchesFilters({ references: ['Call'] }, change, evidence)).toBe(false);
    expect(matchesFilters({ references: ['Dealership'], consentTypes: ['Dealership'], customUserIds: ['anna'] }, change, evidence)).toBe(true);
    expect(matchesFilters({ references: ['Dealership'], customUserIds: ['bob'] }, change, evidence)).toBe(false);
    expect(matchesFilters({ consentTypes: ['Dealership'], sources: ['import'] }, change, evidence)).toBe(false);
  });

  it('without the evidence (a linked subject, or none recorded) nothing matches; the other filters are unchanged', () => {
    expect(matchesFilters({ references: ['Dealership'] }, change, new Map())).toBe(false);
    expect(matchesFilters({ references: ['Dealership'] }, change)).toBe(false);
    expect(matchesFilters({ items: ['analytics'] }, change)).toBe(true);
    expect(matchesFilters({}, change)).toBe(true);
  });
});
