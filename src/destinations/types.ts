import type { AnswerRejection } from '../lib/http/send.ts';
import type { Event } from '../ingest/event.ts';
import type { BoundAuth } from './auth/bind.ts';
import type { CompiledRowErrors } from './row-errors.ts';

/**
 * Failures after which the vendor may or may not have processed the request: a template without an
 * idempotency key lists those its vendor can safely see twice (docs/templates.md, `retrySafe`); src/delivery/retry-policy.ts applies it.
 * - `status_5xx`: a retryable 5xx (not 501/505), other than a 503 with a Retry-After;
 * - `status_transient`: another error answer the template's `retryOn` rules call temporary;
 * - `timeout`: no complete answer within the request budget;
 * - `network`: the connection failed after the request may have left (reset, closed, unknown).
 */
export const RETRY_SAFE_FAILURES = ['status_5xx', 'status_transient', 'timeout', 'network'] as const;
export type RetrySafeFailure = (typeof RETRY_SAFE_FAILURES)[number];

/** A fully rendered HTTP request to a vendor. */
export interface VendorRequest {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  headers: Record<string, string>;
  /** Batched bodies are bytes (spliced from the batch's buffer, sent as they are); others text. */
  body?: string | Buffer;
}

/** A request's body as text (explain, dry runs, template cases). */
export function bodyText(req: VendorRequest): string | undefined {
  return typeof req.body === 'string' || req.body === undefined ? req.body : req.body.toString('utf8');
}

/** Limits a template declares for batching several events into one vendor request. */
export interface BatchLimits {
  /** Most events in one request (1 = no batching). */
  maxEvents: number;
  /** Most bytes in one request body. */
  maxBytes: number;
  /** How long the first event of a batch may wait for company. */
  lingerMs: number;
}

/** What rendering one event through a destination produced. */
export type RenderedEvent =
  | {
      ok: true;
      /** Events whose envelope is equal (JSON) may share a request; e.g. GA4's client_id. */
      groupKey: string;
      envelope: Record<string, unknown>;
      item: unknown;
      /** Value of the template's idempotency field (e.g. Meta `event_id`), when declared. */
      idempotencyKey?: string;
      messageId: string;
    }
  | { ok: false; kind: 'skip'; reason: string; messageId: string }
  /**
   * The rendered event breaks one of the vendor's documented limits (the template's `rules`):
   * it must not be sent; the pipeline decides it `drop` with reason `vendor_rule:<rule>`. `path` is
   * the field that broke it (no value: it may be personal data).
   */
  | { ok: false; kind: 'vendor_rule'; rule: string; path: string; messageId: string }
  | { ok: false; kind: 'error'; error: Error; messageId: string };

/**
 * A destination instance: one template with the site's settings (and optional endpoint override)
 * bound in. Pure: rendering never does I/O.
 */
export interface BoundDestination {
  id: string;
  templateId: string;
  limits: BatchLimits;
  /** True when the template declares an idempotency key, so a POST may be retried. */
  idempotent: boolean;
  /**
   * Without a key: the failures after which the template says a resend is still safe
   * (`request.retrySafe`). Refusals (429, 408, 503 with Retry-After) are retried regardless.
   */
  retrySafe: ReadonlySet<RetrySafeFailure>;
  /** Values of the settings the template marks secret, for masking in explain output and logs. */
  secretValues: string[];
  /**
   * The template's `auth` bound to this destination's settings: delivery obtains an access token
   * with it and adds `authorization: Bearer` just before sending (src/delivery/oauth2.ts).
   * `buildRequest` never adds it, so explain output and template cases never hold a token.
   */
  auth?: BoundAuth;
  /**
   * Whether a vendor's error answer is temporary by the template's `retryOn` rules (Meta answers
   * some rate limits with 400): delivery then retries it like a 429.
   */
  transientResponse(status: number, body: string): boolean;
  /**
   * Whether a vendor's error answer rejects the whole batch for one invalid event, by the
   * template's `bisectOn` rules (Meta rejects a batch with one invalid event): delivery then splits
   * the batch to isolate the invalid events (src/delivery/bisect.ts).
   */
  rejectsBatch(status: number, body: string): boolean;
  /**
   * For a vendor that answers 2xx to errors (the template's `successCode`; TikTok): whether a 2xx
   * answer is in fact a rejection, temporary or final. Absent or undefined: a 2xx is a success.
   */
  answerRejected?: (status: number, body: string) => AnswerRejection | undefined;
  /**
   * For a vendor that answers 2xx to a batch some rows of which failed (the template's
   * `rowErrors`; Google Ads partial failure): which rows, read from the body of at most
   * `maxResponseBytes` (src/destinations/row-errors.ts). Absent: a 2xx delivers every row.
   */
  rowErrors?: { read: CompiledRowErrors['read']; maxResponseBytes: number; retryAfterSeconds?: number | undefined };
  /**
   * The template's test mode (`testMode`), for a preview's events (src/preview/): `needsCode` when
   * the vendor takes a test event code (Meta, TikTok); `apply` returns the rendered event with it
   * (and the fixed fields) set, its group key recomputed, and the vendor's rules checked again on
   * it (`receivedAt`: the event's, ms), so a field the test mode adds cannot break one unseen (GA4's
   * 25 parameters). Absent: the destination is not sent in preview.
   */
  testMode?: {
    needsCode: boolean;
    apply(rendered: Extract<RenderedEvent, { ok: true }>, code: string | undefined, receivedAt: number): Extract<RenderedEvent, { ok: true } | { kind: 'vendor_rule' }>;
  };
  /** Names of the redaction rules the template defines (e.g. `consent_unknown`). */
  redactions: readonly string[];
  /**
   * False when `buildRequest` needs only the items' JSON: the request's URL, query and headers
   * read no event data and items are batched into an array. Batches then keep one string per
   * event instead of its object graph, which keeps young-generation GC pauses short.
   */
  needsItems: boolean;
  /**
   * Render one event; `redactions` names template redaction rules to apply. A requested rule the
   * template does not define yields a skip with reason `redaction_unavailable:<name>` (fail closed).
   */
  render(event: Event, redactions: readonly string[]): RenderedEvent;
  /**
   * Build one request from rendered events sharing a group key (1..limits.maxEvents of them).
   * `itemJson`, when given, is the items' JSON already made (the batcher makes it to measure the
   * batch); the body reuses it instead of serialising a large batch again on the event loop.
   * When `needsItems` is false, `items` may hold placeholders (`undefined`) and only `itemJson` is read.
   */
  buildRequest(envelope: Record<string, unknown>, items: unknown[], itemJson?: ItemsJson): VendorRequest;
}

/** Items' JSON made once: joined by commas as UTF-8 (a JSON array's content), and one by one. */
export interface ItemsJson {
  readonly count: number;
  readonly joined: Uint8Array;
  item(index: number): string;
}
