import { describe, it } from 'vitest';
import { DEFAULT_PG_URL, freshPostgres, postgresAdminUrl } from './helpers/db.js';
import { runStoreConformance } from './store.conformance.js';

// Throws when HERALD_TEST_DATABASE_URL is set but unreachable; null when nothing is configured
// and the local default does not answer.
const admin = await postgresAdminUrl();
if (admin) {
  runStoreConformance('postgres', () => freshPostgres(admin), { multiProcess: true });
} else {
  const why =
    process.env.HERALD_TEST_DATABASE_URL === 'none'
      ? 'turned off by HERALD_TEST_DATABASE_URL=none'
      : `PostgreSQL not reachable at ${DEFAULT_PG_URL}; set HERALD_TEST_DATABASE_URL to run these`;
  console.warn(`\n!!! Store conformance on PostgreSQL SKIPPED: ${why}\n`);
  describe.skip(`Store conformance: postgres — SKIPPED (${why})`, () => {
    it('needs a PostgreSQL server', () => {});
  });
}
