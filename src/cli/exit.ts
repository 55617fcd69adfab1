import { ValidationError } from '../errors.ts';

/** Exit codes: 0 done, 1 failed (store, config, unknown key id, invalid hit), 2 usage (unknown command, flag or scope). */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A command line that cannot be run as given: printed with the usage text. */
export class UsageError extends ValidationError {}

/** Where a command writes. */
export interface CommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
}
