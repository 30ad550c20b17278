import { existsSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  declareEndUserChecks,
  endUserInstall,
  endUserManifest,
  HELPER_PACKAGE,
  installPackageManager,
  runInstall,
  tarballOverrides,
} from './support/end-user.js';

/**
 * The end-user checks on an install made by Yarn 4 with Plug'n'Play, its default: no node_modules at all;
 * packages stay in zip archives and are resolved through .pnp.cjs, so a binary can only run from a package
 * that Yarn "unplugs" onto disk (the helper packages say preferUnplugged). Yarn is installed from the
 * registry (@yarnpkg/cli-dist, pinned) into a temporary prefix; the project's commands run as `yarn <bin>`.
 *
 * The packages are not on the registry yet: `resolutions` point every @seq-test package at its tarball.
 * Yarn 4 then fails to fetch the other machine's helper ("ENOENT … .zip": with a `file:` resolution it
 * skips fetching the incompatible optional package but still looks for it), so supportedArchitectures adds
 * that cpu and both helpers are installed; core must still pick this machine's. A registry install needs
 * neither. (Yarn 1 cannot install the tarballs at all: a resolution makes the other machine's optional
 * helper required, and it stops on its cpu: yarnpkg/yarn#2051.) Cache and global folder stay in the
 * temporary directory.
 */

const YARN_VERSION = '4.18.1';

describe.runIf(process.platform === 'linux')("installed from packed tarballs with Yarn 4 (Plug'n'Play)", () => {
  const yarnPrefix = (root: string) => join(root, 'yarn');
  const install = endUserInstall({
    name: 'yarn',
    launcher: (root) => join(yarnPrefix(root), 'bin', 'yarn'),
    install: ({ root, tarballs, project }) => {
      const bin = installPackageManager(`@yarnpkg/cli-dist@${YARN_VERSION}`, yarnPrefix(root), project.env());
      writeFileSync(
        join(project.dir, 'package.json'),
        endUserManifest(tarballs, { resolutions: tarballOverrides(tarballs) }),
      );
      // JSON is valid YAML. Immutable installs are Yarn's default under CI=1, which project.env() sets.
      writeFileSync(
        join(project.dir, '.yarnrc.yml'),
        JSON.stringify({
          enableTelemetry: false,
          enableGlobalCache: false,
          enableImmutableInstalls: false,
          cacheFolder: join(root, 'yarn-cache'),
          globalFolder: join(root, 'yarn-global'),
          supportedArchitectures: { os: ['current'], cpu: ['current', 'x64', 'arm64'] },
        }),
      );
      runInstall(project, join(bin, 'yarn'), ['install']);
    },
  });

  it("Plug'n'Play: no node_modules, and doctor finds this machine's helper unplugged onto disk", () => {
    const { project } = install();
    expect(existsSync(join(project.dir, 'node_modules'))).toBe(false);
    expect(existsSync(join(project.dir, '.pnp.cjs'))).toBe(true);
    const doctor = project.doctor();
    expect(doctor.helper).toMatchObject({ source: 'platform-package', reason: `from ${HELPER_PACKAGE}` });
    const helper = doctor.helper.path as string;
    expect(helper.startsWith(`${join(project.dir, '.yarn', 'unplugged')}${sep}`)).toBe(true);
    expect(helper.endsWith(`${sep}${join(...HELPER_PACKAGE.split('/'), 'seq-test-subreaper')}`)).toBe(true);
    expect(doctor.findings.filter((f) => f.check.startsWith('helper.'))).toEqual([]);
  });

  declareEndUserChecks(() => install().project);
});
