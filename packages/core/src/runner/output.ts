import type { ChildProcess } from 'node:child_process';
import type { AttemptLog } from '../attempt-log.js';
import { pause } from './timers.js';

type StreamName = 'stdout' | 'stderr';

/** How much of each stream --json keeps (the end of it): the document must stay one string V8 can build. */
export const CAPTURE_LIMIT_BYTES = 16 * 1024 * 1024;

/** The last `limit` bytes of a stream, and how many came before them. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private kept = 0;
  private droppedBytes = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.kept += chunk.length;
    // Whole chunks that fall out of the window go at once; the one it cuts is trimmed at the end.
    while (this.chunks.length > 1 && this.kept - (this.chunks[0] as Buffer).length >= this.limit) {
      const first = this.chunks.shift() as Buffer;
      this.kept -= first.length;
      this.droppedBytes += first.length;
    }
  }

  /** The kept bytes as UTF-8 (invalid bytes, a character cut at the start included, become U+FFFD). */
  text(): string {
    const all = Buffer.concat(this.chunks);
    const cut = Math.max(0, all.length - this.limit);
    return all.subarray(cut).toString('utf8');
  }

  get dropped(): number {
    return this.droppedBytes + Math.max(0, this.kept - this.limit);
  }
}

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
  private readonly captures = {
    stdout: new TailBuffer(CAPTURE_LIMIT_BYTES),
    stderr: new TailBuffer(CAPTURE_LIMIT_BYTES),
  };
  private readonly closed: Promise<void>[] = [];
  // When our own stdout/stderr breaks (`seq-test exec --log f -- cmd | head`), stop echoing and close the
  // command's pipe too, so that its next write fails as it would have without seq-test in between
  // (SIGPIPE/EPIPE), instead of seq-test dying on an unhandled EPIPE and leaving the tree behind.
  private readonly broken = { stdout: false, stderr: false };
  private readonly targetErrors: [NodeJS.WriteStream, (error: Error) => void][] = [];

  constructor(
    private readonly child: ChildProcess,
    options: OutputOptions,
  ) {
    const echoes = { stdout: options.echoStdout !== false, stderr: options.echoStderr !== false };
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      if (!stream) continue;
      stream.on('data', (chunk: Buffer) => {
        if (echoes[name] && !this.broken[name]) process[name].write(chunk);
        if (options.capture) this.captures[name].push(chunk);
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

  /** What was captured of a stream (its last CAPTURE_LIMIT_BYTES), and how many bytes before that were dropped. */
  captured(name: StreamName): { text: string; droppedBytes: number } {
    return { text: this.captures[name].text(), droppedBytes: this.captures[name].dropped };
  }
}
