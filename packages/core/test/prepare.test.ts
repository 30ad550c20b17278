import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { processTable } from '../src/proc/index.js';
import { prepareExec } from '../src/runner.js';
import { subreaperPath } from '../src/subreaper.js';

// A prepared run starts its subreaper helper at once, parked: the command itself must not start before
// run(), and cancel() must leave nothing behind. Real processes; the helper is built by `npm run build`.
const table = processTable();
const helperChildren = () =>
  (table.children?.(process.pid) ?? []).filter((pid) => table.get(pid)?.comm.startsWith('seq-test-subrea'));

// Generous: a process exiting on a loaded 2-core machine; this waits for the event, not for the time.
async function until(probe: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// The helper is optional (built only where there is a C compiler), but where one is, a missing helper is a
// broken build, not a reason to skip; without a compiler the skip is said in one line, never silent.
const CC = process.env.CC || 'cc';
const compiler = process.platform === 'linux' && spawnSync(CC, ['--version'], { stdio: 'ignore' }).status === 0;
const helper = subreaperPath();
if (process.platform === 'linux' && !compiler && !helper) {
  console.log(`SKIPPED: prepareExec with the subreaper helper: no C compiler (${CC}) to build it`);
}

describe.runIf(compiler)('the subreaper helper', () => {
  it('is built (npm run build) wherever there is a C compiler', () => {
    expect(helper, `${CC} works here but the helper is not built: run npm run build`).toBeDefined();
  });
});

describe.runIf(process.platform === 'linux' && helper !== undefined)('prepareExec', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'seq-test-prepare-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('parks the helper until run(): the command starts only then, and runs to its exit code', async () => {
    const before = new Set(helperChildren());
    const stamp = join(dir, 'started');
    const prepared = prepareExec({ command: ['sh', '-c', `echo yes > ${stamp}; exit 3`] });
    const [helper] = helperChildren().filter((pid) => !before.has(pid));
    expect(helper).toBeGreaterThan(0);
    // Absence can only be watched for a while: a window for a wrong implementation to show itself (a pass
    // does not depend on its length; the children check below is the exact one).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(existsSync(stamp)).toBe(false);
    expect(table.children?.(helper as number)).toEqual([]); // parked: nothing forked yet
    const result = await prepared.run();
    expect(result.exitCode).toBe(3);
    expect(readFileSync(stamp, 'utf8').trim()).toBe('yes');
    await until(() => !helperChildren().includes(helper as number), 'the helper to exit');
    await expect(prepared.run()).rejects.toThrow(/already started/);
  });

  it('cancel() ends the parked helper and never starts the command', async () => {
    const before = new Set(helperChildren());
    const stamp = join(dir, 'started');
    const prepared = prepareExec({ command: ['sh', '-c', `echo yes > ${stamp}`] });
    const [helper] = helperChildren().filter((pid) => !before.has(pid));
    expect(helper).toBeGreaterThan(0);
    prepared.cancel();
    prepared.cancel(); // twice is harmless
    await until(() => !helperChildren().includes(helper as number), 'the parked helper to end');
    // As above: a window for a command that should never start to show up anyway.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(existsSync(stamp)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    await expect(prepared.run()).rejects.toThrow(/already cancelled/);
  });
});
