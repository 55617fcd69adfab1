/**
 * Freezes a value and everything reachable from it, so configuration and template constants shared
 * by every hit cannot be changed by one of them. Already-frozen objects are not walked again
 * (frozen template constants are shared between templates).
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
