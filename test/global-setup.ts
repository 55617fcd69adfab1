import type { TestProject } from 'vitest/node';
import { POSTGRES_SKIPPED, TEST_DATABASE_URL } from './test-database.ts';

/**
 * Runs once per `vitest run`, before any test file. Vitest's default reporter does not list skipped
 * suites, so the PostgreSQL half of the store tests (test/engines.ts) would be skipped unseen: the
 * notice is printed here, once, where the default output shows it.
 */
export default function setup(project: TestProject): void {
  if (TEST_DATABASE_URL === undefined) project.vitest.logger.log(`\n  ${POSTGRES_SKIPPED}\n`);
}
