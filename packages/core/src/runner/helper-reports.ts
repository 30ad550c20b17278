import type { Readable } from 'node:stream';
import { signalName } from '../signals.js';

/**
 * What the subreaper helper (native/subreaper.c) reports on fd 3, one line each:
 * `pid N` once it started the command, `exit CODE MAXRSS_KB` or `signal N MAXRSS_KB` when the command
 * ended, and `peak MAXRSS_KB` when nothing is left to reap (its last line). A line this version does not
 * know is passed on as `unknown` (and ignored by the runner), so the helper can grow new reports.
 */
export type HelperReport =
  | { kind: 'pid'; pid: number }
  | { kind: 'exit'; code: number; maxRssKb: number }
  /** `signal` is null for a number this platform has no name for. */
  | { kind: 'signal'; signal: NodeJS.Signals | null; maxRssKb: number }
  | { kind: 'peak'; maxRssKb: number }
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
    default:
      return { kind: 'unknown', line };
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
