import type { IncomingMessage } from 'node:http';

/**
 * The client's address as Express's `req.ip` computes it with `trust proxy` set to a number of
 * hops: walking from the socket's peer back through `X-Forwarded-For`, each trusted hop (the first
 * `trustHops` addresses) names the one before it; the first untrusted address is the client. With
 * fewer entries than hops, the farthest one is used. A spoofed entry the client put in front of the
 * list is never reached, because only the entries the trusted proxies appended are walked.
 * https://expressjs.com/en/guide/behind-proxies.html
 */
export function clientIp(req: IncomingMessage, trustHops: number): string | undefined {
  const peer = req.socket.remoteAddress;
  if (trustHops === 0) return peer;
  const forwarded = req.headers['x-forwarded-for'];
  if (forwarded === undefined) return peer;
  const header = Array.isArray(forwarded) ? forwarded.join(',') : forwarded;
  // The header lists the hops oldest first; empty entries are skipped and only spaces trimmed,
  // as Express's parser (the `forwarded` package) does.
  const entries: string[] = [];
  for (const raw of header.split(',')) {
    const entry = raw.replace(/^ +| +$/g, '');
    if (entry !== '') entries.push(entry);
  }
  if (entries.length === 0) return peer;
  // The k-th trusted hop names entries[length - k]; with fewer entries than hops, the oldest.
  return entries[entries.length - Math.min(trustHops, entries.length)];
}
