import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, TestSandbox } from '../support/processes.js';
import { integrationAvailable } from './helpers.js';
import { expectQueuesAndReaps, initialisedFixture, leakingTest } from './queue-check.js';

let sandbox: TestSandbox;
afterEach(() => {
  expect(sandbox.cleanup()).toBe(0);
});

describe('configs edited by init still load in the real runner, queue and reap', () => {
  it.skipIf(!integrationAvailable('@seq-test/vitest'))(
    'Vitest: the tab-indented fixture after init waits for a held lock, then runs and its leftover is ended',
    async () => {
      sandbox = new TestSandbox();
      const repo = await initialisedFixture(sandbox, 'vitest-tabs');
      repo.write({ 'test/leak.test.ts': leakingTest(repo.dir, 'vitest') });
      await expectQueuesAndReaps(repo, () =>
        sandbox.start([join(REPO, 'node_modules', 'vitest', 'vitest.mjs'), 'run'], {
          cwd: repo.dir,
          env: repo.env(),
          file: process.execPath,
        }),
      );
    },
    180_000,
  );
});
