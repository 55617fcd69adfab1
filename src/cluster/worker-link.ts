/**
 * A worker's side of the supervisor's IPC (src/cluster/supervisor.ts): says when it listens,
 * answers the supervisor's requests for its metrics, asks for everybody's when scraped, and carries
 * consent changes to and from the other workers.
 */
import type { Registry } from 'prom-client';
import { UnavailableError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import type { ChangeRelay } from '../store/notify.ts';
import { isToWorker, type ToPrimary } from './messages.ts';

export interface WorkerLink {
  /** The supervisor's number for this worker (1, 2, ...; a replacement gets the next one). */
  worker: number;
  /** Tell the supervisor this worker's server listens. */
  listening(): void;
  /** Answer the supervisor's `collect` with this registry's metrics. */
  serve(registry: Registry): void;
  /** Every worker's metrics added up (Prometheus text), for GET /metrics. */
  metrics(): Promise<string>;
  /** Consent changes to and from the other workers. */
  relay: ChangeRelay;
}

/** A process is the IPC channel to the supervisor (`process` in a cluster worker). */
export type Channel = Pick<NodeJS.Process, 'send' | 'connected' | 'on'>;

export function connectWorker(channel: Channel, worker: number, clock: Clock, timeoutMs = 5_000): WorkerLink {
  let registry: Registry | undefined;
  let nextId = 0;
  const waiting = new Map<number, (text: string) => void>();
  const listeners: ((siteId: string, subjectKey: string) => void)[] = [];

  const send = (m: ToPrimary): boolean => {
    if (channel.send === undefined || channel.connected === false) return false;
    // An error means the supervisor is gone (this worker is about to be stopped): nothing to do.
    channel.send(m, undefined, undefined, () => undefined);
    return true;
  };

  channel.on('message', (m) => {
    if (!isToWorker(m)) return;
    if (m.tw === 'collect') {
      const r = registry;
      if (r === undefined) return void send({ tw: 'collected', id: m.id, metrics: [] });
      r.getMetricsAsJSON().then(
        (metrics) => send({ tw: 'collected', id: m.id, metrics }),
        () => send({ tw: 'collected', id: m.id, metrics: [] }),
      );
    } else if (m.tw === 'metrics') {
      waiting.get(m.id)?.(m.text);
    } else {
      for (const l of listeners) l(m.siteId, m.subjectKey);
    }
  });

  return {
    worker,
    listening: () => void send({ tw: 'listening' }),
    serve(r) {
      registry = r;
    },
    metrics() {
      const id = ++nextId;
      return new Promise<string>((resolve, reject) => {
        const t = clock.setTimeout(() => {
          waiting.delete(id);
          reject(new UnavailableError('the metrics of the other workers did not arrive'));
        }, timeoutMs);
        waiting.set(id, (text) => {
          clock.clearTimeout(t);
          waiting.delete(id);
          resolve(text);
        });
        if (!send({ tw: 'scrape', id })) {
          clock.clearTimeout(t);
          waiting.delete(id);
          reject(new UnavailableError('no supervisor to ask for the metrics of the other workers'));
        }
      });
    },
    relay: {
      publish: (siteId, subjectKey) => void send({ tw: 'consent_changed', siteId, subjectKey }),
      subscribe: (fn) => void listeners.push(fn),
    },
  };
}
