import type { IncomingMessage } from 'node:http';
import { clientIp } from '../../http/client-ip.ts';

/**
 * The fingerprint the seed's query answers with (secureprivacy-universal-consent-api.txt,
 * "Fingerprint": IP, ProxifiedIP, UserAgent, City, State, Country), taken from the request that
 * recorded the consent and kept as evidence in its audit row. IP is the client address as
 * `server.trustProxyHops` makes it (src/http/client-ip.ts); ProxifiedIP the X-Forwarded-For chain
 * as received; the geo fields only from the headers the config names as set by a trusted proxy.
 * Each value is bounded: the row's evidence must stay small (src/store/audit.ts).
 */
export interface Fingerprint {
  IP?: string;
  ProxifiedIP?: string;
  UserAgent?: string;
  City?: string;
  State?: string;
  Country?: string;
}

export interface GeoHeaders {
  city?: string | undefined;
  state?: string | undefined;
  country?: string | undefined;
}

const MAX_CHAIN = 1024;
const MAX_USER_AGENT = 512;
const MAX_GEO = 128;

function header(req: IncomingMessage, name: string | undefined, max: number): string | undefined {
  if (name === undefined) return undefined;
  const v = req.headers[name.toLowerCase()];
  const s = (Array.isArray(v) ? v.join(', ') : (v ?? '')).trim();
  return s === '' ? undefined : s.slice(0, max);
}

export function fingerprintOf(req: IncomingMessage, trustProxyHops: number, geo: GeoHeaders): Fingerprint {
  const out: Fingerprint = {};
  const ip = clientIp(req, trustProxyHops);
  if (ip !== undefined) out.IP = ip.slice(0, MAX_GEO);
  const chain = header(req, 'x-forwarded-for', MAX_CHAIN);
  if (chain !== undefined) out.ProxifiedIP = chain;
  const ua = header(req, 'user-agent', MAX_USER_AGENT);
  if (ua !== undefined) out.UserAgent = ua;
  const city = header(req, geo.city, MAX_GEO);
  if (city !== undefined) out.City = city;
  const state = header(req, geo.state, MAX_GEO);
  if (state !== undefined) out.State = state;
  const country = header(req, geo.country, MAX_GEO);
  if (country !== undefined) out.Country = country;
  return out;
}

/** The seed: URI is "derived from Origin header if not passed". */
export function originOf(req: IncomingMessage): string | undefined {
  const origin = header(req, 'origin', 2048);
  // `null` is the Origin of an opaque context (a sandbox, a file): no address to keep.
  return origin === 'null' ? undefined : origin;
}
