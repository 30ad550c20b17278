import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  declareEndUserChecks,
  endUserInstall,
  escapeeEnded,
  HELPER_PACKAGE,
  JEST_VERSION,
  OTHER_ARCH,
  REPO,
  runInstall,
  VITEST_VERSION,
} from './support/end-user.js';

/**
 * seq-test as a user gets it: every package packed with `npm pack`, the tarballs installed with npm into a
 * fresh project outside this repository (with Vitest and Jest from the registry), and there `seq-test run`,
 * `seq-test exec`, `seq-test init --pytest`, a Vitest run with the plugin and a Jest run with the wrapper,
 * each checked for its real effect (queueing, reaping, the files written). Then the same with the platform helper broken in each way a machine can
 * break it: the command still runs, one warning, leftovers still ended, doctor names the problem.
 * end-user-pnpm.test.ts and end-user-yarn.test.ts run the same checks on installs by pnpm and yarn.
 *
 * Slow (packing, and an npm install that may reach the registry): a minute or more; see the README tiers.
 */

/** The helper's C sources: every .c file in packages/core/native (one binary, as native/build.mjs builds it). */
const NATIVE = join(REPO, 'packages', 'core', 'native');
const HELPER_SOURCES = readdirSync(NATIVE)
  .filter((file) => file.endsWith('.c'))
  .map((file) => join(NATIVE, file));

let helperBinary: string;
let pristineHelper: string;

describe.runIf(process.platform === 'linux')('installed from packed tarballs with npm, as a user would', () => {
  const install = endUserInstall({
    name: 'npm',
    install: ({ root, tarballs, project }) => {
      const ours = Object.entries(tarballs)
        .filter(([name]) => name !== `@seq-test/helper-linux-${OTHER_ARCH}`)
        .map(([, file]) => file);
      writeFileSync(
        join(project.dir, 'package.json'),
        JSON.stringify({ name: 'end-user-project', private: true, type: 'module', version: '1.0.0' }, null, 2),
      );
      runInstall(project, 'npm', [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        ...ours,
        `vitest@${VITEST_VERSION}`,
        `jest@${JEST_VERSION}`,
      ]);
      helperBinary = join(project.dir, 'node_modules', ...HELPER_PACKAGE.split('/'), 'seq-test-subreaper');
      pristineHelper = join(root, 'pristine-helper');
      copyFileSync(helperBinary, pristineHelper);
    },
  });

  it('installs the helper package for this machine, and core lists every platform', () => {
    const { project } = install();
    const core = JSON.parse(
      readFileSync(join(project.dir, 'node_modules', '@seq-test', 'core', 'package.json'), 'utf8'),
    );
    expect(Object.keys(core.optionalDependencies).sort()).toEqual([
      '@seq-test/helper-linux-arm64',
      '@seq-test/helper-linux-x64',
    ]);
    expect(existsSync(helperBinary)).toBe(true);
    expect(existsSync(join(project.dir, 'node_modules', '@seq-test', `helper-linux-${OTHER_ARCH}`))).toBe(false);
    expect(readdirSync(join(project.dir, 'node_modules', '@seq-test', 'core', 'dist'))).not.toContain(
      'seq-test-subreaper',
    );
    expect(project.doctor().helper).toMatchObject({ path: helperBinary, source: 'platform-package' });
  });

  it('ships every C source of the helper, so that the from-source build works where no platform package does', () => {
    const { project } = install();
    const shipped = readdirSync(join(project.dir, 'node_modules', '@seq-test', 'core', 'native'));
    expect(shipped.filter((file) => file.endsWith('.c')).sort()).toEqual(
      HELPER_SOURCES.map((file) => basename(file)).sort(),
    );
  });

  declareEndUserChecks(() => install().project);

  describe('with the platform helper broken', () => {
    const breakages: { name: string; cause: RegExp; breakIt: () => void }[] = [
      {
        name: 'wrong architecture',
        cause: /is built for (aarch64|x86-64), but this machine is \w+ \(wrong architecture\)/,
        breakIt: () =>
          copyFileSync(join(REPO, 'packages', 'helpers', `linux-${OTHER_ARCH}`, 'seq-test-subreaper'), helperBinary),
      },
      {
        name: 'missing loader',
        cause: /needs the loader \/lib\/ld-seq-test-missing\.so\.1, which this system does not have/,
        breakIt: () =>
          execFileSync('cc', [
            '-O2',
            '-Wl,--dynamic-linker=/lib/ld-seq-test-missing.so.1',
            '-o',
            helperBinary,
            ...HELPER_SOURCES,
          ]),
      },
      { name: 'not executable', cause: /is not executable/, breakIt: () => chmodSync(helperBinary, 0o644) },
      { name: 'absent', cause: /does not exist/, breakIt: () => rmSync(helperBinary) },
      {
        name: 'a fake binary that fails the handshake',
        cause: /did not answer the handshake \(printed "hello", exited 0\)/,
        breakIt: () => {
          rmSync(helperBinary);
          writeFileSync(helperBinary, '#!/bin/sh\necho hello\n');
          chmodSync(helperBinary, 0o755);
        },
      },
    ];

    it.each(breakages)(
      '$name: the command runs, one warning, the escapee still ended, doctor names it',
      async ({ cause, breakIt }) => {
        const { project } = install();
        try {
          breakIt(); // inside: a breakage that fails half-way must not leave the next case a broken helper
          const { result, escapee, sleepFor } = project.execEscapee('broken');
          expect(result.status, result.stderr).toBe(3);
          const warnings = result.stderr.split('\n').filter((line) => /warning/.test(line));
          expect(warnings).toHaveLength(1);
          expect(warnings[0]).toMatch(
            /^seq-test: warning: running without the subreaper helper: the helper from @seq-test\/helper-linux-/,
          );
          expect(warnings[0]).toMatch(cause);
          expect(warnings[0]).toMatch(/Fix: /);
          // The setsid'd escapee keeps the run's token: the token layer ends it without the helper.
          expect(await escapeeEnded(escapee, sleepFor)).toBe(true);
          const doctor = project.doctor();
          expect(doctor.helper.path).toBeNull();
          expect(doctor.findings).toContainEqual(
            expect.objectContaining({
              check: 'helper.unusable',
              severity: 'warning',
              message: expect.stringMatching(cause),
            }),
          );
        } finally {
          rmSync(helperBinary, { force: true });
          copyFileSync(pristineHelper, helperBinary);
          chmodSync(helperBinary, 0o755);
        }
      },
    );
  });
});
