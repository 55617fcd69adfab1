/**
 * The webhook delivery worker: claims due deliveries (src/store/webhooks.ts), POSTs each signed
 * body (src/api/webhook-sign.ts) with the outbound sender (src/lib/http/send.ts) over the URL
 * guard's webhook pool (src/api/url-guard.ts), and records what happened:
 *
 * - 2xx: delivered.
 * - 410 Gone: the receiver asks us to stop (Standard Webhooks): the delivery ends as `gone` and
 *   the subscription is disabled with reason `gone`.
 * - 429 or 503 with a `Retry-After` (delta-seconds or HTTP-date): the next attempt is not before
 *   it (nor before the backoff); a Retry-After beyond `maxRetryAfterMs` ends the delivery.
 * - anything else (other statuses, 3xx included: redirects are never followed; network errors,
 *   timeouts): exponential backoff with full jitter, a uniform pick in
 *   [0, min(maxMs, baseMs * 2^(attempt-1))) — every non-2xx is retried, as receivers are often
 *   briefly misconfigured (Standard Webhooks retry guidance);
 * - after `maxAttempts` attempts: failed.
 * - a target the URL guard refuses: failed at once with the reason, never retried (issue 13: it
 *   was retried 12 times). Either the stored URL itself (the config changed: a scheme, an address
 *   literal) or the address its host resolves to at send time (a private or loopback answer:
 *   the guarded lookup fails the connection with ERR_WEBHOOK_ADDRESS_BLOCKED). Retrying cannot
 *   make a refusal pass, and only that delivery ends: its subscription stays enabled (the next
 *   change is tried again, in case DNS answers otherwise then) and other deliveries go on.
 *
 * Every attempt carries the same `webhook-id` (the delivery id) and a fresh `webhook-timestamp`.
 * Nothing is ever thrown out of `runOnce` or the polling loop: errors go to `onError`.
 */
import dns from 'node:dns';
import type { Dispatcher } from 'undici';
import { LRUCache } from 'lru-cache';
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.ts';
import { parseRetryAfter } from '../lib/retry-after.ts';
import { send } from '../lib/http/send.ts';
import { maskSecrets } from '../lib/mask-secrets.ts';
import { fullJitterBackoffMs } from '../lib/backoff.ts';
import type { Db } from '../store/db.ts';
import { claimDue, recordResult, type ClaimedDelivery, type DeliveryOutcome } from '../store/webhooks.ts';
import { checkWebhookUrl, classifyAddress, createGuardedAgent, type LookupAll, type UrlGuardOptions } from './url-guard.ts';
import { signWebhook } from './webhook-sign.ts';
import { InternalError } from '../errors.ts';

export interface WebhookBackoff {
  /** Ceiling of the first retry's delay; doubles per attempt. Default 10 s. */
  baseMs: number;
  /** Largest backoff ceiling. Default 1 h. */
  maxMs: number;
}

export interface WebhookWorkerOptions {
  db: Db;
  /**
   * The undici dispatcher to send with. Default: an Agent from createGuardedAgent(guard), closed
   * by stop(). A dispatcher passed here must do its own address check at connect time (build it
   * with createGuardedAgent); the URL itself is still checked before every send.
   */
  dispatcher?: Dispatcher;
  /** The URL guard's configuration (allowPrivate, allowHosts, lookup). */
  guard?: UrlGuardOptions;
  /** Time of the attempts, claims and signatures, their request timers and the poll timer. Default: the system clock. */
  clock?: Clock;
  /** Uniform in [0, 1), for the jitter. */
  random?: () => number;
  /** Wait between polls when nothing was due. Default 1000 ms. */
  pollMs?: number;
  /** Deliveries claimed per poll (sent concurrently). Default 16. */
  batchSize?: number;
  /** Attempts in total, the first included. Default 12. */
  maxAttempts?: number;
  backoff?: WebhookBackoff;
  /** Budget of one attempt (connect, headers, body). Default 10000 ms. */
  timeoutMs?: number;
  /** How long a claim holds before another worker may take the delivery. Default max(60 s, 3 × timeoutMs). */
  lockMs?: number;
  /** Longest Retry-After honoured; a longer one ends the delivery as failed. Default 24 h. */
  maxRetryAfterMs?: number;
  /** Errors of the loop itself (database unavailable, …). Default: ignored. */
  onError?: (err: unknown) => void;
  /** Each recorded attempt (logging, metrics). */
  onAttempt?: (delivery: ClaimedDelivery, outcome: DeliveryOutcome) => void;
}

export interface RunSummary {
  claimed: number;
  delivered: number;
  retried: number;
  failed: number;
  gone: number;
}

export interface WebhookWorker {
  start(): void;
  /** Stops polling, waits for the attempts in flight, closes the agent it created. */
  stop(): Promise<void>;
  /** One claim-and-send round (the loop's body; tests call it directly). Never throws. */
  runOnce(): Promise<RunSummary>;
}

const USER_AGENT = 'Tagwarden-Webhooks/1';
/** The code of url-guard.ts's BlockedAddressError, as the sender reports a refused connection. */
const BLOCKED_CODE = 'ERR_WEBHOOK_ADDRESS_BLOCKED';

/** The wait before a webhook's next attempt: the kernel's full-jitter backoff (src/lib/backoff.ts). */
export function webhookBackoffMs(attempt: number, backoff: WebhookBackoff, random: () => number): number {
  return fullJitterBackoffMs(Math.max(1, attempt), backoff, random);
}

export function createWebhookWorker(options: WebhookWorkerOptions): WebhookWorker {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const now = (): number => clock.now();
  const random = options.random ?? Math.random;
  const pollMs = options.pollMs ?? 1000;
  const batchSize = options.batchSize ?? 16;
  const maxAttempts = options.maxAttempts ?? 12;
  const backoff = options.backoff ?? { baseMs: 10_000, maxMs: 3_600_000 };
  const timeoutMs = options.timeoutMs ?? 10_000;
  const lockMs = options.lockMs ?? Math.max(60_000, 3 * timeoutMs);
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 24 * 3_600_000;
  const guard = options.guard ?? {};
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw new InternalError('webhook worker: maxAttempts must be an integer >= 1');
  // A claim that lapses while its attempt is still running would let a second worker send too.
  if (!(lockMs > timeoutMs)) throw new InternalError('webhook worker: lockMs must exceed timeoutMs');
  const onError = (err: unknown): void => {
    try {
      options.onError?.(err);
    } catch {
      // A failing error handler must not break the loop either.
    }
  };
  // What the own agent's lookups last answered per host, so a refusal at connect time can say
  // which address it was (undici hands back only the error's code).
  const answers = new LRUCache<string, readonly string[]>({ max: 1024 });
  const baseLookup: LookupAll = guard.lookup ?? ((hostname, o, callback) => dns.lookup(hostname, o, callback));
  const recordingLookup: LookupAll = (hostname, o, callback) =>
    baseLookup(hostname, o, (err, addresses) => {
      if (err === null) answers.set(hostname.toLowerCase(), addresses.map((a) => a.address));
      callback(err, addresses);
    });
  // Created on first use and closed by stop(), so a stopped worker can be started again.
  let ownAgent: Dispatcher | undefined;
  const dispatcher = (): Dispatcher => options.dispatcher ?? (ownAgent ??= createGuardedAgent({ ...guard, lookup: recordingLookup }, { connectTimeoutMs: timeoutMs }));

  /** Why the guard refused `host` at connect time, as precisely as the lookup's last answer tells. */
  function refusedAtSend(host: string): string {
    for (const address of answers.get(host.toLowerCase()) ?? []) {
      const range = classifyAddress(address);
      if (range !== undefined) return `url refused at send time: ${host} resolves to ${address} (${range})`;
    }
    return `url refused at send time: ${host} resolves to an address webhooks may not reach`;
  }

  async function attempt(d: ClaimedDelivery): Promise<DeliveryOutcome> {
    const check = checkWebhookUrl(d.url, guard);
    if (!check.ok) return { kind: 'failed', at: now(), attempt: d.attempts, error: `url refused: ${check.reason}` };
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...signWebhook(d.secret, d.id, Math.floor(now() / 1000), d.payload),
    };
    const sent = await send(dispatcher(), { method: 'POST', url: check.url.href, headers, body: d.payload }, { timeoutMs, secretValues: [d.secret], clock });
    const at = now();
    const o = sent.outcome;
    let error: string;
    let retryAfterMs: number | undefined;
    let status: number | undefined;
    if (o.kind === 'response') {
      status = o.status;
      if (o.status >= 200 && o.status <= 299) return { kind: 'delivered', at, attempt: d.attempts, status };
      if (o.status === 410) return { kind: 'gone', at, attempt: d.attempts, status, error: 'gone' };
      error = o.status >= 300 && o.status <= 399 ? `status_${o.status} (redirects are not followed)` : `status_${o.status}`;
      if ((o.status === 429 || o.status === 503) && o.retryAfter !== undefined) retryAfterMs = parseRetryAfter(o.retryAfter, at);
      if (sent.excerpt !== undefined) error += `: ${sent.excerpt}`;
    } else if (o.kind === 'network' && o.code === BLOCKED_CODE) {
      return { kind: 'failed', at, attempt: d.attempts, error: refusedAtSend(check.url.hostname) };
    } else {
      error = o.kind === 'timeout' ? 'timeout' : o.code === undefined ? 'network' : `network_${o.code}`;
    }
    return failure(d, at, maskSecrets(error, [d.secret]), status, retryAfterMs);
  }

  /** A failed attempt: retried with backoff (and Retry-After), or failed once attempts run out. */
  function failure(d: ClaimedDelivery, at: number, error: string, status?: number, retryAfterMs?: number): DeliveryOutcome {
    const base = status === undefined ? { at, attempt: d.attempts, error } : { at, attempt: d.attempts, error, status };
    if (d.attempts >= maxAttempts) return { kind: 'failed', ...base, error: `${error} (after ${d.attempts} attempts)` };
    if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfterMs) return { kind: 'failed', ...base, error: `${error} (Retry-After beyond ${maxRetryAfterMs} ms)` };
    const delay = Math.max(retryAfterMs ?? 0, webhookBackoffMs(d.attempts, backoff, random));
    return { kind: 'retry', ...base, nextAttemptAt: at + delay };
  }

  async function runOnce(): Promise<RunSummary> {
    const summary: RunSummary = { claimed: 0, delivered: 0, retried: 0, failed: 0, gone: 0 };
    let claimed: ClaimedDelivery[];
    try {
      claimed = await claimDue(db, { now: now(), limit: batchSize, lockMs });
    } catch (err) {
      onError(err);
      return summary;
    }
    summary.claimed = claimed.length;
    await Promise.all(
      claimed.map(async (d) => {
        try {
          let outcome: DeliveryOutcome;
          try {
            outcome = await attempt(d);
          } catch (err) {
            // A bug or a corrupt row (an unusable secret): counted as an attempt, so it ends.
            onError(err);
            outcome = failure(d, now(), 'internal_error');
          }
          // Not recorded (claimed again after our lock lapsed): the successor's result stands.
          if (!(await recordResult(db, d.id, outcome))) return;
          summary[outcome.kind === 'retry' ? 'retried' : outcome.kind]++;
          options.onAttempt?.(d, outcome);
        } catch (err) {
          // The claim lapses at lockMs and the delivery is tried again: at least once.
          onError(err);
        }
      }),
    );
    return summary;
  }

  let running = false;
  let timer: TimerHandle | undefined;
  let current: Promise<void> | undefined;

  function schedule(ms: number): void {
    if (!running) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      current = loop();
    }, ms);
  }

  async function loop(): Promise<void> {
    let full = false;
    try {
      const s = await runOnce();
      full = s.claimed >= batchSize;
    } catch (err) {
      onError(err);
    }
    // A full batch means more may be due: go on at once (yielding to the event loop).
    schedule(full ? 0 : pollMs);
  }

  return {
    start() {
      if (running) return;
      running = true;
      schedule(0);
    },
    async stop() {
      running = false;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      await current;
      const agent = ownAgent;
      ownAgent = undefined;
      if (agent !== undefined) await agent.close().catch(onError);
    },
    runOnce,
  };
}
