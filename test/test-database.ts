/**
 * The PostgreSQL the tests run against (TEST_DATABASE_URL, which .ci/run sets), or undefined: the one
 * place the tests read the environment (UPDATE_SCREENSHOTS too, below).
 */
const url = process.env.TEST_DATABASE_URL;
export const TEST_DATABASE_URL: string | undefined = url === undefined || url === '' ? undefined : url;

export const POSTGRES_SKIPPED = 'PostgreSQL tests skipped: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run them';

/** UPDATE_SCREENSHOTS=1: the dashboard's browser test writes its screenshots to docs/ui/ (else to a temporary directory). */
export const UPDATE_SCREENSHOTS: boolean = process.env.UPDATE_SCREENSHOTS === '1';
