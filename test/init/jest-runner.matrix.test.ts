import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureJest, INSTALL_TIMEOUT_MS } from '../jest/helpers.js';
import { TestSandbox } from '../support/processes.js';
import { expectQueuesAndReaps, initialisedFixture, leakingTest } from './queue-check.js';

let sandbox: TestSandbox;
afterEach(() => {
  expect(sandbox.cleanup()).toBe(0);
});

// Matrix tier: Jest is installed per version by test/jest/matrix/install.mjs, not by `npm ci`.
describe('a Jest config edited by init still loads in real Jest, queues and reaps', () => {
  it(
    'Jest 30: the 2-space ESM fixture after init waits for a held lock, then runs and its leftover is ended',
    async () => {
      const jest = await ensureJest('jest30');
      sandbox = new TestSandbox();
      const repo = await initialisedFixture(sandbox, 'jest-esm-2space');
      repo.write({ 'src/leak.test.cjs': leakingTest(repo.dir, 'jest-cjs') });
      await expectQueuesAndReaps(repo, () =>
        sandbox.start([jest.bin, '--ci', '--cacheDirectory', join(sandbox.dir, 'jest-cache')], {
          cwd: repo.dir,
          env: repo.env(),
          file: process.execPath,
        }),
      );
    },
    INSTALL_TIMEOUT_MS + 120_000,
  );
});
