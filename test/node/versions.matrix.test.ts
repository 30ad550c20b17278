// The CLI under each Node the project supports (engines: >= 20.19): the running one, and 22 and 24 fetched
// by test/support/node-versions.mjs (`npm run test:matrix` fetches them before the tests start). What
// differs between Node versions is the runtime under the CLI (child processes, signals, /proc reading, fs),
// so each runs the basic contract end to end: exit status, a leftover ended and named, one holder at a time.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ES module shared with the matrix's install step, no types
import { ensureNode } from '../support/node-versions.mjs';
import { CLI, TestSandbox, waitFor } from '../support/processes.js';

const MAJORS = [20, 22, 24];

describe.each(MAJORS)('seq-test under Node %i', (major) => {
  let node: string;
  let sandbox: TestSandbox;
  beforeAll(() => {
    node = ensureNode(major) as string;
  });
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });
  const seqTest = (args: string[], env: NodeJS.ProcessEnv = {}) => sandbox.start([CLI, ...args], { file: node, env });

  it('runs the command to its exit status and ends, by pid, the process it left behind', async () => {
    sandbox = new TestSandbox();
    const version = await sandbox.run(['-e', 'process.stdout.write(process.versions.node)'], { file: node });
    expect(version.stdout.split('.')[0]).toBe(String(major));
    const result = await seqTest(['run', '--', 'sh', '-c', 'sleep 300 & exit 3']).finished;
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/^seq-test: ended leftover process \d+ \(sleep 300\) with SIGTERM$/m);
    expect(sandbox.ours()).toEqual([]);
  });

  it('a second run waits for the first, then runs', async () => {
    sandbox = new TestSandbox();
    const env = { SEQ_TEST_KEY: `node-${major}-${sandbox.marker}` };
    const log = join(sandbox.dir, 'log');
    const gate = join(sandbox.dir, 'gate');
    const first = seqTest(
      ['run', '--', 'sh', '-c', `echo first >> ${log}; until [ -e ${gate} ]; do sleep 0.01; done`],
      env,
    );
    // Generous: process start-up on a loaded machine; this waits for the event, not for the time.
    await waitFor(() => existsSync(log), 60_000, 'the first run to hold the lock');
    const second = seqTest(['run', '--', 'sh', '-c', `echo second >> ${log}`], env);
    await waitFor(() => /waiting for the lock/.test(second.output.stderr), 60_000, 'the second run to queue');
    expect(readFileSync(log, 'utf8')).toBe('first\n');
    writeFileSync(gate, '');
    expect((await first.finished).code).toBe(0);
    expect((await second.finished).code).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe('first\nsecond\n');
  });
});
