import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureJest, INSTALL_TIMEOUT_MS, type JestInstall, VERSIONS } from '../jest/helpers.js';
import { REPO, TestSandbox, waitFor } from '../support/processes.js';
import {
  autoCases,
  FIXTURE_TEST_BODY,
  fixtureEnv,
  fixtureProject,
  inside,
  passed,
  type RunnerUnderTest,
  startHeld,
} from './integration-auto.js';

// The fixture test file (test/memory/integration-auto.ts), with Jest's globals.
const TEST_FILE = `const { appendFileSync, existsSync } = require('node:fs');
const { join } = require('node:path');

${FIXTURE_TEST_BODY}`;

const CONFIG = `const { withSeqTest } = require(${JSON.stringify(join(REPO, 'integrations', 'jest'))});

module.exports = withSeqTest({ testEnvironment: 'node', testMatch: ['<rootDir>/mem.test.js'] });
`;

// Jest (29 and 30, each installed by npm ci in test/jest/matrix) with @seq-test/jest reading "slots": "auto"
// from the project's package.json. In the matrix tier: Jest is not part of the root install.
describe.each(VERSIONS)('@seq-test/jest in "slots": "auto" mode, %s', (name) => {
  let jest: JestInstall;
  beforeAll(async () => {
    jest = await ensureJest(name);
  }, INSTALL_TIMEOUT_MS);

  const runner: RunnerUnderTest = {
    name: 'jest',
    prepare(sandbox) {
      const project = fixtureProject(sandbox, (dir, value) =>
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'mem', seqTest: value })),
      );
      writeFileSync(join(project.dir, 'jest.config.cjs'), CONFIG);
      writeFileSync(join(project.dir, 'mem.test.js'), TEST_FILE);
      return project;
    },
    start(sandbox, project, run, key) {
      return sandbox.start(
        [jest.bin, '--config', 'jest.config.cjs', '--cacheDirectory', join(sandbox.dir, 'jest-cache')],
        {
          file: process.execPath,
          cwd: project.dir,
          env: { ...fixtureEnv(project, run, key), CI: 'true', NO_COLOR: '1', FORCE_COLOR: '0' },
        },
      );
    },
    expected(project) {
      const dir = realpathSync(project.dir);
      return {
        cwd: dir,
        config: join(dir, 'jest.config.cjs'),
        argv: (argv) => argv[0] === jest.bin && argv.slice(1, 3).join(' ') === '--config jest.config.cjs',
      };
    },
  };
  autoCases(runner);

  // Not auto mode, but the same settings reading: Jest's early wait (while its config is evaluated) used to
  // queue with one slot whatever the project said.
  it('jest: with "slots": 2, two runs hold at the same time', async () => {
    const sandbox = new TestSandbox();
    const project = runner.prepare(sandbox);
    try {
      mkdirSync(project.gates, { recursive: true });
      project.settings({ slots: 2 });
      const key = `mem-jest-${sandbox.marker}`;
      const a = await startHeld(sandbox, runner, project, key);
      const b = runner.start(sandbox, project, 'B', key);
      await inside(project, 'B', b); // while A is held at its gate
      writeFileSync(join(project.gates, 'open'), '');
      await passed(a, 'run A');
      await passed(b, 'run B');
    } finally {
      writeFileSync(join(project.gates, 'open'), '');
      // A worker may still be exiting when Jest's pipes close: give it time (bounded), then nothing is left.
      await waitFor(() => sandbox.ours().length === 0, 60_000, 'no process left').catch(() => {});
      expect(sandbox.cleanup()).toBe(0);
    }
  });
});
