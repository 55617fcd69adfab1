/**
 * Most elements one list yields, for `@arrayPath` and `@hash` alike (the rest are ignored): an event
 * is untrusted input, and a bound on each list bounds the work of one render.
 */
export const MAX_ARRAY_ITEMS = 1000;
