/**
 * An open-loop load generator: sends requests at evenly spaced times (a fixed rate), whatever the
 * server's speed, over a keep-alive undici Pool. autocannon's `overallRate` spends each second's
 * budget in a burst at the start of the second, which measures queueing inside the burst rather
 * than the cost of a hit. Latency is counted from when a request was due, not from when a free
 * connection let it leave, so a server that falls behind is charged for it (no coordinated
 * omission).
 */
import { Pool } from 'undici';

export interface PacedOptions {
  url: string;
  path: string;
  rate: number;
  seconds: number;
  connections: number;
  headers: Record<string, string>;
  body: (seq: number) => string;
  onResponse: (status: number, latencyMs: number) => void;
  /** Called for a request that got no answer (a timeout or a connection error), besides the counts. */
  onError?: (timeout: boolean) => void;
}

export interface PacedResult {
  duration: number;
  errors: number;
  timeouts: number;
}

export async function pacedLoad(o: PacedOptions): Promise<PacedResult> {
  const pool = new Pool(o.url, { connections: o.connections, pipelining: 1, keepAliveTimeout: 10_000 });
  const start = performance.now();
  const total = Math.floor(o.rate * o.seconds);
  const intervalMs = 1000 / o.rate;
  let sent = 0;
  let errors = 0;
  let timeouts = 0;
  const inFlight = new Set<Promise<void>>();

  const fire = (seq: number, dueAt: number): void => {
    const p = pool
      .request({ path: o.path, method: 'POST', headers: o.headers, body: o.body(seq), headersTimeout: 10_000, bodyTimeout: 10_000 })
      .then(async (res) => {
        await res.body.dump();
        o.onResponse(res.statusCode, performance.now() - dueAt);
      })
      .catch((err: unknown) => {
        const timeout = (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT';
        if (timeout) timeouts++;
        else errors++;
        o.onError?.(timeout);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      // Send every request whose due time has come; the timer's own lateness is absorbed here.
      while (sent < total && start + sent * intervalMs <= now) {
        fire(sent, start + sent * intervalMs);
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(tick, Math.max(0, Math.min(1, start + sent * intervalMs - now)));
    };
    tick();
  });
  await Promise.all([...inFlight]);
  const duration = (performance.now() - start) / 1000;
  await pool.close();
  return { duration: Math.max(duration, o.seconds), errors, timeouts };
}
