import { writeSync } from 'node:fs';
import { describeWait, type WaitInfo } from '@seq-test/core';

/** Every line this package prints starts with this, like the CLI's, so it stands out from Jest's output. */
export const PREFIX = 'seq-test:';

/** One line on stderr. Synchronous, so that it also comes out from a process 'exit' handler. */
export function say(line: string): void {
  try {
    writeSync(2, `${PREFIX} ${line}\n`);
  } catch {}
}

/**
 * The queue line while Jest waits for the lock in its global setup, the same text as `seq-test run`'s:
 * rewritten in place on a terminal, one line when waiting starts elsewhere (CI logs, pipes).
 */
export class WaitLine {
  private shown = false;
  private readonly tty = Boolean(process.stderr.isTTY);

  update(info: WaitInfo): void {
    const text = `${PREFIX} ${describeWait(info)}`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${text}`);
      this.shown = true;
    } else if (!this.shown) {
      say(describeWait(info));
      this.shown = true;
    }
  }

  done(message: string | undefined): void {
    if (!this.shown) return;
    if (this.tty) process.stderr.write('\r\x1b[2K');
    if (message) say(message);
    this.shown = false;
  }
}
