import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELPERS_DIR, onPath } from './support/helper-suite.js';

/**
 * The linux-arm64 helper in a real arm64 kernel. Under qemu-user (subreaper-platforms.matrix.test.ts)
 * prctl(PR_SET_CHILD_SUBREAPER) answers EINVAL, so adoption cannot be tested there; here qemu-system-aarch64
 * boots Debian's arm64 kernel with an initramfs of two files: the helper, and a static /init
 * (fixtures/arm64-vm-init.c) that runs the handshake, report, park and adoption checks as PID 1, prints one
 * line per check and powers the machine off. A second boot, with a helper built to pretend that the prctl
 * worked, shows that the adoption check catches a helper that is no subreaper. Matrix tier: it needs qemu-system-arm,
 * debian-installer-12-netboot-arm64 (the kernel) and gcc-aarch64-linux-gnu (.ci/run installs them);
 * without them it is skipped with one line saying what is missing. About 5 s a boot on an idle 2-core host (full emulation); the bounds allow minutes.
 */

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'arm64-vm-init.c');
const HELPER = join(HELPERS_DIR, 'linux-arm64', 'seq-test-subreaper');
// The helper's sources: every .c file of core's native/ (one binary), as native/build.mjs builds it.
const NATIVE_DIR = join(HELPERS_DIR, '..', 'core', 'native');
const SOURCES = readdirSync(NATIVE_DIR)
  .filter((file) => file.endsWith('.c'))
  .map((file) => join(NATIVE_DIR, file));
/** Where Debian's debian-installer-<n>-netboot-arm64 package (architecture all) puts its kernel. */
const INSTALLER_IMAGES = '/usr/lib/debian-installer/images';
/** Boot, four checks and power-off under full emulation on a loaded 2-core host: seconds to a few minutes. */
const BOOT_TIMEOUT_MS = 600_000;

function arm64Kernel(): string | undefined {
  const chosen = process.env.SEQ_TEST_ARM64_KERNEL;
  if (chosen) return chosen;
  if (!existsSync(INSTALLER_IMAGES)) return undefined;
  for (const release of readdirSync(INSTALLER_IMAGES).sort().reverse()) {
    const kernel = join(INSTALLER_IMAGES, release, 'arm64', 'text', 'debian-installer', 'arm64', 'linux');
    if (existsSync(kernel)) return kernel;
  }
  return undefined;
}

const qemu = onPath('qemu-system-aarch64');
const cc = onPath('aarch64-linux-gnu-gcc');
const kernel = arm64Kernel();
const missing = [
  qemu ? undefined : 'qemu-system-aarch64 (apt-get install qemu-system-arm)',
  cc ? undefined : 'aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu)',
  kernel
    ? undefined
    : 'an arm64 kernel (apt-get install debian-installer-12-netboot-arm64, or SEQ_TEST_ARM64_KERNEL=<Image>)',
].filter((m) => m !== undefined);
const runnable = process.platform === 'linux' && missing.length === 0;
if (process.platform === 'linux' && !runnable)
  console.log(`SKIPPED: the arm64 helper in a virtual machine (adoption on arm64): no ${missing.join(', no ')}`);

interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  /** For a character device: [major, minor]. */
  device?: [number, number];
}

/** An initramfs: the kernel's "newc" cpio format, uncompressed. */
function cpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (length: number) => Buffer.alloc((4 - (length % 4)) % 4);
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  let inode = 1;
  for (const entry of [...entries, { name: 'TRAILER!!!', mode: 0 }] as CpioEntry[]) {
    const data = entry.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${entry.name}\0`);
    const fields = [inode++, entry.mode, 0, 0, 1, 0, data.length, 0, 0, ...(entry.device ?? [0, 0]), name.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join('')}`);
    parts.push(header, name, pad(header.length + name.length), data, pad(data.length));
  }
  return Buffer.concat(parts);
}

/** What the machine's /init printed (its "seq-test-vm: " lines, without the prefix), and how qemu ended. */
interface Boot {
  lines: string[];
  ended: { code: number | null; signal: NodeJS.Signals | null };
  seconds: number;
  /** The end of the console, for failure messages. */
  tail: string;
}

/** Boots the arm64 kernel with /init and `helper` in its initramfs, until /init powers the machine off. */
async function boot(scratch: string, init: string, helper: string): Promise<Boot> {
  const initramfs = join(scratch, `initramfs-${Math.random().toString(16).slice(2)}.cpio`);
  writeFileSync(
    initramfs,
    cpio([
      { name: 'dev', mode: 0o40755 },
      { name: 'dev/console', mode: 0o20600, device: [5, 1] }, // init's stdout: the serial console
      { name: 'proc', mode: 0o40755 },
      { name: 'init', mode: 0o100755, data: readFileSync(init) },
      { name: 'seq-test-subreaper', mode: 0o100755, data: readFileSync(helper) },
    ]),
  );
  const began = Date.now();
  const machine = spawn(
    qemu as string,
    [
      ...['-M', 'virt', '-cpu', 'cortex-a57', '-m', '512', '-smp', '1'],
      // -nic none: no network device, so no option ROM to load (ipxe-qemu is only a recommendation).
      ...['-nographic', '-no-reboot', '-nic', 'none', '-kernel', kernel as string, '-initrd', initramfs],
      ...['-append', 'console=ttyAMA0 panic=-1 quiet'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  machine.stdout.on('data', collect);
  machine.stderr.on('data', collect);
  // The machine powers itself off; the bound only catches a hang (then we end the qemu we started).
  const timer = setTimeout(() => machine.kill('SIGKILL'), BOOT_TIMEOUT_MS);
  const ended = await new Promise<Boot['ended']>((resolve) =>
    machine.once('exit', (code, signal) => resolve({ code, signal })),
  );
  clearTimeout(timer);
  const lines = output
    .replace(/\r/g, '')
    .split('\n')
    .filter((l) => l.startsWith('seq-test-vm: '))
    .map((l) => l.slice('seq-test-vm: '.length));
  return { lines, ended, seconds: (Date.now() - began) / 1000, tail: output.slice(-3000) };
}

const CHECKS = ['handshake', 'report', 'park', 'adoption'];
const verdict = (run: Boot, name: string) => run.lines.find((l) => l.startsWith(`check ${name} `));

describe.runIf(runnable)('the linux-arm64 helper in an arm64 virtual machine', () => {
  let scratch: string;
  let init: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'seq-test-arm64-vm-'));
    init = join(scratch, 'init');
    execFileSync(cc as string, ['-O2', '-Wall', '-static', '-o', init, FIXTURE], { stdio: 'inherit' });
  });
  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it(
    'answers the handshake, reports, parks, and adopts and reaps an orphan as child subreaper',
    async () => {
      expect(existsSync(HELPER), `${HELPER} (npm run build with gcc-aarch64-linux-gnu installed)`).toBe(true);
      const run = await boot(scratch, init, HELPER);
      process.stdout.write(
        `arm64 VM: ${run.lines[0] ?? 'did not boot'}; booted, checked and powered off in ${run.seconds.toFixed(1)} s\n`,
      );
      expect(run.ended, `qemu ended; console:\n${run.tail}`).toEqual({ code: 0, signal: null });
      expect(run.lines[0], run.tail).toMatch(/^booted aarch64 /);
      for (const name of CHECKS) expect(verdict(run, name), run.tail).toBe(`check ${name} ok`);
      expect(run.lines.at(-1), run.tail).toBe('result pass');
    },
    BOOT_TIMEOUT_MS + 60_000,
  );

  it(
    'catches a helper that only pretends to be a subreaper (its orphan goes to init)',
    async () => {
      // The helper's own source, with prctl(PR_SET_CHILD_SUBREAPER) answering 0 without doing anything.
      const pretend = join(scratch, 'pretend.h');
      writeFileSync(
        pretend,
        `#include <sys/prctl.h>
static int pretend_prctl(int option, unsigned long a, unsigned long b, unsigned long c, unsigned long d) {
  return option == PR_SET_CHILD_SUBREAPER ? 0 : prctl(option, a, b, c, d);
}
#define prctl pretend_prctl
`,
      );
      const helper = join(scratch, 'pretending-helper');
      execFileSync(cc as string, ['-O2', '-static', '-include', pretend, '-o', helper, ...SOURCES], {
        stdio: 'inherit',
      });
      const run = await boot(scratch, init, helper);
      expect(run.ended, `qemu ended; console:\n${run.tail}`).toEqual({ code: 0, signal: null });
      expect(verdict(run, 'handshake'), run.tail).toBe('check handshake ok');
      expect(verdict(run, 'adoption'), run.tail).toMatch(/^check adoption FAIL .* parent 1 \(helper \d+\)/);
      expect(run.lines.at(-1), run.tail).toBe('result fail');
    },
    BOOT_TIMEOUT_MS + 60_000,
  );
});
