import { z } from 'zod';
import { idProblem, MAX_SUBJECT_ID } from '../../store/ids.ts';

/**
 * Subject ids as the consent API takes them: one rule (src/store/ids.ts `idProblem`) for every
 * route that names a subject (push visitorId/userId/customUserId, an event's customer ids, a CSV
 * customer_id cell, /subjects/:type/:id, audit ?subject=) and for the store itself, so the answer
 * to an id never depends on the engine. A refused id is a 400 naming the field.
 */

export { idProblem, MAX_SUBJECT_ID };

/** A zod string that is a storable subject id (the message names no field: zod's path does). */
export const subjectIdSchema = z.string({ error: 'a string' }).superRefine((v, ctx) => {
  const problem = idProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * A query filter compared with stored text (audit `source`, `cursor`): well-formed and without NUL,
 * which PostgreSQL refuses while SQLite compares it; stored text never holds either
 * (src/store/audit.ts storableText).
 */
export const queryTextSchema = (max: number) =>
  z.string().min(1).max(max).superRefine((v, ctx) => {
    if (!v.isWellFormed() || v.includes('\u0000')) ctx.addIssue({ code: 'custom', message: 'no NUL and no lone UTF-16 surrogate' });
  });

/** Text naming an item (a push's `reference`; the audit filters `category`, `reference`): the id rule, as the store applies it to items. */
export const queryItemSchema = (max: number) =>
  z.string().min(1).max(max).superRefine((v, ctx) => {
    const problem = idProblem(v, max);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
