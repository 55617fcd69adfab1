/**
 * IP truncation: a destination's `truncateIp` option (the pipeline renders with `context.ip` cut)
 * and the `truncateIp` transform (e.g. the `_uip` of the ga4-collect template when consent is
 * unknown) share this one rule.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Zero the host part: IPv4 keeps /24, IPv6 keeps /48 (an IPv4-mapped IPv6 is treated as IPv4). */
export function truncateIp(value: string): string | undefined {
  const ip = value.trim();
  if (isIPv4(ip)) return ip.replace(/\.\d+$/, '.0');
  const bare = ip.replace(/%.*$/, '');
  if (!isIPv6(bare)) return undefined;
  const groups = expandIPv6(bare);
  if (groups === undefined) return undefined;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = [groups[6], groups[7]];
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.0`;
  }
  return formatIPv6([groups[0] ?? 0, groups[1] ?? 0, groups[2] ?? 0, 0, 0, 0, 0, 0]);
}

function expandIPv6(ip: string): number[] | undefined {
  let text = ip.toLowerCase();
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // An embedded IPv4 tail ("::ffff:192.0.2.1") stands for the last two groups.
    const octets = last.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
    const [a, b, c, d] = octets as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const parse = (s: string): number[] =>
    s === '' ? [] : s.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : Number.NaN));
  const halves = text.split('::');
  let groups: number[];
  if (halves.length === 2) {
    const head = parse(halves[0] ?? '');
    const rest = parse(halves[1] ?? '');
    const fill = 8 - tail.length - head.length - rest.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else if (halves.length === 1) {
    groups = [...parse(text), ...tail];
  } else {
    return undefined;
  }
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return undefined;
  return groups;
}

/** RFC 5952 text form: lowercase, no leading zeros, the longest run of ≥ 2 zero groups as `::`. */
function formatIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLength < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
