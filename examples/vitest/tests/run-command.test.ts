import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '@seq-test/vitest';
import { expect, test } from 'vitest';

test('waits for the whole tree, not only the main process', async () => {
  // The shell exits at once; the backgrounded subshell prints "done" 0.3 s later.
  const result = await runCommand('echo started; (sleep 0.3; echo done) &');
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe('started\ndone\n');
});

test("returns the command's own exit code and output", async () => {
  const result = await runCommand(['sh', '-c', 'echo to stderr >&2; exit 3']);
  expect(result.exitCode).toBe(3);
  expect(result.stderr).toBe('to stderr\n');
});

test('ends the whole tree on timeout (exit 124)', async () => {
  const result = await runCommand('sleep 30 & sleep 30', { timeoutMs: 300, graceMs: 200 });
  expect(result.timedOut).toBe(true);
  expect(result.exitCode).toBe(124);
});

test('calls run one at a time, in call order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'example-'));
  const log = join(dir, 'order');
  // Started together, but the second waits for the first (and its whole tree) to finish.
  await Promise.all([runCommand(`sleep 0.2; echo first >> '${log}'`), runCommand(`echo second >> '${log}'`)]);
  expect(readFileSync(log, 'utf8')).toBe('first\nsecond\n');
  rmSync(dir, { recursive: true, force: true });
});
