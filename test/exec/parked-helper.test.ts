import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestSandbox, waitFor } from '../support/processes.js';
import { finishWithin, seen } from './helpers.js';

// A queued `seq-test run` parks its subreaper helper while it waits. When that helper is killed during the
// wait, the run notices and starts a fresh one, so that the command still runs at its turn.

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

const childrenOf = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const commOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};
const parkedHelpers = (pid: number) => childrenOf(pid).filter((child) => commOf(child).startsWith('seq-test-subrea'));

describe.runIf(process.platform === 'linux')('a parked helper killed while its run waits', () => {
  it('is replaced: the command runs at its turn, with its own exit code', async () => {
    const holder = sb.start(['run', '--', 'sh', '-c', 'echo holding; while [ ! -e go ]; do sleep 0.02; done']);
    await seen(holder, 'holding');
    const waiter = sb.start(['run', '--', 'sh', '-c', 'echo ran; exit 7']);
    const waiterPid = waiter.child.pid as number;
    const [parked] = await waitFor(() => {
      const found = parkedHelpers(waiterPid);
      return found.length > 0 ? found : undefined;
    });
    process.kill(parked as number, 'SIGKILL');
    // The replacement is parked before the turn comes.
    await waitFor(() => parkedHelpers(waiterPid).some((pid) => pid !== parked), 15_000, 'a fresh parked helper');
    writeFileSync(join(sb.dir, 'go'), '');
    expect((await finishWithin(holder, 30_000)).code).toBe(0);
    const result = await finishWithin(waiter, 30_000);
    expect(result.code, result.stderr).toBe(7);
    expect(result.stdout).toBe('ran\n');
    expect(result.stderr).not.toContain('lost track');
    expect(sb.ours()).toEqual([]);
  });
});
