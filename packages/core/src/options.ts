import { constants } from 'node:os';
import { SeqTestError } from './errors.js';

/**
 * A value core cannot honour, caught at its public boundary (execTree/prepareExec, acquireLock,
 * endProcesses) instead of misbehaving later: NaN would disable an escalation timer, 1.5 retries would
 * run two, 0 slots would hold where the queue's full decision never would. The CLI and the plugins check
 * their own input first, with messages in their own terms (`--grace expects…`); this is the net below.
 */
export class InvalidOptionError extends SeqTestError {
  constructor(
    /** Where the option was given, e.g. "execTree({ graceMs })". */
    readonly option: string,
    readonly value: unknown,
    /** What would have been accepted, e.g. "a number of milliseconds, 0 or more". */
    readonly expected: string,
  ) {
    super(`${option} expects ${expected}, got ${describe(value)}`);
    this.name = 'InvalidOptionError';
  }
}

type Checker = (value: unknown) => boolean;

const milliseconds: [Checker, string] = [
  (v) => typeof v === 'number' && v >= 0 && !Number.isNaN(v),
  'a number of milliseconds, 0 or more',
];
const positiveMilliseconds: [Checker, string] = [
  (v) => typeof v === 'number' && v > 0 && !Number.isNaN(v),
  'a number of milliseconds greater than 0',
];
const wholeCount = (min: number): [Checker, string] => [
  (v) => Number.isSafeInteger(v) && (v as number) >= min,
  `a whole number, ${min} or more`,
];
const signal: [Checker, string] = [
  (v) => typeof v === 'string' && (constants.signals as Record<string, number>)[v] !== undefined,
  'a signal name such as "SIGTERM"',
];
const positiveBytes: [Checker, string] = [
  (v) => typeof v === 'number' && v > 0 && Number.isFinite(v),
  'a number of bytes greater than 0',
];

export type OptionRules = Record<string, [Checker, string]>;

/** Throws InvalidOptionError for the first option given (not undefined) that its rule rejects. */
export function checkOptions(where: string, options: object, rules: OptionRules): void {
  for (const [name, [accepts, expected]] of Object.entries(rules)) {
    const value = (options as Record<string, unknown>)[name];
    if (value !== undefined && !accepts(value)) throw new InvalidOptionError(`${where}({ ${name} })`, value, expected);
  }
}

export const EXEC_OPTION_RULES: OptionRules = {
  timeoutMs: milliseconds,
  killSignal: signal,
  graceMs: milliseconds,
  lingerMs: milliseconds,
  maxMemoryBytes: positiveBytes,
  retries: wholeCount(0),
  retryDelayMs: milliseconds,
};

export const LOCK_OPTION_RULES: OptionRules = {
  slots: wholeCount(1),
  waitTimeoutMs: milliseconds,
  waitReportMs: positiveMilliseconds,
  pollMs: positiveMilliseconds,
  reapGraceMs: milliseconds,
};

export const END_OPTION_RULES: OptionRules = { graceMs: milliseconds };

export const RUN_COMMAND_OPTION_RULES: OptionRules = { timeoutMs: milliseconds, graceMs: milliseconds };

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return `${typeof value} ${String(value)}`.slice(0, 80);
}
