import { defineConfig } from 'vitest/config';

// The project's own tests, in tiers chosen by path alone (README, "Set up and test"):
//   default (`npm test`): packages/*/test, integrations/*/test (projects core, cli, integrations) and test/**
//     (projects e2e and e2e-serial): needs only what `npm ci` installs, plus whatever Python is on PATH;
//     offline.
//   matrix (`npm run test:matrix`): any file whose name ends in matrix.test.ts, everything under test/jest/
//     (Jest is not installed by `npm ci`: each version is its own fixture) and test/install/ (every package
//     packed and installed into a fresh project: ~2 min): other runner versions, other Nodes, every Python,
//     cross-built helpers, and the slower variants of a default-tier file.
//   reliability (`npm run test:reliability`): test/reliability/run.mjs, not a Vitest file.
// Files under a fixtures/ directory are what a test runs, never tests of this repo.
//
// Two files at a time (2 workers: this machine has 2 cores, and an end-to-end file mostly waits on the
// processes it starts): the unit projects and e2e. Each test there has its own sandbox (state dir, key,
// marker) and ends only what it started. The files in SERIAL run alone, one after another, after the rest.
// They were put there because they acted machine-wide: `seq-test reap` ended the leftovers of every dead run
// of this user (those another file was looking at too), and recycled-pid steers the kernel's pid counter,
// which the tracker of a run beside it reads. Neither reaches past its own sandbox any more where the
// machine allows it: `reap`, `status` and `doctor` answer for the runs of their own state dir only (each
// sandbox has its own: test/lock/reap-scope.test.ts), and recycled-pid runs in a pid namespace of its own
// when it can steer pids at all (both need CAP_SYS_ADMIN); without one it steers the machine's counter, so
// it stays here. The reap files could join the parallel group; they stay until that is tried under load.
const MATRIX = [
  'test/**/*matrix.test.ts',
  'packages/*/test/**/*matrix.test.ts',
  'integrations/*/test/**/*matrix.test.ts',
  'test/jest/**/*.test.ts',
  'test/install/**/*.test.ts',
];
const SERIAL = [
  'test/lock/faults.test.ts',
  'test/lock/hardening.test.ts',
  'test/lock/inherited-token.test.ts',
  'test/init/doctor.test.ts',
  'test/exec/recycled-pid.test.ts',
];
const NOT_MATRIX = ['**/node_modules/**', '**/fixtures/**', '**/*matrix.test.ts'];
const GLOBAL_SETUP = ['test/support/global-setup.ts'];
/** Files at once in the parallel group (the unit projects and e2e: one group, so one figure). */
const WORKERS = 2;

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'core',
          include: ['packages/core/test/**/*.test.ts'],
          exclude: NOT_MATRIX,
          globalSetup: GLOBAL_SETUP,
          maxWorkers: WORKERS,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'cli',
          include: ['packages/cli/test/**/*.test.ts'],
          exclude: NOT_MATRIX,
          maxWorkers: WORKERS,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integrations',
          include: ['integrations/*/test/**/*.test.ts'],
          exclude: NOT_MATRIX,
          maxWorkers: WORKERS,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          exclude: [...NOT_MATRIX, ...MATRIX, ...SERIAL],
          globalSetup: GLOBAL_SETUP,
          maxWorkers: WORKERS,
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e-serial',
          include: SERIAL,
          exclude: NOT_MATRIX,
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
          exclude: ['**/node_modules/**', '**/fixtures/**'],
          globalSetup: GLOBAL_SETUP,
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
