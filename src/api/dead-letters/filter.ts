/**
 * The dead-letter filters, one schema for the CLI's flags (`tagwarden dlq …`), the list route's
 * query string and the replay and purge routes' JSON bodies (docs/dead-letters.md). Times are ISO
 * 8601, unix seconds or milliseconds, as in the audit routes; unknown fields are refused, so a typo
 * never widens a purge.
 */
import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import type { DeadFilter } from '../../store/journal.ts';
import { parseTime } from '../consent/inputs.ts';

/** Most rows one list answers (the store caps it there too). */
export const MAX_DEAD_PAGE = 1000;
/** Most rows one replay or purge touches when a limit is given. */
export const MAX_DEAD_BATCH = 1_000_000;

const time = z
  .union([z.string().max(64), z.number()])
  .transform((v, ctx) => {
    const t = parseTime(v);
    if (t === undefined) {
      ctx.addIssue({ code: 'custom', message: 'ISO 8601, unix seconds or milliseconds' });
      return z.NEVER;
    }
    return t;
  })
  .optional();

const fields = (maxLimit: number) => ({
  // A destination id of the configuration (src/config/schema.ts).
  destinationId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a destination id').optional(),
  // Reasons are the delivery's own words (status_400, max_total_time, …), at most 200 characters.
  reason: z.string().min(1).max(200).optional(),
  since: time,
  before: time,
  // A number in a body, digits in a query string or a flag; never a coerced `true` or "1e3".
  limit: z
    .union([z.int(), z.string().regex(/^\d{1,16}$/, 'a whole number').transform(Number)])
    .pipe(z.int().min(1).max(maxLimit))
    .optional(),
});

/** The list's filters (query string, or the CLI's flags). */
export const deadListSchema = z.object(fields(MAX_DEAD_PAGE)).strict();

/** The filters of a replay or a purge by the CLI: none means every dead letter of the site. */
export const deadBatchSchema = z.object(fields(MAX_DEAD_BATCH)).strict();

/**
 * A replay or purge body of the API: filters, or `{hitId, destinationId}` for one dead letter, or
 * `{"all": true}`. An empty body is refused: acting on every dead letter is said, not implied.
 */
export const deadBodySchema = z
  .object({ ...fields(MAX_DEAD_BATCH), hitId: z.int().min(1).max(Number.MAX_SAFE_INTEGER).optional(), all: z.literal(true).optional() })
  .strict()
  .superRefine((b, ctx) => {
    const filters = Object.keys(b).filter((k) => k !== 'all' && k !== 'limit');
    if (b.all === true && filters.length > 0) ctx.addIssue({ code: 'custom', path: ['all'], message: 'all: true takes no other filter' });
    if (b.all !== true && filters.length === 0) ctx.addIssue({ code: 'custom', path: [], message: 'give a filter (hitId, destinationId, reason, since, before) or "all": true' });
  });

export type DeadFilterInput = z.output<typeof deadListSchema> & { hitId?: number };

/** The store's filter for the site: only the fields given (the store reads absent ones as "any"). */
export function toDeadFilter(siteId: string, f: DeadFilterInput): DeadFilter {
  const out: DeadFilter = { siteId };
  if (f.hitId !== undefined) out.hitId = f.hitId;
  if (f.destinationId !== undefined) out.destinationId = f.destinationId;
  if (f.reason !== undefined) out.reason = f.reason;
  if (f.since !== undefined) out.since = f.since;
  if (f.before !== undefined) out.before = f.before;
  if (f.limit !== undefined) out.limit = f.limit;
  if (out.since !== undefined && out.before !== undefined && out.since >= out.before) {
    throw new ValidationError('since: must be earlier than before', { details: { issues: [{ path: 'since', message: 'must be before `before`' }] } });
  }
  return out;
}
