/**
 * IAB TCF v2.2/2.3 consent strings: bounded, cached decoding and validation, and the check of a destination's TCF requirement.
 *
 * Reading a string goes: presence → length bound → LRU cache → pre-decode scan (./tcf-guard.ts, which refuses range bombs before
 * the decoder sees them) → @iabtechlabtcf/core `TCString.decode` (ANY exception it throws means "no valid TCF consent") →
 * structural checks (version, policy version, service-specific) → a small frozen summary, cached with the structural verdict.
 * The time checks (not from the future, not expired) depend on `now`, so they are never cached: they run on every read against
 * the cached summary, and an expired string cannot pass because an earlier read happened while it was still fresh.
 *
 * Spec references below point into "Consent string and vendor list formats v2":
 * https://github.com/InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework/blob/master/TCFv2/IAB%20Tech%20Lab%20-%20Consent%20string%20and%20vendor%20list%20formats%20v2.md
 * (called SPEC below, with the section anchor).
 */
import { TCString, type PurposeRestrictionVector, type TCModel, type Vector } from '@iabtechlabtcf/core';
import { LRUCache } from 'lru-cache';
import { scanTcString, type GuardRejection } from './tcf-guard.ts';

export interface TcfOptions {
  /** Longest string read at all, in characters; longer ones are refused before any work. */
  maxLength: number;
  /** Oldest LastUpdated accepted, in ms before `now`. */
  maxAgeMs: number;
  /** How far LastUpdated/Created may lie ahead of `now` (clock skew between the visitor's CMP and this server). Default 5 min. */
  clockSkewMs?: number;
  /** Most decoded strings (and refusals) kept in the LRU cache. */
  cacheEntries: number;
  /** Most vendor ids the decoder may materialise for one string (all ranges and bit fields of all segments). Default 10,000. */
  maxExpandedIds?: number;
  /** Memory bound of the cache, as an estimate of bytes held. Default 32 MiB. */
  cacheMaxBytes?: number;
}

/**
 * Thirteen 30-day months, the default maximum age. The figure is the spec's own: the Max-Age it gives the euconsent-v2 cookie,
 * 33,696,000 s, "represents thirteen 30-day months" (SPEC#how-should-a-global-tc-string-be-formatted-for-storage).
 */
export const THIRTEEN_MONTHS_MS = 33_696_000 * 1000;

export const DEFAULT_TCF_OPTIONS: Readonly<Required<TcfOptions>> = Object.freeze({
  // A bit field costs one bit per vendor id (SPEC#the-core-string), so even consent, LI and disclosed-vendor bit fields over ids
  // up to 1,500 take ~750 characters; 2 KB leaves room for publisher restrictions and the publisher TC segment.
  maxLength: 2048,
  maxAgeMs: THIRTEEN_MONTHS_MS,
  // Five minutes: enough for ordinary NTP drift between a visitor's device and this server, small enough that a string dated
  // tomorrow is still caught. LastUpdated is stored at day granularity (see `checkDates`), so honest strings are never ahead.
  clockSkewMs: 5 * 60 * 1000,
  cacheEntries: 10_000,
  // The reference decoder spends roughly 0.25–0.6 µs per distinct id it materialises (measured on this project's 2-core
  // machine: 10,000 ids in a vendor range, a bit field or a publisher restriction decode in ~2.5–6 ms, 20,000 in ~5–11 ms, with
  // GC outliers above that). 10,000 keeps the worst string that passes the scan under the 10 ms event-loop budget. A real string
  // expands to less: consent, LI and disclosed-vendor sections over vendor ids up to 1,500 are 4,500 ids together, which leaves
  // room for publisher restrictions. A publisher restricting many purposes for every vendor could exceed it: raise it with care.
  maxExpandedIds: 10_000,
  cacheMaxBytes: 32 * 1024 * 1024,
});

/** SPEC#the-core-string, PubRestrictionEntry.RestrictionType: 0 not allowed, 1 require consent, 2 require legitimate interest. */
export type TcfRestrictionType = 0 | 1 | 2;

/** A small, frozen view of a decoded TC string. Nothing in it refers back to the decoder's mutable model. */
export interface TcfSummary {
  readonly version: number;
  /** TcfPolicyVersion: 4 is TCF 2.2, 5 is TCF 2.3. */
  readonly policyVersion: number;
  readonly cmpId: number;
  readonly cmpVersion: number;
  readonly vendorListVersion: number;
  readonly isServiceSpecific: boolean;
  readonly purposeOneTreatment: boolean;
  readonly publisherCountryCode: string;
  /** A fresh Date on every access, so the cached summary cannot be altered through it. */
  readonly created: Date;
  readonly lastUpdated: Date;
  readonly createdMs: number;
  readonly lastUpdatedMs: number;
  /** Immutable at run time too: `add`, `delete` and `clear` throw. */
  readonly purposeConsents: ReadonlySet<number>;
  readonly purposeLegitimateInterests: ReadonlySet<number>;
  readonly specialFeatureOptins: ReadonlySet<number>;
  vendorConsent(vendorId: number): boolean;
  vendorLegitimateInterest(vendorId: number): boolean;
  /** Whether the DisclosedVendors segment lists the vendor (false when the segment is absent). */
  vendorDisclosed(vendorId: number): boolean;
  /**
   * The publisher restriction on this vendor for this purpose. When the string carries several, "not allowed" wins, and
   * "require consent" together with "require legitimate interest" cannot both be met, so it is also reported as 0.
   */
  publisherRestriction(vendorId: number, purposeId: number): TcfRestrictionType | undefined;
}

export type TcfFailureReason =
  | 'tcf_absent'
  | 'tcf_too_long'
  | 'tcf_rejected_by_guard'
  | 'tcf_undecodable'
  | 'tcf_wrong_version'
  | 'tcf_policy_too_old'
  | 'tcf_not_service_specific'
  | 'tcf_from_future'
  | 'tcf_expired';

export type TcfResult = { ok: true; tcf: TcfSummary } | { ok: false; reason: TcfFailureReason };

export interface TcfReader {
  /** Never throws for any `input`; throws a TypeError only if `now` is not a valid Date (a caller bug that must not pass). */
  read(input: unknown, now: Date): TcfResult;
  readonly cacheSize: number;
}

export interface TcfRequirement {
  /** GVL vendor id of the destination; omit for a purpose-only requirement. */
  vendorId?: number;
  basis: 'consent' | 'legitimateInterest' | 'either';
  purposes: readonly number[];
}

// ---------------------------------------------------------------------------------------------------------------------------
// Immutable id containers

/** A Set whose mutators throw, so a summary shared through the cache cannot be changed by one caller for all the others. */
class FrozenIdSet extends Set<number> {
  constructor(ids: Iterable<number>) {
    super();
    for (const id of ids) super.add(id);
    Object.freeze(this);
  }
  override add(_value: number): this {
    throw new TypeError('TCF summary sets are read-only');
  }
  override delete(_value: number): boolean {
    throw new TypeError('TCF summary sets are read-only');
  }
  override clear(): void {
    throw new TypeError('TCF summary sets are read-only');
  }
}

/**
 * Sorted, disjoint, inclusive id ranges as [start0, end0, start1, end1, ...]. Its size is bounded by the string it came from
 * (every range is at least one RangeEntry or one run of set bits), unlike a Set, which would hold up to 65,535 numbers per
 * vector — too much to keep 10,000 of in a cache.
 */
/** Vendor ids are 16-bit fields that start at 1 (SPEC#the-core-string, BitField: "index 0 is Vendor ID 1"). */
const MAX_VENDOR_ID = 0xffff;
/** Reused by `IdRanges.from`, which always leaves it zeroed; reads are synchronous, so it is never shared mid-use. */
const SCRATCH = new Uint8Array(MAX_VENDOR_ID + 1);

class IdRanges {
  readonly #bounds: Uint16Array;

  private constructor(bounds: Uint16Array) {
    this.#bounds = bounds;
  }

  /**
   * Marks the ids in a scratch byte map and reads the runs back, rather than sorting: linear in the ids plus the span they cover,
   * and no per-id allocation. Ids outside 1–65535 cannot come from a 16-bit field and are ignored.
   */
  static from(ids: Iterable<number>): IdRanges {
    let min = Infinity;
    let max = 0;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 1 || id > MAX_VENDOR_ID) continue;
      SCRATCH[id] = 1;
      if (id < min) min = id;
      if (id > max) max = id;
    }
    const out: number[] = [];
    for (let id = min; id <= max; id++) {
      if (SCRATCH[id] === 0) continue;
      const start = id;
      while (id < max && SCRATCH[id + 1] === 1) id++;
      out.push(start, id);
    }
    if (max > 0) SCRATCH.fill(0, min, max + 1);
    return new IdRanges(Uint16Array.from(out));
  }

  has(id: number): boolean {
    let lo = 0;
    let hi = this.#bounds.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const start = this.#bounds[mid * 2] ?? 0;
      const end = this.#bounds[mid * 2 + 1] ?? 0;
      if (id < start) hi = mid - 1;
      else if (id > end) lo = mid + 1;
      else return true;
    }
    return false;
  }

  get byteLength(): number {
    return this.#bounds.byteLength;
  }
}

function vectorIds(v: Vector): IdRanges {
  return IdRanges.from(v.values());
}

interface RestrictionEntry {
  type: TcfRestrictionType;
  vendors: IdRanges;
}

function restrictionsByPurpose(prv: PurposeRestrictionVector): Map<number, RestrictionEntry[]> {
  const byPurpose = new Map<number, RestrictionEntry[]>();
  for (const pr of prv.getRestrictions()) {
    const type = Number(pr.restrictionType);
    // The guard refuses RestrictionType 3 ("UNDEFINED (not used)"); anything else here would be a decoder surprise.
    if (type !== 0 && type !== 1 && type !== 2) throw new Error(`unexpected restriction type ${type}`);
    const list = byPurpose.get(pr.purposeId) ?? [];
    list.push({ type, vendors: IdRanges.from(prv.getVendors(pr)) });
    byPurpose.set(pr.purposeId, list);
  }
  return byPurpose;
}

function isVendorId(id: number): boolean {
  return Number.isInteger(id) && id >= 1 && id <= MAX_VENDOR_ID;
}

/** PurposesConsent is 24 bits, "Purpose 1 maps to the 0th bit, purpose 24 maps to the bit at index 23" (SPEC#the-core-string). */
function isPurposeId(id: number): boolean {
  return Number.isInteger(id) && id >= 1 && id <= 24;
}

// ---------------------------------------------------------------------------------------------------------------------------
// Decoding and the structural checks

interface Decoded {
  ok: true;
  tcf: TcfSummary;
  bytes: number;
}
type Failure = { ok: false; reason: TcfFailureReason };
type CacheEntry = Decoded | Failure;

const FAILURES: Readonly<Record<TcfFailureReason, Failure>> = Object.freeze(
  Object.fromEntries(
    (
      [
        'tcf_absent',
        'tcf_too_long',
        'tcf_rejected_by_guard',
        'tcf_undecodable',
        'tcf_wrong_version',
        'tcf_policy_too_old',
        'tcf_not_service_specific',
        'tcf_from_future',
        'tcf_expired',
      ] as const
    ).map((r) => [r, Object.freeze({ ok: false as const, reason: r })]),
  ) as Record<TcfFailureReason, Failure>,
);

/** TCF 2.2 is policy version 4; "Post 30 September 2023 a TC String created with a policy version set to smaller than 4 will be
 * deemed invalid" (SPEC#managing-conflicting-string-versions). TCF 2.3 strings carry 5. */
const MIN_POLICY_VERSION = 4;

function guardReason(why: GuardRejection): TcfFailureReason {
  switch (why) {
    case 'malformed':
    case 'truncated':
      // Not base64url, or shorter than its own structure: no decoder could read it either.
      return 'tcf_undecodable';
    case 'wrong_version':
      return 'tcf_wrong_version';
    default:
      return 'tcf_rejected_by_guard';
  }
}

function summarize(model: TCModel): { tcf: TcfSummary; bytes: number } {
  const createdMs = model.created.getTime();
  const lastUpdatedMs = model.lastUpdated.getTime();
  if (!Number.isFinite(createdMs) || !Number.isFinite(lastUpdatedMs)) throw new Error('invalid timestamp');
  const consents = vectorIds(model.vendorConsents);
  const lis = vectorIds(model.vendorLegitimateInterests);
  const disclosed = vectorIds(model.vendorsDisclosed);
  const restrictions = restrictionsByPurpose(model.publisherRestrictions);
  let bytes = consents.byteLength + lis.byteLength + disclosed.byteLength;
  for (const list of restrictions.values()) for (const r of list) bytes += r.vendors.byteLength + 48;

  const tcf: TcfSummary = Object.freeze({
    version: Number(model.version),
    policyVersion: Number(model.policyVersion),
    cmpId: Number(model.cmpId),
    cmpVersion: Number(model.cmpVersion),
    vendorListVersion: Number(model.vendorListVersion),
    isServiceSpecific: model.isServiceSpecific === true,
    purposeOneTreatment: model.purposeOneTreatment === true,
    publisherCountryCode: String(model.publisherCountryCode),
    get created() {
      return new Date(createdMs);
    },
    get lastUpdated() {
      return new Date(lastUpdatedMs);
    },
    createdMs,
    lastUpdatedMs,
    purposeConsents: new FrozenIdSet(model.purposeConsents.values()),
    purposeLegitimateInterests: new FrozenIdSet(model.purposeLegitimateInterests.values()),
    specialFeatureOptins: new FrozenIdSet(model.specialFeatureOptins.values()),
    vendorConsent: (id: number) => isVendorId(id) && consents.has(id),
    vendorLegitimateInterest: (id: number) => isVendorId(id) && lis.has(id),
    vendorDisclosed: (id: number) => isVendorId(id) && disclosed.has(id),
    publisherRestriction(vendorId: number, purposeId: number): TcfRestrictionType | undefined {
      let requireConsent = false;
      let requireLi = false;
      for (const r of restrictions.get(purposeId) ?? []) {
        if (!r.vendors.has(vendorId)) continue;
        if (r.type === 0) return 0;
        if (r.type === 1) requireConsent = true;
        else requireLi = true;
      }
      if (requireConsent && requireLi) return 0;
      return requireConsent ? 1 : requireLi ? 2 : undefined;
    },
  });
  return { tcf, bytes };
}

function decode(tc: string, maxExpandedIds: number): CacheEntry {
  const scan = scanTcString(tc, maxExpandedIds);
  if (!scan.ok) return FAILURES[guardReason(scan.why)];
  let model: TCModel;
  let summary: { tcf: TcfSummary; bytes: number };
  try {
    model = TCString.decode(tc);
    summary = summarize(model);
  } catch {
    // DecodingError, TCModelError from a setter (e.g. CmpId 0), a TypeError from an unexpected segment: all mean "no valid
    // TCF consent", never a crash of the request that carried the string.
    return FAILURES.tcf_undecodable;
  }
  const { tcf } = summary;
  // Version "is 2 for this format" (SPEC#the-core-string); the guard already refused others, kept here as the decoder's word.
  if (tcf.version !== 2) return FAILURES.tcf_wrong_version;
  if (!(tcf.policyVersion >= MIN_POLICY_VERSION)) return FAILURES.tcf_policy_too_old;
  // Tagwarden reads the string its own site's CMP wrote for this service. A globally-scoped string records choices made for the
  // web at large (SPEC#what-are-the-different-scopes-for-a-tc-string), and publisher restrictions "must only be saved to a
  // service-specific TC String" (SPEC#what-are-publisher-restrictions), so a global one cannot carry this publisher's rules.
  if (!tcf.isServiceSpecific) return FAILURES.tcf_not_service_specific;
  return { ok: true, tcf, bytes: summary.bytes };
}

/**
 * Created and LastUpdated are "Epoch deciseconds" (SPEC#the-core-string), and since the timestamp-granularity change
 * (https://github.com/InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework/pull/306 and /pull/314, 2022: hours,
 * minutes and seconds zeroed, in UTC; both fields identical as of v2.2) they hold midnight UTC of the day of the last update. So the
 * age computed here overstates the true age by up to a day: a string expires up to 24 h early, never late. A conforming
 * string is never ahead of `now`; the skew only forgives a non-conforming CMP that writes the exact time on a fast clock.
 */
function checkDates(tcf: TcfSummary, nowMs: number, maxAgeMs: number, clockSkewMs: number): TcfResult {
  if (Math.max(tcf.createdMs, tcf.lastUpdatedMs) > nowMs + clockSkewMs) return FAILURES.tcf_from_future;
  if (nowMs - tcf.lastUpdatedMs > maxAgeMs) return FAILURES.tcf_expired;
  return { ok: true, tcf };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`TCF option ${name} must be a positive integer, got ${value}`);
  return value;
}

export function createTcfReader(options: TcfOptions): TcfReader {
  const maxLength = positiveInteger('maxLength', options.maxLength);
  const maxAgeMs = positiveInteger('maxAgeMs', options.maxAgeMs);
  const cacheEntries = positiveInteger('cacheEntries', options.cacheEntries);
  const maxExpandedIds = positiveInteger('maxExpandedIds', options.maxExpandedIds ?? DEFAULT_TCF_OPTIONS.maxExpandedIds);
  const cacheMaxBytes = positiveInteger('cacheMaxBytes', options.cacheMaxBytes ?? DEFAULT_TCF_OPTIONS.cacheMaxBytes);
  const clockSkewMs = options.clockSkewMs ?? DEFAULT_TCF_OPTIONS.clockSkewMs;
  if (!Number.isSafeInteger(clockSkewMs) || clockSkewMs < 0) throw new RangeError(`TCF option clockSkewMs must be ≥ 0, got ${clockSkewMs}`);

  const cache = new LRUCache<string, CacheEntry>({
    max: cacheEntries,
    maxSize: cacheMaxBytes,
    // The key is held too (UTF-16); a fixed overhead covers the entry, the summary object and its closures.
    sizeCalculation: (entry, key) => 2 * key.length + 64 + (entry.ok ? 512 + entry.bytes : 0),
  });

  return {
    read(input: unknown, now: Date): TcfResult {
      const nowMs = now instanceof Date ? now.getTime() : Number.NaN;
      // An invalid clock would make every date comparison false and so let any string through: refuse loudly instead.
      if (!Number.isFinite(nowMs)) throw new TypeError('TcfReader.read needs a valid Date for now');
      if (typeof input !== 'string' || input.length === 0) return FAILURES.tcf_absent;
      if (input.length > maxLength) return FAILURES.tcf_too_long;
      let entry = cache.get(input);
      if (entry === undefined) {
        entry = decode(input, maxExpandedIds);
        cache.set(input, entry);
      }
      if (!entry.ok) return entry;
      return checkDates(entry.tcf, nowMs, maxAgeMs, clockSkewMs);
    },
    get cacheSize() {
      return cache.size;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------------
// Requirements

/**
 * Purposes that can never rest on legitimate interest. Purpose 1 "is always required to be registered as a consent purpose and
 * can not be flexible" (SPEC#the-core-string, RestrictionType notes). From policy version 4 (TCF 2.2) legitimate interest is no
 * longer allowed for purposes 3, 4, 5 and 6 either
 * (https://github.com/InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework/pull/334; the reference library's
 * encoder clears those LI bits too).
 */
function liPermitted(purposeId: number, policyVersion: number): boolean {
  if (purposeId === 1) return false;
  if (policyVersion >= 4 && purposeId >= 3 && purposeId <= 6) return false;
  return true;
}

/** Why a TCF string does not meet a requirement: each names the vendor or purpose id concerned. */
export type TcfDenialCode =
  | 'tcf_vendor_invalid'
  | 'tcf_purpose_invalid'
  | 'tcf_vendor_not_disclosed'
  | 'tcf_vendor_not_consented'
  | 'tcf_vendor_no_legitimate_interest'
  | 'tcf_purpose_restricted_by_publisher'
  | 'tcf_purpose_basis_restricted'
  | 'tcf_purpose_li_not_permitted'
  | 'tcf_purpose_not_consented'
  | 'tcf_purpose_no_legitimate_interest';

export interface TcfDenial {
  code: TcfDenialCode;
  /** The vendor id (`tcf_vendor_*`) or purpose id (`tcf_purpose_*`). */
  id: number;
}

export type TcfCheck = { allowed: true } | { allowed: false; denials: TcfDenial[] };

/**
 * Checks one destination's requirement. For every purpose, at least one legal basis the requirement accepts must hold for both the
 * purpose and the vendor: consent means the purpose's consent bit and the vendor's consent bit; legitimate interest means the
 * purpose's LI bit and the vendor's LI bit (SPEC#the-core-string, PurposesConsent / PurposesLITransparency / Vendor Consent and
 * Vendor Legitimate Interest sections). Publisher restrictions for the vendor narrow the bases (RestrictionType 0 forbids the
 * purpose, 1 leaves only consent, 2 only legitimate interest); LI is never accepted where policy forbids it (`liPermitted`).
 * Under TCF 2.3 (policy version ≥ 5) the DisclosedVendors segment is mandatory and a vendor not disclosed to the user has no
 * basis at all (SPEC#why-was-the-disclosed-vendor-section-made-mandatory-in-tcf-23).
 *
 * Every denial found is listed once, in the order found.
 */
export function checkTcf(tcf: TcfSummary, req: TcfRequirement): TcfCheck {
  const found = new Map<string, TcfDenial>();
  const deny = (code: TcfDenialCode, id: number): void => {
    const key = `${code}:${id}`;
    if (!found.has(key)) found.set(key, { code, id });
  };
  const v = req.vendorId;
  if (v !== undefined && !isVendorId(v)) deny('tcf_vendor_invalid', v);
  for (const p of req.purposes) if (!isPurposeId(p)) deny('tcf_purpose_invalid', p);
  if (found.size > 0) return { allowed: false, denials: [...found.values()] };

  const acceptsConsent = req.basis === 'consent' || req.basis === 'either';
  const acceptsLi = req.basis === 'legitimateInterest' || req.basis === 'either';
  const vendorConsent = v === undefined || tcf.vendorConsent(v);
  const vendorLi = v === undefined || tcf.vendorLegitimateInterest(v);

  if (v !== undefined && tcf.policyVersion >= 5 && !tcf.vendorDisclosed(v)) deny('tcf_vendor_not_disclosed', v);

  if (req.purposes.length === 0 && v !== undefined) {
    // No purpose named: the vendor itself must hold one of the accepted bases.
    if (!((acceptsConsent && vendorConsent) || (acceptsLi && vendorLi))) {
      if (acceptsConsent) deny('tcf_vendor_not_consented', v);
      if (acceptsLi) deny('tcf_vendor_no_legitimate_interest', v);
    }
  }

  for (const p of req.purposes) {
    let consentOk = acceptsConsent;
    let liOk = acceptsLi;
    if (v !== undefined) {
      const restriction = tcf.publisherRestriction(v, p);
      if (restriction === 0) {
        deny('tcf_purpose_restricted_by_publisher', p);
        continue;
      }
      if (restriction === 1) liOk = false;
      if (restriction === 2) consentOk = false;
      if (!consentOk && !liOk) {
        deny('tcf_purpose_basis_restricted', p);
        continue;
      }
    }
    if (liOk && !liPermitted(p, tcf.policyVersion)) {
      liOk = false;
      if (!consentOk) {
        deny('tcf_purpose_li_not_permitted', p);
        continue;
      }
    }
    const byConsent = consentOk && tcf.purposeConsents.has(p) && vendorConsent;
    const byLi = liOk && tcf.purposeLegitimateInterests.has(p) && vendorLi;
    if (byConsent || byLi) continue;
    // A vendor basis can only be missing when there is a vendor (without one both are true).
    if (consentOk) {
      if (!tcf.purposeConsents.has(p)) deny('tcf_purpose_not_consented', p);
      if (!vendorConsent && v !== undefined) deny('tcf_vendor_not_consented', v);
    }
    if (liOk) {
      if (!tcf.purposeLegitimateInterests.has(p)) deny('tcf_purpose_no_legitimate_interest', p);
      if (!vendorLi && v !== undefined) deny('tcf_vendor_no_legitimate_interest', v);
    }
  }

  return found.size === 0 ? { allowed: true } : { allowed: false, denials: [...found.values()] };
}

/**
 * Category-level grant: true when every one of the category's TCF purposes has the user's purpose consent. An empty list grants
 * nothing — a category mapped to no TCF purpose cannot be granted by a TCF string — and an id outside 1–24 is never consented.
 */
export function purposesConsented(tcf: TcfSummary, purposes: readonly number[]): boolean {
  return purposes.length > 0 && purposes.every((p) => isPurposeId(p) && tcf.purposeConsents.has(p));
}
