import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler, Router } from 'express';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.ts';
import type { HeldEvent, PreviewSink, RuntimeDestination } from '../pipeline/types.ts';
import { decisionMessage } from './message.ts';
import { previewReader } from './mark.ts';
import { createPreviewRegistry, type PreviewRegistry } from './registry.ts';
import { previewRouter } from './routes.ts';
import { previewTokens } from './token.ts';
import type { PreviewMark } from './types.ts';

export interface Preview {
  router: Router;
  /** For the accept step: the preview of a request's hits. */
  read: (headers: IncomingHttpHeaders) => PreviewMark | undefined;
  /** For the pipeline: each decision of a preview's hit goes to its streams. */
  sink: PreviewSink;
  /** For the pending queue: a preview's held event that expired is shown dropped (`consent_unresolved`). */
  heldExpired(held: HeldEvent): void;
  /** For delivery's results: the vendor's answer to a preview's event goes to its streams. */
  delivered: PreviewRegistry['delivered'];
  registry: PreviewRegistry;
  /** Ends every preview and its streams (shutdown). */
  close(): void;
}

/** Preview (docs/preview.md), built by app.ts when there is an admin key and a store (the API's guard). */
export function createPreview(o: { adminKey: string; guard: (scope: 'admin') => RequestHandler; destinations: readonly RuntimeDestination[]; maxBodyBytes: number; clock: Clock; log: Logger }): Preview {
  const registry = createPreviewRegistry({ tokens: previewTokens(o.adminKey), clock: o.clock });
  const byId = new Map(o.destinations.map((d) => [d.policy.id, d]));
  const sink: PreviewSink = {
    decided(d) {
      registry.publish(d.mark.id, 'decision', decisionMessage(d, o.clock.now()));
      if (d.sent) registry.awaitDelivery(d.mark.id, d.destination.policy.id, d.event.messageId);
    },
  };
  return {
    router: previewRouter({ registry, guard: o.guard, destinationIds: [...byId.keys()], maxBodyBytes: o.maxBodyBytes, clock: o.clock, log: o.log }),
    read: previewReader(registry, o.log),
    sink,
    heldExpired(h) {
      const mark = h.signals.preview;
      if (mark === undefined) return;
      for (const id of h.destinationIds) {
        const destination = byId.get(id);
        if (destination !== undefined) sink.decided({ mark, destination, event: h.event, outcome: 'drop', reason: 'consent_unresolved', decision: undefined, consent: undefined, sent: false });
      }
    },
    delivered: (r) => registry.delivered(r),
    registry,
    close: () => registry.close(),
  };
}
