import type { ServerResponse } from 'node:http';
import type { Clock } from '../lib/clock.ts';
import { every } from '../lib/every.ts';
import type { PreviewStream } from './registry.ts';

/** A heartbeat comment this often keeps proxies from closing a quiet stream. */
export const HEARTBEAT_MS = 15_000;
/** Bytes a stream may have waiting for a slow reader; past it the reader is dropped (the stream closes). */
export const MAX_BUFFERED_BYTES = 256 * 1024;

/**
 * A server-sent events stream on `res` (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * `event:`/`data:` messages, a heartbeat comment on the clock, bounded by what the socket has not
 * taken yet. `onClose` runs once, whoever ends it (the client going away included).
 */
export function openEventStream(res: ServerResponse, clock: Clock, onClose: () => void): PreviewStream {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
    'x-content-type-options': 'nosniff',
  });
  res.write(': preview stream\n\n');
  let open = true;
  const stopHeartbeat = every(clock, HEARTBEAT_MS, () => write(': heartbeat\n\n'));
  const close = (): void => {
    if (!open) return;
    open = false;
    stopHeartbeat();
    onClose();
    res.end();
  };
  res.on('close', close);
  function write(text: string): void {
    if (!open) return;
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      // A reader this far behind would only grow the buffer: dropped, it may reconnect.
      close();
      return;
    }
    res.write(text);
  }
  return {
    // JSON has no raw line breaks, so one `data:` line carries the message.
    send: (event, data) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
    end(reason) {
      write(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
      close();
    },
  };
}
