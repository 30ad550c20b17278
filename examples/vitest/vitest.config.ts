import { seqTest } from '@seq-test/vitest';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [seqTest()],
  test: {
    include: ['tests/**/*.test.ts'],
    // Only records when each test file ran (for the repo's end-to-end tests); a no-op otherwise.
    setupFiles: ['tests/stamps.ts'],
    testTimeout: 30_000,
  },
});
