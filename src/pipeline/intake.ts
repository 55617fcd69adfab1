import { requestIdOf } from '../observability/request-id.ts';
import type { Logger } from 'pino';
import type { HitToDecide, JournalRuntime } from '../delivery/journal-runtime.ts';
import { createDeferredProcessing } from '../ingest/deferred.ts';
import type { HitSink } from '../ingest/hit-sink.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createAccept, type AcceptDeps } from './accept.ts';
import { createCommit } from './commit.ts';
import type { Pipeline } from './types.ts';

/** The routes' side of the pipeline (the HitSink of src/ingest/hit-sink.ts) and the queue between the answer and the decisions. */
export interface Intake extends Required<HitSink> {
  /** Decides the hit right after this turn's answers are written (src/ingest/deferred.ts). */
  decideLater(hit: HitToDecide): void;
  /** Decides every hit still queued, now (flush, shutdown). */
  drain(): void;
}

export interface IntakeDeps extends AcceptDeps {
  /** Commits a request's hits before its answer; absent: no journal, answered at once. */
  journal: Pick<JournalRuntime, 'commit'> | undefined;
  pipeline: Pick<Pipeline, 'process'>;
  log: Logger;
  metrics: Pick<Metrics, 'eventsRejected'>;
}

/** accept → (journal) commit → decided after the answer by `pipeline.process`. */
export function createIntake(deps: IntakeDeps): Intake {
  const deferred = createDeferredProcessing<HitToDecide>(
    (h) => deps.pipeline.process(h.event, h.signals, h.requestConsent),
    (err, h) => {
      deps.log.error({ err, requestId: requestIdOf(h.event), messageId: h.event.messageId }, 'pipeline failed for an event');
      deps.metrics.eventsRejected.inc({ client: 'pipeline', code: 'TW_ERR_INTERNAL' });
    },
  );
  const decideLater = (h: HitToDecide): void => deferred.push(h);
  return { accept: createAccept(deps), commit: createCommit(deps.journal, decideLater), decideLater, drain: () => deferred.drain() };
}
