import { writeSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { acquireLock, formatDuration, WaitLine } from '@seq-test/core';

/**
 * The worker thread of early-lock.ts: queues for the lock on behalf of Jest's main thread (same process,
 * same pid: the ticket is Jest's) and hands the held ticket over through shared memory. Writes go straight
 * to fd 2: the main thread, which would relay this thread's stderr, sleeps until we are done.
 */
interface Data {
  key: string | undefined;
  /** The project's "slots" (a whole number here: auto mode never waits early). */
  slots: number | undefined;
  cwd: string;
  command: string;
  tty: boolean;
  parent: number;
  flag: Int32Array;
  out: Uint8Array;
}

const data = workerData as Data;
const stderr = { isTTY: data.tty, write: (text: string) => writeSync(2, text) } as unknown as NodeJS.WriteStream;
const say = (line: string) => stderr.write(`seq-test: ${line}\n`);

function hand(result: object): void {
  const bytes = Buffer.from(JSON.stringify(result));
  data.out.set(bytes.subarray(0, data.out.length));
  Atomics.store(data.flag, 0, 1);
  Atomics.notify(data.flag, 0);
}

const waitLine = new WaitLine(stderr);
acquireLock({
  key: data.key,
  slots: data.slots,
  cwd: data.cwd,
  command: data.command,
  onWait: (info) => waitLine.update(info),
  // Off a terminal the line is printed once: no reads of the queue on a timer while we wait.
  waitReportMs: waitLine.reportEveryMs,
  // The main thread sleeps, so its parent watch cannot run: if the process that started Jest goes while we
  // wait, end Jest (no handler is installed yet: SIGTERM's default action) instead of queueing for nobody.
  // The lock watches the parent as it watches the owners ahead: no timer while an idle waiter waits.
  ...(data.parent > 1
    ? {
        onParentGone: (parent: number) => {
          say(`the process that started Jest (pid ${parent}) is gone: leaving the queue`);
          process.kill(process.pid, 'SIGTERM');
        },
      }
    : {}),
  onWarning: (message) => say(`warning: ${message}`),
}).then(
  (handle) => {
    waitLine.done(handle.waitedMs >= 1 ? `our turn after ${formatDuration(handle.waitedMs)}` : undefined);
    // The ticket outlives this thread: its exit hook (this thread's 'exit') must not remove it.
    process.removeAllListeners('exit');
    const { name, file, number, token, owner } = handle.ticket;
    hand({
      ok: true,
      key: handle.key,
      token: handle.token,
      nested: handle.nested,
      waitedMs: handle.waitedMs,
      queueDir: handle.queue.dir,
      ticket: { name, file, number, token, owner },
    });
  },
  (error: unknown) => {
    waitLine.done(undefined);
    hand({ ok: false, message: error instanceof Error ? error.message : String(error) });
  },
);
