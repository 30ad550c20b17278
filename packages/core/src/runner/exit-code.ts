import { EXIT } from '../errors.js';
import { signalNumber } from '../signals.js';
import type { AttemptEnd, MainOutcome } from './attempt-state.js';

/**
 * What seq-test exits with for an attempt: 128+N for a signal it received and forwarded, 124 on timeout,
 * 121 over the memory limit, else the command's own status (128+N if it died by signal N; 127/126 if it
 * could not be started; 125 when its status was lost).
 */
export function exitCodeOf(end: AttemptEnd): number {
  switch (end.kind) {
    case 'interrupted':
      return 128 + signalNumber(end.signal);
    case 'timed-out':
      return EXIT.TIMEOUT;
    case 'memory-exceeded':
      return EXIT.MEMORY_EXCEEDED;
    case 'completed':
      return mainExitCode(end.main);
  }
}

function mainExitCode(main: MainOutcome): number {
  switch (main.kind) {
    case 'exited':
    case 'not-started':
      return main.code;
    case 'signalled':
      return 128 + signalNumber(main.signal);
    case 'lost':
      return EXIT.USAGE;
  }
}

/** The signal that ended the main command, if one did. */
export const mainSignal = (main: MainOutcome): NodeJS.Signals | null =>
  main.kind === 'signalled' ? main.signal : null;
