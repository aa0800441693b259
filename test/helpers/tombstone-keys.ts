import { tombstoneKeys } from '../../src/rights/tombstone-keys.ts';

/** The tombstone keys tests erase with: a fixed secret, no file. */
export const TEST_TOMBSTONE_KEYS = tombstoneKeys({
  secret: 'test-tombstone-secret-0123456789abcdef',
  previousSecrets: [],
  secretFile: '/nonexistent/tombstone.secret',
});
