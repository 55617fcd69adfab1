import { createHash } from 'node:crypto';

/**
 * SecurePrivacy's ClientId (seed secureprivacy-universal-consent-api.txt): "the same CustomUserId
 * always leads to the same ClientId". Derived, not stored: a name-based UUID over SHA-256 of a
 * fixed namespace and (siteId, customUserId), so every instance computes the same id without a
 * lookup and the id reveals nothing of the user id. RFC 9562 names SHA-256 name-based ids
 * version 8 (section 5.8, appendix B.2); the layout is UUIDv5's with the first 16 bytes of SHA-256.
 *
 * Never change the namespace or the name encoding: every ClientId already handed out would change.
 */
const NAMESPACE = Buffer.from('5c0f7f0e9b2a4d7e8a61c3b4d2e9f017', 'hex');

export function clientIdFor(siteId: string, customUserId: string): string {
  // JSON of the pair: unambiguous where a separator could occur in either part.
  const name = JSON.stringify([siteId, customUserId]);
  const b = createHash('sha256').update(NAMESPACE).update(name, 'utf8').digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80; // version 8
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
