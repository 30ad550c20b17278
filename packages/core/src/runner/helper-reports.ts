import type { Readable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { signalName } from '../signals.js';

/**
 * What the subreaper helper (native/subreaper.c) reports on fd 3, one line each:
 * `pid N` once it started the command, `exit CODE MAXRSS_KB` or `signal N MAXRSS_KB` when the command
 * ended, `peak MAXRSS_KB` when nothing is left to reap (its last line), and `error STEP ERRNO` when a step
 * failed (see subreaper.c: `subreaper`, `pdeathsig`, `exec` and the run goes on; `fork`, `usage` and the
 * helper exits 125 having started nothing). A line this version does not
 * know is passed on as `unknown` (and ignored by the runner), so the helper can grow new reports.
 */
export type HelperReport =
  | { kind: 'pid'; pid: number }
  | { kind: 'exit'; code: number; maxRssKb: number }
  /** `signal` is null for a number this platform has no name for. */
  | { kind: 'signal'; signal: NodeJS.Signals | null; maxRssKb: number }
  | { kind: 'peak'; maxRssKb: number }
  /** `errno` as the helper's kernel gave it; `code` its name here (EAGAIN), when Node knows it. */
  | { kind: 'error'; step: string; errno: number; code: string | undefined }
  | { kind: 'unknown'; line: string };

const kb = (field: string | undefined) => Number(field) || 0;

export function parseHelperReport(line: string): HelperReport {
  const [kind, value, maxRss] = line.split(' ');
  switch (kind) {
    case 'pid':
      return { kind, pid: Number(value) };
    case 'exit':
      return { kind, code: Number(value), maxRssKb: kb(maxRss) };
    case 'signal':
      return { kind, signal: signalName(Number(value)) ?? null, maxRssKb: kb(maxRss) };
    case 'peak':
      return { kind, maxRssKb: kb(value) };
    case 'error':
      return { kind, step: value ?? '', errno: Number(maxRss), code: errnoName(Number(maxRss)) };
    default:
      return { kind: 'unknown', line };
  }
}

function errnoName(errno: number): string | undefined {
  try {
    return Number.isInteger(errno) && errno > 0 ? getSystemErrorName(-errno) : undefined;
  } catch {
    return undefined;
  }
}

/** What a failed step means for the run, for a notice. */
export function describeHelperError(report: Extract<HelperReport, { kind: 'error' }>): string {
  const cause = `errno ${report.errno}${report.code ? ` ${report.code}` : ''}`;
  switch (report.step) {
    case 'subreaper':
      return `the subreaper helper could not become a child subreaper (${cause}): orphans that leave the session are found by their token only`;
    case 'pdeathsig':
      return `the subreaper helper could not ask to be told when seq-test dies (${cause}): if seq-test is killed, run seq-test reap`;
    case 'fork':
      return `the subreaper helper could not start the command: fork failed (${cause})`;
    case 'exec':
      return `the subreaper helper could not execute the command (${cause})`;
    default:
      return `the subreaper helper failed at ${report.step || 'an unknown step'} (${cause})`;
  }
}

/** Calls `onReport` for every complete line the helper writes on `stream`, in order. */
export function readHelperReports(stream: Readable, onReport: (report: HelperReport) => void): void {
  let pending = '';
  stream.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onReport(parseHelperReport(line));
  });
}
