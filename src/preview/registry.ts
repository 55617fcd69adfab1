import { randomBytes } from 'node:crypto';
import { RateLimitedError } from '../errors.ts';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { unrefTimer } from '../lib/every.ts';
import type { PreviewTokens } from './token.ts';
import type { PreviewMark, PreviewMode } from './types.ts';

/** Most previews on at once: each is a marketer's browser, not traffic. */
export const MAX_ACTIVE_PREVIEWS = 20;
/** Most live streams one preview feeds (a dashboard tab or two, a script). */
export const MAX_STREAMS_PER_PREVIEW = 5;
/** Sent events whose vendor answer a preview still waits to show, over all previews; the oldest is forgotten first. */
const MAX_AWAITED_DELIVERIES = 10_000;

/** One live stream's end, as the registry sees it (./sse.ts). */
export interface PreviewStream {
  send(event: string, data: unknown): void;
  /** Sends `event: end` with the reason, then closes. */
  end(reason: 'expired' | 'stopped' | 'shutdown'): void;
}

export interface StartedPreview {
  id: string;
  token: string;
  expiresAt: number;
  mode: PreviewMode;
}

interface Session {
  mark: PreviewMark;
  expiresAt: number;
  streams: Set<PreviewStream>;
  timer: TimerHandle;
}

export interface PreviewRegistry {
  /** A new preview; refused (429) with MAX_ACTIVE_PREVIEWS on. */
  start(input: { mode: PreviewMode; ttlMs: number; testEventCodes: Record<string, string> }): StartedPreview;
  /** Ends the preview (its streams get `end`): its token is denied from now on. False when unknown. */
  stop(id: string): boolean;
  /** The preview of a valid token (signed here, its id on, not expired), else undefined. */
  resolve(token: unknown): { mark: PreviewMark; expiresAt: number } | undefined;
  /** Previews on now: when none, hits are not even looked at for a token. */
  readonly active: number;
  /** Whether a stream may be added to the preview now. */
  room(id: string): 'ok' | 'unknown' | 'full';
  /** Adds a stream; 'unknown' or 'full' when it cannot. The returned function removes it. */
  subscribe(id: string, stream: PreviewStream): { remove: () => void } | 'unknown' | 'full';
  publish(id: string, event: string, data: unknown): void;
  /** An event of the preview handed to delivery: its vendor's answer goes to the preview's streams. */
  awaitDelivery(id: string, destinationId: string, messageId: string): void;
  /** A delivery result: the previews awaiting any of its events hear of it. */
  delivered(result: { destinationId: string; messageIds: readonly string[]; outcome: string; status?: number | undefined }): void;
  /** Ends every preview (shutdown). */
  close(): void;
}

/**
 * The previews on, in this instance's memory (lost at a restart, not shared between instances:
 * docs/preview.md). Each expires on the clock; its streams then get `end`.
 */
export function createPreviewRegistry(deps: { tokens: PreviewTokens; clock: Clock }): PreviewRegistry {
  const { tokens, clock } = deps;
  const sessions = new Map<string, Session>();
  const awaited = new Map<string, string>();
  const key = (destinationId: string, messageId: string): string => `${destinationId}\u0000${messageId}`;

  function end(id: string, reason: 'expired' | 'stopped' | 'shutdown'): boolean {
    const s = sessions.get(id);
    if (s === undefined) return false;
    sessions.delete(id);
    clock.clearTimeout(s.timer);
    for (const stream of [...s.streams]) stream.end(reason);
    s.streams.clear();
    return true;
  }

  function publish(id: string, event: string, data: unknown): void {
    const s = sessions.get(id);
    if (s === undefined) return;
    for (const stream of [...s.streams]) stream.send(event, data);
  }

  return {
    start(input) {
      if (sessions.size >= MAX_ACTIVE_PREVIEWS) throw new RateLimitedError(`at most ${MAX_ACTIVE_PREVIEWS} previews at once: stop one first`);
      const id = randomBytes(16).toString('base64url');
      const expiresAt = clock.now() + input.ttlMs;
      const mark: PreviewMark = Object.freeze({ id, mode: input.mode, testEventCodes: Object.freeze({ ...input.testEventCodes }) });
      const timer = unrefTimer(clock.setTimeout(() => end(id, 'expired'), input.ttlMs));
      sessions.set(id, { mark, expiresAt, streams: new Set(), timer });
      return { id, token: tokens.sign({ id, expiresAt, mode: input.mode }), expiresAt, mode: input.mode };
    },
    stop: (id) => end(id, 'stopped'),
    resolve(token) {
      const claims = tokens.verify(token);
      if (claims === undefined) return undefined;
      const s = sessions.get(claims.id);
      if (s === undefined || s.expiresAt <= clock.now() || claims.expiresAt !== s.expiresAt || claims.mode !== s.mark.mode) return undefined;
      return { mark: s.mark, expiresAt: s.expiresAt };
    },
    get active() {
      return sessions.size;
    },
    room(id) {
      const s = sessions.get(id);
      return s === undefined ? 'unknown' : s.streams.size >= MAX_STREAMS_PER_PREVIEW ? 'full' : 'ok';
    },
    subscribe(id, stream) {
      const s = sessions.get(id);
      if (s === undefined) return 'unknown';
      if (s.streams.size >= MAX_STREAMS_PER_PREVIEW) return 'full';
      s.streams.add(stream);
      return { remove: () => s.streams.delete(stream) };
    },
    publish,
    awaitDelivery(id, destinationId, messageId) {
      if (awaited.size >= MAX_AWAITED_DELIVERIES) awaited.delete(awaited.keys().next().value!);
      awaited.set(key(destinationId, messageId), id);
    },
    delivered(r) {
      if (awaited.size === 0) return;
      for (const messageId of r.messageIds) {
        const k = key(r.destinationId, messageId);
        const id = awaited.get(k);
        if (id === undefined) continue;
        if (r.outcome !== 'retry_scheduled') awaited.delete(k);
        publish(id, 'delivery', { messageId, destinationId: r.destinationId, outcome: r.outcome, ...(r.status === undefined ? {} : { status: r.status }) });
      }
    },
    close() {
      for (const id of [...sessions.keys()]) end(id, 'shutdown');
      awaited.clear();
    },
  };
}
