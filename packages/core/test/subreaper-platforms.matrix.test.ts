import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeHelperSuite, HELPERS_DIR, type HelperUnderTest, onPath } from './support/helper-suite.js';

// The static helpers of the platform packages (built by `npm run build` with musl-gcc and
// aarch64-linux-gnu-gcc): this machine's natively, the arm64 one under qemu-user on x64. Matrix tier:
// they need the cross compilers and qemu-user (.ci/run installs them).
const qemu = onPath('qemu-aarch64');
const binary = (arch: string) => join(HELPERS_DIR, `linux-${arch}`, 'seq-test-subreaper');
const helpers: HelperUnderTest[] = [
  {
    name: `linux-${process.arch} package (static)`,
    binary: binary(process.arch),
    argv: [binary(process.arch)],
    emulated: false,
  },
];
if (process.arch === 'x64')
  helpers.push({
    name: 'linux-arm64 package under qemu-user',
    binary: binary('arm64'),
    argv: [qemu ?? 'qemu-aarch64', binary('arm64')],
    emulated: true,
  });

it.runIf(process.platform === 'linux' && process.arch === 'x64')('qemu-user is installed', () => {
  expect(qemu, 'qemu-aarch64 (Debian: apt-get install qemu-user)').toBeDefined();
});

describeHelperSuite(
  'the subreaper helper of each platform package',
  helpers,
  'npm run build with musl-tools and gcc-aarch64-linux-gnu installed',
);
