import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execTree } from '../src/runner.js';
import { chooseHelper, HELPER_OVERRIDE_ENV } from '../src/subreaper.js';
import { buildDenySyscalls } from './fixtures/deny-syscalls.js';

/**
 * Which helper a run trusts: SEQ_TEST_SUBREAPER must name a binary that answers the handshake (anything
 * else is one error naming the variable, with nothing left running), and the runner turns every failure
 * the helper reports into a notice and the right exit code. Real binaries and processes throughout.
 */

const CORE = join(dirname(fileURLToPath(import.meta.url)), '..');
// The helper `npm run build` compiles with cc; every case here needs nothing more.
const NATIVE_HELPER = join(CORE, 'dist', 'seq-test-subreaper');

let dir: string;
let deny: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'seq-test-choice-'));
  deny = buildDenySyscalls(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Resolves once no `sleep <marker>` runs; a killed process takes a moment to die on a loaded machine. */
async function gone(marker: string): Promise<number[]> {
  for (let waited = 0; waited < 10_000 && running(marker).length > 0; waited += 20) await sleep(20);
  return running(marker);
}

/** Pids of live processes whose command line holds `marker`. */
function running(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8') === `sleep\0${marker}\0`) found.push(Number(name));
    } catch {}
  }
  return found;
}

describe.runIf(process.platform === 'linux')('SEQ_TEST_SUBREAPER', () => {
  const choose = (value: string) => () => chooseHelper({ [HELPER_OVERRIDE_ENV]: value });

  it('is used when it answers the handshake', () => {
    expect(chooseHelper({ [HELPER_OVERRIDE_ENV]: NATIVE_HELPER })).toMatchObject({
      path: NATIVE_HELPER,
      source: 'override',
    });
  });

  it('names the variable and the cause for every unusable value', () => {
    const notExecutable = join(dir, 'not-executable');
    copyFileSync(NATIVE_HELPER, notExecutable);
    chmodSync(notExecutable, 0o644);
    // The same binary claiming another machine in its ELF header (e_machine): what the kernel refuses.
    const foreign = join(dir, 'foreign-helper');
    const elf = readFileSync(NATIVE_HELPER);
    elf.writeUInt16LE(process.arch === 'x64' ? 183 : 62, 18);
    writeFileSync(foreign, elf, { mode: 0o755 });
    // Bytes the kernel cannot run: never started, or execvp() would hand them to /bin/sh.
    const plainFile = join(dir, 'plain-file');
    writeFileSync(plainFile, 'touch pwned\n', { mode: 0o755 });
    const folder = join(dir, 'folder');
    mkdirSync(folder, { recursive: true });
    const cases: [string, RegExp][] = [
      ['seq-test-subreaper', /is not an absolute path/],
      [join(dir, 'absent'), /does not exist/],
      [folder, /is not a file/],
      [notExecutable, /is not executable/],
      [foreign, /built for (aarch64|x86-64), but this machine is \w+ \(wrong architecture\)/],
      [plainFile, /is not a program for this machine \(neither an ELF file of this machine nor a #! script\)/],
      [script('fake', 'echo hello; exit 0'), /did not answer the handshake \(printed "hello", exited 0\)/],
      [script('old', 'echo "seq-test-subreaper 0 ready"'), /speaks helper protocol 0/],
    ];
    const before = new Set(readdirSync(dir));
    for (const [value, cause] of cases) {
      expect(choose(value)).toThrow(new RegExp(`^SEQ_TEST_SUBREAPER=${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `));
      expect(choose(value)).toThrow(cause);
    }
    // Nothing ran the bytes as shell commands (here, in the probe's directory, or in ours).
    expect(new Set(readdirSync(dir))).toEqual(before);
    for (const where of [process.cwd(), tmpdir()]) expect(existsSync(join(where, 'pwned'))).toBe(false);
  });

  it('leaves nothing running when a hostile binary starts something during the handshake', async () => {
    const marker = `${700000 + process.pid}`; // a sleep length no one else uses
    const hostile = script('hostile', `setsid sleep ${marker} </dev/null >/dev/null 2>&1 &\necho pwned`);
    expect(choose(hostile)).toThrow(/SEQ_TEST_SUBREAPER=.*did not answer the handshake/);
    expect(await gone(marker)).toEqual([]);
  });

  it('with a helper whose fork fails, the run exits 125 and says why', async () => {
    const wrapper = script('fork-fails', `exec ${deny} fork ${NATIVE_HELPER} "$@"`);
    const notices: string[] = [];
    const result = await execTree({
      command: ['sh', '-c', 'exit 0'],
      env: { ...process.env, [HELPER_OVERRIDE_ENV]: wrapper },
      onNotice: (line) => notices.push(line),
    });
    expect(result.exitCode).toBe(125);
    expect(notices).toContainEqual(
      expect.stringMatching(/could not start the command: fork failed \(errno 11 EAGAIN\)/),
    );
    expect(notices.join('\n')).not.toMatch(/lost track/);
  });

  it('with a helper that cannot become a subreaper, the run goes on, says so, and still ends a leftover', async () => {
    // The handshake runs unhindered; the run itself meets the failing prctl.
    const wrapper = script(
      'subreaper-fails',
      `[ "$1" = --handshake ] && exec ${NATIVE_HELPER} "$@"\nexec ${deny} subreaper ${NATIVE_HELPER} "$@"`,
    );
    const marker = `${800000 + process.pid}`; // a sleep length no one else uses
    const notices: string[] = [];
    const result = await execTree({
      command: ['sh', '-c', `setsid sleep ${marker} </dev/null >/dev/null 2>&1 & exit 4`],
      env: { ...process.env, [HELPER_OVERRIDE_ENV]: wrapper },
      lingerMs: 0,
      onNotice: (line) => notices.push(line),
    });
    expect(result.exitCode).toBe(4);
    expect(notices).toContainEqual(expect.stringMatching(/could not become a child subreaper \(errno 1 EPERM\)/));
    expect((result.attempts[0]?.reaped ?? []).map((p) => p.command).join('\n')).toContain(marker);
    expect(await gone(marker)).toEqual([]);
  });
});
