const IDENTIFIER_KEY = /^[A-Za-z_$@][\w$@-]*$/;

/**
 * Append a key or index to a JSON path the way people write it: `a.b[0]["odd key"]`. Issues of a
 * template file (mapping, schema and case problems) are located with it, so an author can find them.
 */
export function joinPath(at: string, key: string | number): string {
  if (typeof key === 'number') return `${at}[${key}]`;
  if (IDENTIFIER_KEY.test(key)) return at === '' ? key : `${at}.${key}`;
  return `${at}[${JSON.stringify(key)}]`;
}
