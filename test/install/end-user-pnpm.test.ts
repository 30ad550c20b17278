import { existsSync, mkdirSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  declareEndUserChecks,
  endUserInstall,
  endUserManifest,
  HELPER_PACKAGE,
  installPackageManager,
  OTHER_ARCH,
  runInstall,
  tarballOverrides,
} from './support/end-user.js';

/**
 * The end-user checks on an install made by pnpm: pnpm itself installed from the registry into a temporary
 * prefix (pinned, never globally), the project depending on seq-test, @seq-test/vitest and @seq-test/jest
 * only, as the README says. pnpm's layout is what can break the helper's resolution: every package lives in
 * the .pnpm virtual store and sees only its own dependencies (no hoisting of @seq-test/core or the helper to
 * the project's node_modules), and the optional platform packages are filtered by os/cpu. So besides the
 * shared checks, doctor must name the helper from @seq-test/helper-linux-<arch> inside that store.
 *
 * The packages are not on the registry yet: the project's pnpm-workspace.yaml overrides every @seq-test
 * package with its tarball, which is how pnpm lets a project's own settings point a transitive dependency at
 * a local file. Store, cache and state go into the temporary directory, so nothing is left behind.
 */

const PNPM_VERSION = '12.25.1';

describe.runIf(process.platform === 'linux')('installed from packed tarballs with pnpm', () => {
  const install = endUserInstall({
    name: 'pnpm',
    install: ({ root, tarballs, project }) => {
      const pnpm = join(installPackageManager(`pnpm@${PNPM_VERSION}`, join(root, 'pnpm'), project.env()), 'pnpm');
      writeFileSync(join(project.dir, 'package.json'), endUserManifest(tarballs));
      // YAML is a superset of JSON. strictDepBuilds: false, as a user who has not approved any build scripts
      // (pnpm runs none by default; without it an install fails on the first one, @parcel/watcher of Vitest's
      // tree). seq-test's own packages have no install scripts.
      writeFileSync(
        join(project.dir, 'pnpm-workspace.yaml'),
        JSON.stringify({
          storeDir: join(root, 'pnpm-store'),
          cacheDir: join(root, 'pnpm-cache'),
          strictDepBuilds: false,
          overrides: tarballOverrides(tarballs),
        }),
      );
      // The state dir cannot be set per project. pnpm keeps its store locks in XDG_RUNTIME_DIR when only its
      // user may write there, else in /tmp, where they would be left behind.
      const runtime = join(root, 'runtime');
      mkdirSync(runtime, { mode: 0o700 });
      runInstall(
        project,
        pnpm,
        ['install', '--reporter=append-only'],
        project.env({ PNPM_CONFIG_STATE_DIR: join(root, 'pnpm-state'), XDG_RUNTIME_DIR: runtime }),
      );
    },
  });

  it('strict layout: core and the helper are not hoisted, and doctor finds the helper in the virtual store', () => {
    const { project } = install();
    const modules = join(project.dir, 'node_modules');
    expect(existsSync(join(modules, '@seq-test', 'core'))).toBe(false);
    expect(existsSync(join(modules, ...HELPER_PACKAGE.split('/')))).toBe(false);
    const store = readdirSync(join(modules, '.pnpm'));
    expect(store.filter((entry) => entry.startsWith(HELPER_PACKAGE.replace('/', '+')))).toHaveLength(1);
    expect(store.filter((entry) => entry.includes(`helper-linux-${OTHER_ARCH}`))).toEqual([]);
    const doctor = project.doctor();
    expect(doctor.helper).toMatchObject({ source: 'platform-package', reason: `from ${HELPER_PACKAGE}` });
    const helper = doctor.helper.path as string;
    expect(helper.endsWith(`${sep}${join(...HELPER_PACKAGE.split('/'), 'seq-test-subreaper')}`)).toBe(true);
    expect(realpathSync(helper).startsWith(`${realpathSync(join(modules, '.pnpm'))}${sep}`)).toBe(true);
    expect(doctor.findings.filter((f) => f.check.startsWith('helper.'))).toEqual([]);
  });

  declareEndUserChecks(() => install().project);
});
