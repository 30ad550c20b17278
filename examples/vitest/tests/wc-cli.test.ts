import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

const WC = fileURLToPath(new URL('../src/wc.mjs', import.meta.url));
const run = promisify(execFile);

test('counts the words of its arguments', async () => {
  const { stdout } = await run(process.execPath, [WC, 'to be or not to be']);
  expect(stdout).toBe('6\n');
});

test('counts the words of stdin', async () => {
  const child = spawn(process.execPath, [WC, '-'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stdin.end('one two three\nfour\n');
  const code = await new Promise((resolve) => child.on('close', resolve));
  expect(code).toBe(0);
  expect(out).toBe('4\n');
});

test('rejects an unknown option with exit 2', async () => {
  const failure = await run(process.execPath, [WC, '--bogus']).catch((error) => error);
  expect(failure.code).toBe(2);
  expect(failure.stderr).toContain('unknown option --bogus');
});
