import type { ChildProcess } from 'node:child_process';
import type { AttemptLog } from '../attempt-log.js';
import { pause } from './timers.js';

type StreamName = 'stdout' | 'stderr';

export interface OutputOptions {
  capture?: boolean | undefined;
  echoStdout?: boolean | undefined;
  echoStderr?: boolean | undefined;
}

/**
 * The command's stdout/stderr when they go through us (capture or --log): echoed live to ours, kept for
 * --json, written to the attempt log. Without piping the command writes to our stdout/stderr directly and
 * this has nothing to do.
 */
export class OutputRelay {
  /** Set once the attempt starts. */
  log: AttemptLog | undefined;
  private readonly captured = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  private readonly closed: Promise<void>[] = [];
  // When our own stdout/stderr breaks (`seq-test exec --log f -- cmd | head`), stop echoing and close the
  // command's pipe too, so that its next write fails as it would have without seq-test in between
  // (SIGPIPE/EPIPE), instead of seq-test dying on an unhandled EPIPE and leaving the tree behind.
  private readonly broken = { stdout: false, stderr: false };
  private readonly targetErrors: [NodeJS.WriteStream, (error: Error) => void][] = [];

  constructor(
    private readonly child: ChildProcess,
    private readonly options: OutputOptions,
  ) {
    const echoes = { stdout: options.echoStdout !== false, stderr: options.echoStderr !== false };
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      if (!stream) continue;
      stream.on('data', (chunk: Buffer) => {
        if (echoes[name] && !this.broken[name]) process[name].write(chunk);
        if (options.capture) this.captured[name].push(chunk);
        this.log?.output(name, chunk);
      });
      this.closed.push(new Promise((resolve) => stream.once('close', () => resolve())));
      if (echoes[name]) {
        const onError = () => {
          if (this.broken[name]) return;
          this.broken[name] = true;
          stream.destroy();
        };
        process[name].on('error', onError);
        this.targetErrors.push([process[name], onError]);
      }
    }
  }

  /**
   * Output still buffered in the pipes is read to the end; a pipe still held open after that belongs to a
   * process we could not see (only possible without the helper) and is closed rather than waited for.
   */
  async drain(): Promise<void> {
    await pause(500, Promise.all(this.closed));
    this.close();
  }

  /** Closes the pipes and stops watching our own stdout/stderr. */
  close(): void {
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    for (const [target, onError] of this.targetErrors) target.off('error', onError);
  }

  text(name: StreamName): string | undefined {
    return this.options.capture ? Buffer.concat(this.captured[name]).toString('utf8') : undefined;
  }
}
