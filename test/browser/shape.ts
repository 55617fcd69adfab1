/**
 * The structure of a JSON value without its data: field names, where null sits, and the type of
 * every leaf. Two payloads of the same library version have the same shape whatever their ids,
 * times and URLs. An array's shape is the set of its items' shapes, so a list whose length depends
 * on the browser (e.g. `context.userAgentData.brands`) compares equal.
 */
export type Shape = string | { [key: string]: Shape } | { '[]': Shape[] };

export function shapeOf(value: unknown): Shape {
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const items = new Map<string, Shape>();
    for (const item of value) {
      const s = shapeOf(item);
      items.set(JSON.stringify(s), s);
    }
    return { '[]': [...items.keys()].sort().map((k) => items.get(k)!) };
  }
  if (typeof value === 'object') {
    const out: Record<string, Shape> = {};
    for (const key of Object.keys(value).sort()) out[key] = shapeOf((value as Record<string, unknown>)[key]);
    return out;
  }
  return typeof value;
}
