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

async function until(probe: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.runIf(process.platform === 'linux' && subreaperPath() !== undefined)('prepareExec', () => {
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
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(existsSync(stamp)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    await expect(prepared.run()).rejects.toThrow(/already cancelled/);
  });
});
