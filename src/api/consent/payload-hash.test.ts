import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { payloadHash } from './inputs.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('payloadHash', () => {
  it('hashes a string as is and any other JSON value as its JSON text (hashes stored before stay the same)', () => {
    expect(payloadHash('a,b')).toBe(sha('a,b'));
    const v = { action: 'accept', category: 'analytics', n: [1, 'x', null, true], o: { k: 1 } };
    expect(payloadHash(v)).toBe(sha(JSON.stringify(v)));
    expect(payloadHash(undefined)).toBe(sha(''));
  });

  it('never throws: nesting deeper than the stack, cycles, BigInt', () => {
    let deep: unknown[] = [];
    const root = deep;
    for (let i = 0; i < 200_000; i++) {
      const next: unknown[] = [];
      deep.push(next);
      deep = next;
    }
    expect(() => JSON.stringify(root)).toThrow(RangeError);
    const h = payloadHash(root);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(payloadHash(root)).toBe(h);

    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(payloadHash(cyclic)).toMatch(/^[0-9a-f]{64}$/);
    expect(payloadHash({ n: 10n })).not.toBe(payloadHash({ n: 10 }));
  });

  it('the fallback walk writes what JSON.stringify would for the same shape', () => {
    const cyclic: Record<string, unknown> = { a: [1, { b: 'x"y' }], c: null };
    cyclic.self = cyclic;
    expect(payloadHash(cyclic)).toBe(sha('{"a":[1,{"b":"x\\"y"}],"c":null,"self":"[repeated]"}'));
  });
});
