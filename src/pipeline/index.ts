/**
 * The per-hit pipeline, in the order a hit goes through it:
 *   accept.ts             accept: refuse during shutdown, identity and consent signals, the visitor
 *                         cookie (set-cookie.ts), id links, click ids
 *   commit.ts, intake.ts  the journal commit before the answer, then decided after it
 *   resolve.ts            resolve: the hit's consent with what is known elsewhere
 *   record-hit-consent.ts the hit's own consent written to its visitor's profile (store.recordHitConsent)
 *   decide-destination.ts decide: TCF verdict, then the pure policy (src/policy/)
 *   render.ts             render: the vendor request
 *   hand-off.ts           hand to delivery, or record the drop / the hold (outcomes.ts)
 *   held.ts, held-queue.ts held events and the upstream lookups that release them
 *   create-pipeline.ts    the spine that runs them
 */
export { createPipeline } from './create-pipeline.ts';
export { createIntake, type Intake, type IntakeDeps } from './intake.ts';
export { createHeldQueue } from './held-queue.ts';
export { createHitConsentRecorder, type HitConsentRecorder } from './record-hit-consent.ts';
export { countUnresolved } from './outcomes.ts';
export { previewRequest, renderDropReason } from './render.ts';
export type { DeliverySink, EventOrigin, Evaluation, HeldEvent, JournalHooks, Pipeline, PipelineDeps, RuntimeDestination } from './types.ts';
