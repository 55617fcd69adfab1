import type { z } from 'zod';
import { ValidationError } from '../../errors.ts';

/**
 * Parses a request part with its zod schema, or throws the 400 every consent route answers: each
 * failing field by path, in the message and in `details.issues`. `root` names a failure of the
 * whole input (no path), e.g. `query`.
 */
export function parseOr400<T>(schema: z.ZodType<T>, input: unknown, root = ''): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new ValidationError(issues.map((i) => `${i.path || root}: ${i.message}`).join('; '), { details: { issues } });
}
