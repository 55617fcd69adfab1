/**
 * The one precedence rule between two consent claims about the same category or item, used by the
 * per-hit merge (./merge.ts) and by the consent store (src/store/consent.ts). Last write wins by
 * the consent's own time (Seeka's precedence, DESIGN.md "Consent resolution"); at equal times the
 * most restrictive claim wins: a denial over a grant, then the grant that expires first. The source
 * name breaks what is left, so the order claims arrive in never changes the result.
 */
export interface ConsentClaim {
  status: 'granted' | 'denied';
  /** When the consent was given, by its own clock (ms since the epoch); a time that is not finite sorts as the oldest. */
  at: number;
  /** When a grant stops being valid (ms since the epoch); null or absent: never. */
  validUntil?: number | null | undefined;
  source: string;
}

function time(t: number): number {
  return Number.isFinite(t) ? t : Number.NEGATIVE_INFINITY;
}

/** True when `a` replaces `b`. A strict total order: equal claims give false both ways (nothing would change). */
export function supersedes(a: ConsentClaim, b: ConsentClaim): boolean {
  const at = time(a.at);
  const bt = time(b.at);
  if (at !== bt) return at > bt;
  if (a.status !== b.status) return a.status === 'denied';
  const av = a.validUntil ?? Number.POSITIVE_INFINITY;
  const bv = b.validUntil ?? Number.POSITIVE_INFINITY;
  if (av !== bv) return av < bv;
  return a.source < b.source;
}
