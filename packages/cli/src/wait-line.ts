import { describeWait, type WaitInfo } from '@seq-test/core';
import { PREFIX } from './report.js';

export { describeWait };

/**
 * The queue line shown while `seq-test run` (or a plugin) waits. On a terminal it is one line rewritten in
 * place; elsewhere (CI logs, pipes) one line when waiting starts and one when the turn comes.
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

  /** Our turn came (or waiting ended): replace or follow the line. */
  done(message: string | undefined): void {
    if (this.quiet || !this.shown) return;
    if (this.tty) this.stream.write('\r\x1b[2K');
    if (message) this.stream.write(`${PREFIX} ${message}\n`);
    this.shown = false;
  }
}
