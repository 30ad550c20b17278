import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';
import { pidFile, seen } from './helpers.js';

// Output is streamed live: the child prints a line and then blocks until the test has seen that line on
// seq-test's stdout (or stderr) and creates the file it waits for. Output held back until the child ends
// would deadlock, and the test would fail on its wait instead.

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

const waitForGo = (stream = '') =>
  `echo first-line ${stream}; while [ ! -e go ]; do sleep 0.02; done; echo second-line ${stream}`;

describe('seq-test exec streams output live', () => {
  it('stdout, when the command writes straight to our stdout (the default)', async () => {
    const started = sb.start(['exec', '--', 'sh', '-c', waitForGo()]);
    await seen(started, 'first-line');
    expect(started.output.stdout).not.toContain('second-line');
    writeFileSync(join(sb.dir, 'go'), '');
    const result = await started.finished;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('first-line\nsecond-line\n');
  });

  it('stdout and stderr, when seq-test reads them itself (--log)', async () => {
    const log = join(sb.dir, 'run.log');
    const started = sb.start(['exec', '--log', log, '--', 'sh', '-c', `${waitForGo()}; echo to-stderr >&2`]);
    await seen(started, 'first-line');
    // The log follows along too, line by line.
    await waitFor(() => readFileSync(log, 'utf8').includes('out| first-line\n'), 10_000, 'the line in the log');
    writeFileSync(join(sb.dir, 'go'), '');
    const result = await started.finished;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('first-line\nsecond-line\n');
    expect(result.stderr).toBe('to-stderr\n');
  });

  it('stderr under --json, where stdout is kept for the document', async () => {
    const started = sb.start(['exec', '--json', '--', 'sh', '-c', `{ ${waitForGo()}; } >&2; echo kept`]);
    await seen(started, 'first-line', 'stderr');
    writeFileSync(join(sb.dir, 'go'), '');
    const result = await started.finished;
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('first-line\nsecond-line\n');
    const json = JSON.parse(result.stdout);
    expect(json.stdout).toBe('kept\n');
    expect(json.stderr).toBe('first-line\nsecond-line\n');
  });

  it('copes with the reader of its stdout going away (`| head`): no crash, tree ended', async () => {
    for (const extra of [[], ['--log', join(sb.dir, 'run.log')]]) {
      const started = sb.start([
        'exec',
        '--linger',
        '0.2',
        ...extra,
        '--',
        'sh',
        '-c',
        'sleep 300 & echo $! > bg.pid; exec yes',
      ]);
      await seen(started, 'y\n');
      const bg = await pidFile(sb, 'bg.pid');
      started.child.stdout?.destroy();
      const result = await started.finished;
      // yes dies of the broken pipe (SIGPIPE, or an error exit when it sees EPIPE/ECONNRESET first).
      expect(result.code).not.toBe(0);
      expect(result.code).not.toBe(125);
      expect(result.stderr).not.toMatch(/EPIPE|internal error|Unhandled/);
      expect(result.stderr).toContain(`seq-test: ended leftover process ${bg} (sleep 300)`);
      expect(isAlive(bg)).toBe(false);
      expect(sb.ours()).toEqual([]);
    }
  });
});
