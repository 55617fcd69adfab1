/**
 * Test doubles for delivery: a minimal BoundDestination that posts `{batch: items}` as JSON, a
 * fake sender (no HTTP: the test answers each request, at once or when it says so), a results
 * collector to wait on, and (from src/lib/http/test-server.ts) a real HTTP server on 127.0.0.1
 * that records what it received. No test reaches the internet.
 */
import { bodyText, type BatchLimits, type BoundDestination, type VendorRequest } from '../destinations/types.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import type { Event } from '../ingest/event.ts';
import type { RenderedItem } from './batcher.ts';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import type { DeliveryResult } from './result.ts';
import type { AttemptOutcome } from './retry-policy.ts';
import type { RetrySafeFailure } from '../destinations/types.ts';
import type { SendFn } from './scheduler.ts';
import type { SendOptions, SendResult } from '../lib/http/send.ts';
export { refusedUrl, startServer, type ReceivedRequest, type TestServer } from '../lib/http/test-server.ts';


/**
 * A FakeClock that says when a timer is armed: a flush arms its deadline timer once its drain has
 * started (asynchronously), and a test must not move time before that.
 */
export class WatchedClock extends FakeClock {
  #waiters: (() => void)[] = [];

  override setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = super.setTimeout(fn, ms);
    for (const wake of this.#waiters.splice(0)) wake();
    return handle;
  }

  /** Resolves when the next timer is armed. */
  nextTimer(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

export interface FakeDestinationOptions {
  id?: string;
  url: string;
  method?: VendorRequest['method'];
  limits?: Partial<BatchLimits>;
  idempotent?: boolean;
  /** The template's `request.retrySafe`; default none. */
  retrySafe?: RetrySafeFailure[];
  secretValues?: string[];
  /** The template's retryOn verdict on an error answer; default: never temporary. */
  transientResponse?: (status: number, body: string) => boolean;
  /** The template's bisectOn verdict on an error answer; default: never a whole-batch rejection. */
  rejectsBatch?: (status: number, body: string) => boolean;
}

export function fakeDestination(options: FakeDestinationOptions): BoundDestination {
  const idempotent = options.idempotent ?? true;
  return {
    id: options.id ?? 'fake',
    templateId: 'fake',
    limits: { maxEvents: 10, maxBytes: 100_000, lingerMs: 50, ...options.limits },
    idempotent,
    retrySafe: new Set(options.retrySafe ?? []),
    secretValues: options.secretValues ?? [],
    transientResponse: options.transientResponse ?? (() => false),
    rejectsBatch: options.rejectsBatch ?? (() => false),
    redactions: [],
    needsItems: true,
    render(event: Event) {
      const rendered: RenderedItem = { ok: true, groupKey: 'all', envelope: {}, item: event, messageId: event.messageId };
      if (idempotent) rendered.idempotencyKey = event.messageId;
      return rendered;
    },
    buildRequest(_envelope, items) {
      return {
        method: options.method ?? 'POST',
        url: options.url,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ batch: items }),
      };
    },
  };
}

/** A rendered event without going through render(): item `{id, pad}` sized by `padBytes`. */
export function renderedItem(messageId: string, opts: { groupKey?: string; padBytes?: number; idempotencyKey?: string } = {}): RenderedItem {
  const item: RenderedItem = {
    ok: true,
    groupKey: opts.groupKey ?? 'all',
    envelope: { group: opts.groupKey ?? 'all' },
    item: { id: messageId, pad: 'x'.repeat(opts.padBytes ?? 0) },
    messageId,
  };
  item.idempotencyKey = opts.idempotencyKey ?? messageId;
  return item;
}

/** Items of a `{batch: [...]}` body as the fake destination sends them. */
export function batchIds(body: string): string[] {
  const parsed = JSON.parse(body) as { batch: { id?: string; messageId?: string }[] };
  return parsed.batch.map((i) => i.id ?? i.messageId ?? '');
}

/** What a fake vendor answers: a response, or a network failure (`network` is its code). */
export type FakeAnswer = { status: number; body?: string; retryAfter?: string } | { network: string };

export interface FakeCall {
  request: VendorRequest;
  options: SendOptions;
  /** The ids in the request's `{batch: [...]}` body. */
  ids: string[];
  /** The clock's time when the request left. */
  at: number;
  /** Settles the request with this answer (a held call only; an auto-answered one is settled). */
  answer(answer: FakeAnswer): void;
}

export interface FakeSender {
  send: SendFn;
  calls: FakeCall[];
  /** Calls not answered yet, oldest first. */
  readonly pending: FakeCall[];
  /** Resolves once `n` requests have left in total. */
  untilCalls(n: number): Promise<void>;
}

/**
 * A sender without HTTP. `vendor` answers each request as it leaves; when it returns undefined
 * (or there is none) the request is held until the test calls `answer`. An abort settles a held
 * request the way src/lib/http/send.ts does: a network outcome with code ABORTED. Whether an error answer is
 * temporary or a whole-batch rejection is asked of the destination's rules, as src/lib/http/send.ts does.
 */
export function fakeSender(clock: Clock, vendor?: (call: FakeCall) => FakeAnswer | undefined): FakeSender {
  const calls: FakeCall[] = [];
  const open = new Set<FakeCall>();
  const waiters: { n: number; resolve: () => void }[] = [];
  const send: SendFn = (request, options) =>
    new Promise<SendResult>((resolve) => {
      const call: FakeCall = {
        request,
        options,
        ids: batchIds(bodyText(request) ?? '{"batch":[]}'),
        at: clock.now(),
        answer(answer) {
          if (!open.delete(call)) return;
          resolve(fakeResult(options, answer));
        },
      };
      open.add(call);
      calls.push(call);
      options.signal?.addEventListener('abort', () => {
        if (open.delete(call)) resolve({ outcome: { kind: 'network', code: 'ABORTED' }, durationMs: 0, responseBytes: 0, truncated: false });
      });
      const auto = vendor?.(call);
      if (auto !== undefined) call.answer(auto);
      for (const w of waiters.filter((w) => calls.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
  return {
    send,
    calls,
    get pending() {
      return calls.filter((c) => open.has(c));
    },
    untilCalls: (n) => (calls.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

function fakeResult(options: SendOptions, answer: FakeAnswer): SendResult {
  if ('network' in answer) return { outcome: { kind: 'network', code: answer.network }, durationMs: 0, responseBytes: 0, truncated: false };
  const outcome: AttemptOutcome = { kind: 'response', status: answer.status };
  if (answer.retryAfter !== undefined) outcome.retryAfter = answer.retryAfter;
  const body = answer.body ?? '';
  const result: SendResult = { outcome, durationMs: 0, responseBytes: Buffer.byteLength(body), truncated: false };
  if (answer.status >= 400 && options.isTransient?.(answer.status, body) === true) outcome.transient = true;
  if (answer.status >= 400 && options.rejectsBatch?.(answer.status, body) === true) result.rejectsBatch = true;
  if (body !== '') result.excerpt = body;
  return result;
}

export interface ResultLog {
  results: DeliveryResult[];
  /** Collects a result (an onResult / report). */
  push: (result: DeliveryResult) => void;
  of(outcome: DeliveryResult['outcome']): DeliveryResult[];
  /** Resolves once the results so far satisfy `done`; waits on results, never on time. */
  until(done: (log: ResultLog) => boolean): Promise<void>;
}

export function resultLog(): ResultLog {
  const waiters: { done: (log: ResultLog) => boolean; resolve: () => void }[] = [];
  const log: ResultLog = {
    results: [],
    push(result) {
      log.results.push(result);
      for (const w of [...waiters]) {
        if (!w.done(log)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    of: (outcome) => log.results.filter((r) => r.outcome === outcome),
    until: (done) => (done(log) ? Promise.resolve() : new Promise((resolve) => waiters.push({ done, resolve }))),
  };
  return log;
}
