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
/** Children of `pid` that are parked subreaper helpers (not, e.g., the one-off helper of the start-up handshake). */
const parkedHelpers = (pid: number) =>
  childrenOf(pid).filter((child) => {
    try {
      const argv = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
      return argv[0]?.endsWith('seq-test-subreaper') && argv[1] === '--park';
    } catch {
      return false;
    }
  });

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

  it('after three replacements also die, the run goes on without a helper and still runs the command', async () => {
    const holder = sb.start(['run', '--', 'sh', '-c', 'echo holding; while [ ! -e go ]; do sleep 0.02; done']);
    await seen(holder, 'holding');
    const waiter = sb.start(['run', '--', 'sh', '-c', 'echo ran; exit 7']);
    const waiterPid = waiter.child.pid as number;
    const killed = new Set<number>();
    for (let round = 0; round < 4; round++) {
      const [parked] = await waitFor(
        () => {
          const fresh = parkedHelpers(waiterPid).filter((pid) => !killed.has(pid));
          return fresh.length > 0 ? fresh : undefined;
        },
        15_000,
        `parked helper ${round + 1}`,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; the waiter said: ${waiter.output.stderr}`);
      });
      killed.add(parked as number);
      process.kill(parked as number, 'SIGKILL');
    }
    await seen(waiter, 'going on without one', 'stderr').catch((error: Error) => {
      throw new Error(`${error.message}; killed ${[...killed]}; the waiter said: ${waiter.output.stderr}`);
    });
    writeFileSync(join(sb.dir, 'go'), '');
    expect((await finishWithin(holder, 30_000)).code).toBe(0);
    const result = await finishWithin(waiter, 30_000);
    expect(result.code, result.stderr).toBe(7);
    expect(result.stdout).toBe('ran\n');
    expect(result.stderr.match(/starting a fresh one/g)).toHaveLength(3);
    expect(sb.ours()).toEqual([]);
  });
});
