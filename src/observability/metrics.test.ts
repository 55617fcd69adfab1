import { describe, expect, it } from 'vitest';
import { createMetrics, incrementer } from './metrics.ts';

describe('incrementer', () => {
  it('counts per label set like Counter.inc(labels)', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const inc = incrementer(m.decisions, ['destination', 'outcome', 'reason']);
    inc(['meta', 'forward', 'consent_granted:advertising']);
    inc(['meta', 'forward', 'consent_granted:advertising']);
    inc(['meta', 'drop', 'consent_denied:advertising'], 3);
    const values = (await m.decisions.get()).values.map((v) => [v.labels, v.value]);
    expect(values).toEqual([
      [{ destination: 'meta', outcome: 'forward', reason: 'consent_granted:advertising' }, 2],
      [{ destination: 'meta', outcome: 'drop', reason: 'consent_denied:advertising' }, 3],
    ]);
  });
});
