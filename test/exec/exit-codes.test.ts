import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { REPO, TestSandbox } from '../support/processes.js';

// Exit status: the command's own, 128+N for death by signal N, and seq-test's documented codes.
// These tests are independent and cheap, so they run concurrently, each with its own sandbox, cleaned up
// when that test finishes (the test context's onTestFinished: a file-wide afterEach would reach into the
// sandboxes of tests still running).

function sandbox(context: TestContext): TestSandbox {
  const created = new TestSandbox();
  context.onTestFinished(() => {
    created.cleanup();
  });
  return created;
}

describe.concurrent('seq-test exec exit status', () => {
  it.for([
    ['exit 0', 0],
    ['exit 1', 1],
    ['exit 3', 3],
    ['exit 255', 255],
    ['kill -KILL $$', 137],
    ['kill -TERM $$', 143],
  ] as const)('sh -c "%s" exits %i', async ([code, expected], context) => {
    const sb = sandbox(context);
    const result = await sb.run(['exec', '--', 'sh', '-c', code]);
    expect(result.code).toBe(expected);
    expect(result.stderr).toBe('');
    expect(sb.ours()).toEqual([]);
  });

  it('passes the status through without the subreaper helper too', async (context) => {
    const sb = sandbox(context);
    const env = { SEQ_TEST_NO_SUBREAPER: '1' };
    expect((await sb.run(['exec', '--', 'sh', '-c', 'exit 3'], { env })).code).toBe(3);
    expect((await sb.run(['exec', '--', 'sh', '-c', 'kill -KILL $$'], { env })).code).toBe(137);
  });

  it('exits 124 on --timeout and ends the command', async (context) => {
    const sb = sandbox(context);
    const result = await sb.run(['exec', '--timeout', '0.3', '--', 'sleep', '300']);
    expect(result.code).toBe(124);
    expect(result.stderr).toMatch(/^seq-test: timeout after 300 ms: sending SIGTERM to the whole tree$/m);
    expect(sb.ours()).toEqual([]);
  });

  it('exits 126 with one line when the command is not executable', async (context) => {
    const sb = sandbox(context);
    const file = join(sb.dir, 'not-executable.sh');
    writeFileSync(file, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const result = await sb.run(['exec', '--', './not-executable.sh']);
    expect(result.code).toBe(126);
    expect(result.stderr).toMatch(/^seq-test: error: command is not executable: \.\/not-executable\.sh .*\n$/);
    expect(result.stderr.split('\n')).toHaveLength(2);
  });

  it('exits 126 for a directory', async (context) => {
    const sb = sandbox(context);
    const result = await sb.run(['exec', '--', sb.dir]);
    expect(result.code).toBe(126);
    expect(result.stderr).toMatch(/^seq-test: error: command is not executable: .*\(a directory\)\n$/);
  });

  it('exits 127 with one line when the command is not found', async (context) => {
    const sb = sandbox(context);
    const result = await sb.run(['exec', '--', 'seq-test-no-such-command-xyz', '--flag']);
    expect(result.code).toBe(127);
    expect(result.stderr).toBe('seq-test: error: command not found: seq-test-no-such-command-xyz (searched PATH)\n');
    const missingPath = await sb.run(['exec', '--', './missing.sh']);
    expect(missingPath.code).toBe(127);
    expect(missingPath.stderr).toBe('seq-test: error: command not found: ./missing.sh\n');
  });

  it('prints its version', async (context) => {
    const sb = sandbox(context);
    const { version } = JSON.parse(readFileSync(join(REPO, 'packages', 'cli', 'package.json'), 'utf8'));
    const result = await sb.run(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${version}\n`);
  });

  it('shows help with examples for exec', async (context) => {
    const sb = sandbox(context);
    const result = await sb.run(['exec', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: seq-test exec [options] <command...>');
    expect(result.stdout).toContain('Examples:');
    expect(result.stdout).toMatch(/\$ seq-test exec --timeout \d+ .*-- /);
    for (const option of ['--timeout', '--kill-signal', '--grace', '--linger', '--wait-all', '--retry', '--json'])
      expect(result.stdout).toContain(option);
    expect(result.stderr).toBe('');
  });
});
