import { timingSafeEqual } from 'node:crypto';

/**
 * Whether two secrets' texts are equal, in time independent of where they differ. Compared as
 * UTF-8 bytes: equal string lengths do not mean equal byte lengths (a header of 43 'é' is 86
 * bytes), and timingSafeEqual throws on buffers of different lengths.
 */
export function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
