import { formatDuration } from '@seq-test/core';
import type { Summary } from './state.js';

/**
 * The line printed when a run ends, e.g.
 * `waited 2.1 s for the lock on /home/me/app; ended 1 process the tests left running: 4242 sleep 300`.
 */
export function describeSummary(summary: Summary): string {
  const lock = summary.disabled
    ? 'ran without the lock (SEQ_TEST_DISABLE=1)'
    : summary.nested
      ? `ran inside an outer seq-test run (nested lock on ${summary.key}, waited ${formatDuration(summary.waitedMs)})`
      : `waited ${formatDuration(summary.waitedMs)} for the lock on ${summary.key}`;
  const n = summary.ended.length;
  const reaped =
    n === 0
      ? 'no process left running'
      : `ended ${n} process${n === 1 ? '' : 'es'} the tests left running: ${summary.ended
          .map((p) => `${p.pid} ${truncate(p.command, 80)}${p.signal === 'SIGKILL' ? ' (SIGKILL)' : ''}`)
          .join(', ')}`;
  const cause =
    summary.cause === undefined
      ? ''
      : summary.cause === 'exit'
        ? ' (Jest exited without its global teardown)'
        : ` (on ${summary.cause})`;
  return `${lock}; ${reaped}${cause}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
