import { appendFileSync } from 'node:fs';
import type { AttemptResult } from './runner.js';
import { formatBytes, formatDuration } from './units.js';

/**
 * The --log file of one run. A write that fails (a full disk, a path gone) is reported once through
 * `onFailure` and the run goes on without its log: the record is a convenience, the command's status is not.
 */
export class LogFile {
  private failed = false;

  constructor(
    readonly path: string,
    private readonly onFailure: (error: NodeJS.ErrnoException) => void,
  ) {}

  append(text: string): void {
    if (this.failed) return;
    try {
      appendFileSync(this.path, text, { mode: 0o600 });
    } catch (error) {
      this.failed = true;
      this.onFailure(error as NodeJS.ErrnoException);
    }
  }
}

export interface AttemptLog {
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  finish(result: AttemptResult): void;
}

interface AttemptHeader {
  command: string[];
  cwd: string;
  attempt: number;
  maxAttempts: number;
  startedAt: Date;
}

/**
 * `--log FILE`: a readable record per attempt, appended while the command runs (so `tail -f` follows it).
 * Output lines are prefixed "out| " or "err| "; a partial line is held until its newline or the end.
 */
export function openAttemptLog(file: LogFile, header: AttemptHeader): AttemptLog {
  const append = (text: string) => file.append(text);
  append(
    `=== seq-test attempt ${header.attempt}/${header.maxAttempts} at ${header.startedAt.toISOString()}\n` +
      `command: ${header.command.map(quote).join(' ')}\ncwd: ${header.cwd}\n`,
  );
  const partial = { stdout: '', stderr: '' };
  const prefix = { stdout: 'out| ', stderr: 'err| ' };
  const flushLines = (stream: 'stdout' | 'stderr', final: boolean) => {
    const lines = partial[stream].split('\n');
    partial[stream] = final ? '' : (lines.pop() ?? '');
    const complete = lines.filter((line, i) => !(final && i === lines.length - 1 && line === ''));
    if (complete.length > 0) append(complete.map((line) => `${prefix[stream]}${line}\n`).join(''));
  };
  return {
    output(stream, chunk) {
      partial[stream] += chunk.toString('utf8');
      flushLines(stream, false);
    },
    finish(result) {
      flushLines('stdout', true);
      flushLines('stderr', true);
      const how = result.timedOut
        ? 'timed out'
        : result.memoryExceeded
          ? 'memory limit exceeded'
          : result.interrupted
            ? `interrupted by ${result.interrupted}`
            : result.signal
              ? `killed by ${result.signal}`
              : 'exited';
      const reaped = result.reaped.map((p) => `${p.pid} (${p.command}) ${p.signal}`).join(', ');
      append(
        `--- ${how}: exit ${result.exitCode} after ${formatDuration(result.durationMs)}; ` +
          `peak ${formatBytes(result.peakRssBytes)} in ${result.peakProcesses} process(es)` +
          `${reaped ? `; ended: ${reaped}` : ''}\n\n`,
      );
    },
  };
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
