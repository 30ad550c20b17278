import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PYTHON } from '../pytest/helpers.js';
import { CLI, isAlive, REPO, TestSandbox, waitFor } from '../support/processes.js';

// Issue 13, item 3: a run checks the SEQ_TEST_TOKEN chain it inherits. Only tokens whose owner is alive and
// is an ancestor of the run count; the rest (a dead run's token left in a shell, a live holder's token
// copied from `status --json`) is dropped. Trust model: same user, tokens are not secrets.

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

/** A `seq-test run` command that records its pid and SEQ_TEST_TOKEN, then holds until `go` exists. */
const HOLD = `echo "$$ $SEQ_TEST_TOKEN" > held; while [ ! -e go ]; do sleep 0.02; done`;

function held(): { pid: number; chain: string } | undefined {
  const file = join(sb.dir, 'held');
  if (!existsSync(file)) return undefined;
  const [pid, chain = ''] = readFileSync(file, 'utf8').trim().split(' ');
  return pid ? { pid: Number(pid), chain } : undefined;
}

describe('the inherited token chain', () => {
  it("a dead run's token left in the shell is dropped: `reap` leaves the new live run alone", async () => {
    // Our own pid with another start time: a run whose owner is gone.
    const stale = `${process.pid}.1.abcdef012345`;
    const key = `stale-${sb.marker}`;
    const run = sb.start(['run', '--', 'sh', '-c', HOLD], { env: { SEQ_TEST_TOKEN: stale, SEQ_TEST_KEY: key } });
    const command = await waitFor(held, 30_000, 'the run to start its command');
    expect(command.chain).not.toContain(stale);
    const reap = await sb.run(['reap'], { env: { SEQ_TEST_TOKEN: stale } });
    expect(reap.code, reap.stderr).toBe(0);
    expect(reap.stdout).not.toContain(`pid ${command.pid}`);
    expect(isAlive(command.pid), `${reap.stdout}${reap.stderr}${run.output.stderr}`).toBe(true);
    writeFileSync(join(sb.dir, 'go'), '');
    const result = await run.finished;
    expect(result.code, result.stderr).toBe(0);
  });

  it("a live holder's token copied from `status --json` does not let an outside process skip the queue", async () => {
    const key = `borrowed-${sb.marker}`;
    const holder = sb.start(['run', '--', 'sh', '-c', HOLD], { env: { SEQ_TEST_KEY: key } });
    await waitFor(held, 30_000, 'the holder to start its command');
    const status = await sb.run(['status', '--json'], { env: { SEQ_TEST_KEY: key } });
    const token = JSON.parse(status.stdout).queues[0].tickets[0].token as string;
    const outsider = await sb.run(['run', '--no-wait', '--', 'true'], {
      env: { SEQ_TEST_KEY: key, SEQ_TEST_TOKEN: token },
    });
    expect(outsider.code, outsider.stderr).toBe(123);
    expect(outsider.stderr).toContain('--no-wait');
    writeFileSync(join(sb.dir, 'go'), '');
    expect((await holder.finished).code).toBe(0);
  });

  it.runIf(PYTHON)("Python's lock applies the same rule to a borrowed token", async () => {
    const key = `borrowed-py-${sb.marker}`;
    const holder = sb.start(['run', '--', 'sh', '-c', HOLD], { env: { SEQ_TEST_KEY: key } });
    await waitFor(held, 30_000, 'the holder to start its command');
    const status = await sb.run(['status', '--json'], { env: { SEQ_TEST_KEY: key } });
    const token = JSON.parse(status.stdout).queues[0].tickets[0].token as string;
    const script = `
import sys
sys.path.insert(0, ${JSON.stringify(join(REPO, 'integrations', 'pytest', 'templates'))})
import seq_test_lock as L
try:
    L.acquire(command="outsider", no_wait=True).release()
    print("held")
except L.SeqTestError as error:
    print(error.exit_code)
`;
    const outsider = await sb.run(['-c', script], {
      file: PYTHON?.path,
      env: { SEQ_TEST_KEY: key, SEQ_TEST_TOKEN: token },
    });
    expect(outsider.stdout.trim(), outsider.stderr).toBe('123');
    writeFileSync(join(sb.dir, 'go'), '');
    expect((await holder.finished).code).toBe(0);
  });

  it('a run started inside the holder still nests in its queue (the holder is its ancestor)', async () => {
    const key = `nested-${sb.marker}`;
    const inner = [process.execPath, CLI, 'run', '--no-wait', '--', 'true'];
    const result = await sb.run(['run', '--', ...inner], { env: { SEQ_TEST_KEY: key } });
    expect(result.code, result.stderr).toBe(0);
  });
});
