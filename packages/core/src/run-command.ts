import { SeqTestError } from './errors.js';
import { checkOptions, RUN_COMMAND_OPTION_RULES } from './options.js';
import { execTree } from './runner.js';

export interface RunCommandOptions {
  cwd?: string;
  /** Environment of the command (default: the test's process.env). */
  env?: NodeJS.ProcessEnv;
  /** End the whole tree (TERM, then KILL after graceMs) after this long. Default 10 minutes; 0: never. */
  timeoutMs?: number;
  /** Between TERM and KILL on timeout (default 2000). */
  graceMs?: number;
  /** Also echo the command's output live to the test's stdout/stderr (default false: captured only). */
  echo?: boolean;
}

export interface RunCommandResult {
  command: string[];
  /** The command's own status; 128+N when a signal N ended it; 124 on timeout; 127/126 when it could not start. */
  exitCode: number;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** stdout followed by stderr. */
  output: string;
  durationMs: number;
  /** Processes of the command's tree that had to be ended (timeout). */
  ended: { pid: number; command: string; signal: NodeJS.Signals }[];
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;

let tail: Promise<unknown> = Promise.resolve();

/**
 * Runs a command for a test and waits for its whole process tree, not just the main process: a command
 * that backgrounds work is finished when that work is. Calls are serialized among themselves (one command
 * at a time per test process, in call order), and the tree is ended on timeout, escapees included.
 * A string runs through `/bin/sh -c`; an array runs as is. Never throws for the command's failure.
 */
export function runCommand(command: string | string[], options: RunCommandOptions = {}): Promise<RunCommandResult> {
  const argv = typeof command === 'string' ? ['/bin/sh', '-c', command] : [...command];
  if (argv.length === 0 || argv[0] === '') throw new TypeError('runCommand expects a command, got an empty one');
  checkOptions('runCommand', options, RUN_COMMAND_OPTION_RULES);
  const run = tail.then(() => execute(argv, options));
  tail = run.catch(() => {});
  return run;
}

async function execute(argv: string[], options: RunCommandOptions): Promise<RunCommandResult> {
  const began = performance.now();
  try {
    const result = await execTree({
      command: argv,
      cwd: options.cwd,
      env: options.env,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      graceMs: options.graceMs ?? 2000,
      waitAll: true,
      capture: true,
      echoStdout: options.echo === true,
      echoStderr: options.echo === true,
    });
    const attempt = result.attempts[result.attempts.length - 1];
    const stdout = attempt?.stdout ?? '';
    const stderr = attempt?.stderr ?? '';
    return {
      command: argv,
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut: result.timedOut,
      stdout,
      stderr,
      output: stdout + stderr,
      durationMs: result.durationMs,
      ended: (attempt?.reaped ?? []).map(({ pid, command, signal }) => ({ pid, command, signal })),
    };
  } catch (error) {
    if (!(error instanceof SeqTestError)) throw error;
    // Could not start at all (not found, not executable): report it like a shell would.
    return {
      command: argv,
      exitCode: error.exitCode,
      signal: null,
      timedOut: false,
      stdout: '',
      stderr: `${error.message}\n`,
      output: `${error.message}\n`,
      durationMs: Math.round(performance.now() - began),
      ended: [],
    };
  }
}
