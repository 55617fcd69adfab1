import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'templates/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Prints, once, that the PostgreSQL tests are skipped when TEST_DATABASE_URL is unset.
    globalSetup: ['test/global-setup.ts'],
  },
});
