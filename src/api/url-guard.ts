/**
 * The guard on webhook target URLs (server-side request forgery). Checked twice:
 *
 * 1. When a subscription is created (`checkWebhookUrl` / `assertWebhookUrl`): http(s) only, no
 *    credentials, no address literal in a refused range, no `localhost` names, no ambiguous IPv4
 *    notation (`http://2130706433/`, `http://0x7f.1/`, `http://0177.0.0.1/`, `http://127.1/`: the
 *    WHATWG URL parser, undici and inet_aton each have their own reading of those, and a URL
 *    must say plainly where it goes).
 * 2. At every send (`createGuardedAgent`): the stored URL is checked again (the config may have
 *    changed), and the host name is resolved by the connection itself through a lookup that
 *    refuses the connection when any resolved address is in a refused range. The socket connects
 *    to the very address that was checked, so a second resolution (DNS rebinding: a public answer
 *    at check time, 127.0.0.1 at connect time) cannot swap it. Address literals skip DNS in
 *    node:net, which is why step 1 runs again at send time.
 *
 * Redirects are never followed: the outbound sender (src/lib/http/send.ts) dispatches without a
 * redirect interceptor, and the worker treats a 3xx as a failed attempt.
 *
 * Refused ranges (RFC 6890 special-purpose registries): unspecified and "this network", loopback,
 * private (RFC 1918, fc00::/7, deprecated site-local fec0::/10), link-local (169.254/16,
 * fe80::/10), shared address space 100.64/10 (CGNAT, RFC 6598), multicast, broadcast and
 * reserved, documentation and benchmarking ranges, and IPv6 forms that embed an IPv4 address
 * (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16),
 * judged by the IPv4 address they carry.
 *
 * `allowPrivate: true` lifts the address checks (development, tests); `allowHosts` lifts them for
 * the listed hosts only (exact host names or address literals). Neither admits an ambiguous IPv4
 * notation: the plain dotted form of the same address can always be written instead.
 */
import dns from 'node:dns';
import { isIPv4, isIPv6, type LookupFunction } from 'node:net';
import type { Agent } from 'undici';
import { createPool } from '../lib/http/pool.ts';
import { ValidationError } from '../errors.ts';

export interface UrlGuardOptions {
  /** Allow every address, private and loopback included. Development and tests only. */
  allowPrivate?: boolean;
  /** Hosts exempt from the address checks: host names or address literals, matched exactly (case-insensitive). */
  allowHosts?: readonly string[];
  /** Resolver used at send time (default dns.lookup); injectable so tests need no DNS. */
  lookup?: LookupAll;
}

/** dns.lookup with `all: true`. */
export type LookupAll = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

export type AddressRange =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation';

export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/** The error a guarded lookup fails a connection with; undici reports its code. */
export class BlockedAddressError extends Error {
  readonly code = 'ERR_WEBHOOK_ADDRESS_BLOCKED';
  readonly hostname: string;
  readonly address: string;
  readonly range: AddressRange;
  constructor(hostname: string, address: string, range: AddressRange) {
    super(`${hostname} resolves to ${address} (${range}), which webhooks may not reach`);
    this.name = 'BlockedAddressError';
    this.hostname = hostname;
    this.address = address;
    this.range = range;
  }
}

const MAX_URL_LENGTH = 2048;

/** Checks a webhook URL without resolving it (subscription time, and again before each send). */
export function checkWebhookUrl(input: string, opts: UrlGuardOptions = {}): UrlCheck {
  if (input.length === 0) return { ok: false, reason: 'empty URL' };
  if (input.length > MAX_URL_LENGTH) return { ok: false, reason: `URL longer than ${MAX_URL_LENGTH} characters` };
  // The URL parser silently drops tabs and newlines and trims spaces; refuse instead of guessing.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\]/.test(input)) return { ok: false, reason: 'URL contains whitespace, control characters or a backslash' };
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, reason: 'not an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: `scheme ${url.protocol} not allowed (http or https only)` };
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'credentials in the URL are not allowed (the signature authenticates deliveries)' };
  const host = canonicalHost(url.hostname);
  if (host === '') return { ok: false, reason: 'no host' };

  if (isIPv4(host)) {
    const raw = rawHost(input);
    if (raw === undefined || raw.toLowerCase() !== host) return { ok: false, reason: `ambiguous IPv4 notation ${raw ?? ''} (write ${host})` };
  }
  if (isExempt(host, opts)) return { ok: true, url };

  if (isIPv4(host) || isIPv6(host)) {
    const range = classifyAddress(host);
    if (range !== undefined) return { ok: false, reason: `address ${host} is ${range}` };
  } else if (host === 'localhost' || host.endsWith('.localhost')) {
    // RFC 6761 §6.3: resolvers may answer loopback for these without asking DNS.
    return { ok: false, reason: `${host} is loopback` };
  }
  return { ok: true, url };
}

/** checkWebhookUrl, throwing a ValidationError (400) naming the reason. */
export function assertWebhookUrl(input: string, opts: UrlGuardOptions = {}, path = 'url'): URL {
  const r = checkWebhookUrl(input, opts);
  if (!r.ok) throw new ValidationError(`${path}: ${r.reason}`, { details: { issues: [{ path, message: r.reason }] } });
  return r.url;
}

/** Lower case, without IPv6 brackets and a trailing dot. */
function canonicalHost(hostname: string): string {
  let h = hostname.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** The host exactly as written in the input (before the URL parser normalises numbers). */
function rawHost(input: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(input);
  if (m === null) return undefined;
  const authority = m[1] ?? '';
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  return hostPort.replace(/:[0-9]*$/, '');
}

function isExempt(host: string, opts: UrlGuardOptions): boolean {
  if (opts.allowPrivate === true) return true;
  return (opts.allowHosts ?? []).some((h) => canonicalHost(h) === host);
}

/**
 * The refused range an address literal falls in, or undefined for a public address. Anything
 * that is not a valid IPv4 or IPv6 literal is 'reserved' (refused).
 */
export function classifyAddress(address: string): AddressRange | undefined {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (isIPv4(a)) return classifyV4(parseV4(a));
  if (isIPv6(a)) {
    const g = parseV6(a);
    return g === undefined ? 'reserved' : classifyV6(g);
  }
  return 'reserved';
}

function parseV4(a: string): number {
  return a.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** Is `ip` (32-bit) inside `base/bits`? */
function inV4(ip: number, base: string, bits: number): boolean {
  const size = 2 ** (32 - bits);
  return Math.floor(ip / size) === Math.floor(parseV4(base) / size);
}

const V4_RANGES: readonly [string, number, AddressRange][] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'broadcast'],
  ['240.0.0.0', 4, 'reserved'],
];

function classifyV4(ip: number): AddressRange | undefined {
  for (const [base, bits, range] of V4_RANGES) if (inV4(ip, base, bits)) return range;
  return undefined;
}

/** Eight 16-bit groups; the zone (`%eth0`) is dropped. */
function parseV6(input: string): number[] | undefined {
  let a = input.split('%')[0] ?? '';
  // A trailing dotted quad (::ffff:127.0.0.1) becomes its two hex groups.
  const lastColon = a.lastIndexOf(':');
  const last = a.slice(lastColon + 1);
  if (last.includes('.')) {
    if (!isIPv4(last)) return undefined;
    const v4 = parseV4(last);
    a = `${a.slice(0, lastColon + 1)}${Math.floor(v4 / 65536).toString(16)}:${(v4 % 65536).toString(16)}`;
  }
  const halves = a.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map((x) => parseInt(x, 16)));
  const head = toGroups(halves[0] ?? '');
  const rest = halves.length === 2 ? toGroups(halves[1] ?? '') : [];
  const known = head.length + rest.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined;
  const groups = [...head, ...new Array<number>(8 - known).fill(0), ...rest];
  return groups.length === 8 && groups.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff) ? groups : undefined;
}

function classifyV6(g: number[]): AddressRange | undefined {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const embedded = (hi: number, lo: number): AddressRange | undefined => classifyV4(hi * 65536 + lo);
  const first80Zero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (first80Zero && g5 === 0 && g6 === 0) {
    if (g7 === 0) return 'unspecified';
    if (g7 === 1) return 'loopback';
  }
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated): the IPv4 address decides.
  if (first80Zero && (g5 === 0xffff || g5 === 0)) return embedded(g6, g7);
  // NAT64 well-known prefix (RFC 6052) and its local-use prefix (RFC 8215).
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return embedded(g6, g7);
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return 'private';
  // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 routes to AA.BB.CC.DD.
  if (g0 === 0x2002) return embedded(g1, g2);
  if ((g0 & 0xfe00) === 0xfc00) return 'private';
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local';
  if ((g0 & 0xffc0) === 0xfec0) return 'private';
  if ((g0 & 0xff00) === 0xff00) return 'multicast';
  if (g0 === 0x2001 && g1 === 0x0db8) return 'documentation';
  // Discard-only 100::/64, IETF protocol assignments 2001::/23 (Teredo embeds an obfuscated IPv4), ::/8 rest.
  if (g0 === 0x0100 && g1 === 0 && g2 === 0 && g3 === 0) return 'reserved';
  if (g0 === 0x2001 && g1 < 0x0200) return 'reserved';
  if (g0 < 0x0100) return 'reserved';
  return undefined;
}

const defaultLookup: LookupAll = (hostname, options, callback) => {
  dns.lookup(hostname, options, callback);
};

/**
 * A node:net lookup that resolves with `opts.lookup` (default dns.lookup) and fails with a
 * BlockedAddressError when any resolved address is refused: a name that mixes a public and a
 * private answer is not trusted with either.
 */
export function createGuardedLookup(opts: UrlGuardOptions = {}): LookupFunction {
  const lookup = opts.lookup ?? defaultLookup;
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err !== null) {
        callback(err, '');
        return;
      }
      const host = canonicalHost(hostname);
      if (!isExempt(host, opts)) {
        for (const a of addresses) {
          const range = classifyAddress(a.address);
          if (range !== undefined) {
            callback(new BlockedAddressError(host, a.address, range), '');
            return;
          }
        }
      }
      const first = addresses[0];
      if (first === undefined) {
        const e: NodeJS.ErrnoException = new Error(`no address for ${hostname}`);
        e.code = 'ENOTFOUND';
        callback(e, '');
        return;
      }
      if (options.all === true) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}

export interface GuardedAgentOptions {
  /** Most sockets per origin. Default 4. */
  connectionsPerOrigin?: number;
  /** TCP + TLS connect timeout. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** Idle keep-alive. Default 4000 ms. */
  keepAliveTimeoutMs?: number;
}

/**
 * The webhook pool (src/lib/http/pool.ts), every connection of which resolves through the guarded
 * lookup: the address connected to is the one checked. Use it for all webhook traffic (and never a
 * redirect interceptor).
 */
export function createGuardedAgent(guard: UrlGuardOptions = {}, options: GuardedAgentOptions = {}): Agent {
  return createPool('webhooks', {
    connections: options.connectionsPerOrigin,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    lookup: createGuardedLookup(guard),
  });
}
