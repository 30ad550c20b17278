import { appendFileSync } from 'node:fs';
import {
  type ExecOptions,
  parseCount,
  parseSeconds,
  parseSignal,
  parseSize,
  SeqTestError,
} from '@seq-test/core/internal';
import type { Command } from 'commander';

/** Raw option values as commander hands them over; validated by toExecOptions with one-line errors. */
export interface RawExecOptions {
  timeout?: string;
  killSignal?: string;
  grace?: string;
  linger?: string;
  lingerIdle?: boolean;
  waitAll?: boolean;
  retry?: string;
  retryDelay?: string;
  maxMemory?: string;
  json?: boolean;
  log?: string;
  verbose?: boolean;
}

/** The options `exec` and `run` share. */
export function addExecOptions(command: Command): Command {
  return command
    .option('--timeout <sec>', 'end the whole tree after SEC seconds (fractions allowed; 0 = none)')
    .option('--kill-signal <sig>', 'first signal sent on timeout, memory limit or leftover expiry', 'SIGTERM')
    .option('--grace <sec>', 'seconds between that signal and SIGKILL', '5')
    .option(
      '--linger <sec>',
      'seconds leftovers may outlive the command before they are ended (0.2 if all sat idle for SEC before it ended)',
      '3',
    )
    .option(
      '--linger-idle',
      'give leftovers that sat idle (no CPU) for --linger before the command ended the full --linger too',
    )
    .option('--wait-all', 'wait for every leftover however long it takes (bounded by --timeout)')
    .option('--retry <n>', 're-run up to N more times after a non-zero exit or timeout', '0')
    .option('--retry-delay <sec>', 'seconds to wait between attempts', '0')
    .option('--max-memory <size>', 'end the tree when its resident memory exceeds SIZE (512M, 2G)')
    .option('--json', 'print one JSON document at the end (output captured into it)')
    .option('--log <file>', 'append a readable record of every attempt to FILE')
    .option('--verbose', 'narrate what seq-test does on stderr');
}

export function toExecOptions(raw: RawExecOptions, command: string[]): ExecOptions {
  const options: ExecOptions = {
    command,
    killSignal: parseSignal('--kill-signal', raw.killSignal ?? 'SIGTERM').name,
    graceMs: parseSeconds('--grace', raw.grace ?? '5'),
    lingerMs: parseSeconds('--linger', raw.linger ?? '3'),
    waitAll: Boolean(raw.waitAll),
    lingerIdle: Boolean(raw.lingerIdle),
    retries: parseCount('--retry', raw.retry ?? '0'),
    retryDelayMs: parseSeconds('--retry-delay', raw.retryDelay ?? '0'),
  };
  if (raw.timeout !== undefined) options.timeoutMs = parseSeconds('--timeout', raw.timeout);
  if (raw.maxMemory !== undefined) options.maxMemoryBytes = parseSize('--max-memory', raw.maxMemory);
  if (raw.json) {
    options.capture = true;
    options.echoStdout = false;
  }
  if (raw.log !== undefined) {
    options.logFile = checkWritable('--log', raw.log);
  }
  return options;
}

/** Fails before anything runs when the log file cannot be written. */
function checkWritable(option: string, file: string): string {
  if (file.trim() === '') throw new SeqTestError(`${option} expects a file name`);
  try {
    appendFileSync(file, '', { mode: 0o600 });
  } catch (error) {
    throw new SeqTestError(`${option} cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return file;
}
