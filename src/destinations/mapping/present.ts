/** Missing, `null` and `""` are all "not there" for vendors; treating them alike keeps fallbacks simple. */
export function isPresent(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}
