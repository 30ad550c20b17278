import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

/** One end each of an OS pipe: `write` for the command (an fd), `read` for us (a stream). */
export interface OutputPipe {
  write: number;
  read: Socket;
}

/**
 * Real pipes for the command's stdout and stderr when seq-test reads them itself (--log, --json). Node's
 * own 'pipe' is a socket pair, and a socket closed with unread data makes the writer's next write fail with
 * ECONNRESET ("Connection reset by peer") instead of SIGPIPE: `seq-test exec --log f -- yes | head -1`
 * must end `yes` by SIGPIPE as a shell pipeline would. Node cannot make a pipe, so a FIFO in a private
 * directory is opened at both ends and unlinked at once. Undefined (the caller falls back to 'pipe') when
 * mkfifo is not there, and in a worker thread: there Node tracks every fd opened by `fs` and closes the
 * ones still tracked when the thread ends, and a Socket closes its fd without untracking it, so the thread's
 * exit would close whatever reused that number (Vitest's threads pool: libuv's signal pipe, an abort).
 */
export function outputPipes(): [OutputPipe, OutputPipe] | undefined {
  if (!isMainThread) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'seq-test-pipe-'));
  const paths = [join(dir, 'stdout'), join(dir, 'stderr')] as const;
  const opened: number[] = [];
  try {
    execFileSync('mkfifo', ['-m', '600', ...paths], { stdio: 'ignore' });
    return paths.map((path) => {
      // The read end first, non-blocking (nothing writes yet); the write end then opens at once.
      const read = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      opened.push(read);
      const write = openSync(path, constants.O_WRONLY);
      opened.push(write);
      return { write, read: new Socket({ fd: read, readable: true, writable: false }) };
    }) as [OutputPipe, OutputPipe];
  } catch {
    for (const fd of opened) closeSync(fd);
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
