import { formatDuration } from '@seq-test/core';
import { isVerbose } from './output.js';
import type { Summary } from './state.js';

/** Jest's own worker process (jest-worker's processChild, Jest 29 and 30 paths). */
const JEST_WORKER = /[/\\]jest-worker[/\\]build[/\\](?:workers[/\\])?processChild\.js(?:\s|$)/;

/**
 * A Jest worker still alive when the run ends early (a signal, --bail on Jest 29) is ended with the run's
 * processes, but it is Jest's, not a leftover of the tests: the summary does not name it.
 */
export function isJestWorker(command: string): boolean {
  return JEST_WORKER.test(command);
}

/**
 * Whether the end of a run is worth a line: something was ended. A wait already had its own lines (the
 * queue line and "our turn after …"); SEQ_TEST_VERBOSE=1 prints the line for every run.
 */
export function worthSaying(summary: Summary): boolean {
  return summary.ended.length > 0 || isVerbose();
}

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
          .map((p) => `${p.pid} ${shortenCommand(p.command, 80)}${p.signal === 'SIGKILL' ? ' (SIGKILL)' : ''}`)
          .join(', ')}`;
  const cause =
    summary.cause === undefined
      ? ''
      : summary.cause === 'exit'
        ? ' (Jest exited without its global teardown)'
        : ` (on ${summary.cause})`;
  return `${lock}; ${reaped}${cause}`;
}

/**
 * A command line within `max` characters. Its length is mostly the directories of its paths (so, where the
 * project lives), so those go first (`/home/alice/src/app/test/server.js` → `…/test/server.js`) and the
 * script and arguments that say what the process is stay; only if that is still too long is the end cut.
 */
function shortenCommand(command: string, max: number): string {
  if (command.length <= max) return command;
  const short = command
    .split(' ')
    .map((word) => {
      const parts = word.split('/');
      return parts.length > 3 ? `…/${parts.slice(-2).join('/')}` : word;
    })
    .join(' ');
  return short.length <= max ? short : `${short.slice(0, max - 1)}…`;
}
