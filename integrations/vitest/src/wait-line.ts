import { describeWait, type WaitInfo } from '@seq-test/core';
import { PREFIX } from './say.js';

/**
 * The queue line while Vitest waits for the lock: the same text as `seq-test run` prints (core's
 * describeWait). On a terminal one line rewritten in place; elsewhere one line when waiting starts.
 */
export class WaitLine {
  private shown = false;
  private readonly tty: boolean;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(info: WaitInfo): void {
    if (this.quiet) return;
    const text = describeWait(info);
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${PREFIX} ${text}`);
      this.shown = true;
    } else if (!this.shown) {
      this.stream.write(`${PREFIX} ${text}\n`);
      this.shown = true;
    }
  }

  done(message: string | undefined): void {
    if (this.quiet || !this.shown) return;
    if (this.tty) this.stream.write('\r\x1b[2K');
    if (message) this.stream.write(`${PREFIX} ${message}\n`);
    this.shown = false;
  }
}
