import { z } from 'zod';
import { configSchema } from './schema.ts';

/** JSON Schema of the config file as a user writes it (defaults are optional, so `io: 'input'`). */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'Tagwarden configuration',
  };
}
