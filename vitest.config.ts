import { defineConfig } from 'vitest/config';

// The project's own tests, in tiers chosen by path alone (README, "Set up and test"):
//   default (`npm test`): packages/*/test, integrations/*/test (projects core, cli, integrations) and test/**
//     (project e2e): needs only what `npm ci` installs, plus whatever Python is on PATH; offline.
//   matrix (`npm run test:matrix`): any file whose name ends in matrix.test.ts, everything under test/jest/
//     (Jest is not installed by `npm ci`: each version is its own fixture) and test/install/ (every package
//     packed and installed into a fresh project: ~2 min): other runner versions, other Nodes, every Python,
//     cross-built helpers.
//   reliability (`npm run test:reliability`): test/reliability/run.mjs, not a Vitest file.
// They spawn real processes, so e2e files run one at a time (fileParallelism off) and each test cleans up
// what it started, by pid.
const MATRIX = [
  'test/**/*matrix.test.ts',
  'packages/*/test/**/*matrix.test.ts',
  'integrations/*/test/**/*matrix.test.ts',
  'test/jest/**/*.test.ts',
  'test/install/**/*.test.ts',
];
const NOT_MATRIX = ['**/node_modules/**', '**/*matrix.test.ts'];
const GLOBAL_SETUP = ['test/support/global-setup.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'core',
          include: ['packages/core/test/**/*.test.ts'],
          exclude: NOT_MATRIX,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'cli',
          include: ['packages/cli/test/**/*.test.ts'],
          exclude: NOT_MATRIX,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integrations',
          include: ['integrations/*/test/**/*.test.ts'],
          exclude: NOT_MATRIX,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          exclude: ['**/node_modules/**', ...MATRIX],
          globalSetup: GLOBAL_SETUP,
          testTimeout: 120_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'matrix',
          include: MATRIX,
          exclude: ['**/node_modules/**'],
          globalSetup: GLOBAL_SETUP,
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
