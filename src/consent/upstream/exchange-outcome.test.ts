import { describe, expect, it } from 'vitest';
import { exchangeOutcome } from './exchange-outcome.ts';

describe('exchangeOutcome', () => {
  it('names each way a request ends, the status bucketed with 429 on its own', () => {
    expect(exchangeOutcome({ kind: 'status', status: 429, retryAfter: '5' })).toBe('http_429');
    expect(exchangeOutcome({ kind: 'status', status: 503 })).toBe('http_5xx');
    expect(exchangeOutcome({ kind: 'status', status: 401 })).toBe('http_4xx');
    expect(exchangeOutcome({ kind: 'status', status: 302 })).toBe('http_other');
    expect(exchangeOutcome({ kind: 'status', status: 204 })).toBe('http_other');
    expect(exchangeOutcome({ kind: 'timeout' })).toBe('timeout');
    expect(exchangeOutcome({ kind: 'network' })).toBe('network');
    expect(exchangeOutcome({ kind: 'malformed' })).toBe('malformed');
    expect(exchangeOutcome({ kind: 'closed' })).toBe('closed');
    expect(exchangeOutcome({ kind: 'answer', answer: { consents: {} } as never })).toBe('answer');
  });
});
