import { readFileSync } from 'node:fs';
import { assertSupportedPlatform } from '@seq-test/core/internal';
import { Command, CommanderError } from 'commander';
import { registerCancel } from './commands/cancel.js';
import { registerDoctor } from './commands/doctor.js';
import { registerExec } from './commands/exec.js';
import { registerInit } from './commands/init.js';
import { registerMonitor } from './commands/monitor.js';
import { registerReap } from './commands/reap.js';
import { registerRun } from './commands/run.js';
import { registerStatus } from './commands/status.js';
import { exitCodeFor, sayError } from './report.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('seq-test')
    .version(version, '-V, --version')
    .description('Run tests, linters and hooks one at a time per project; wait for and reap every process they start.')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // Commander's own usage errors become our one-line format; help and version go out unchanged.
      outputError: (text) => sayError(text.replace(/^error:\s*/i, '').trim()),
    })
    .addHelpText(
      'after',
      `
Examples:
  $ seq-test run -- npm test                  wait for this project's lock, run, reap leftovers
  $ seq-test exec -- npm test                 run and wait for the whole process tree (no lock)
  $ seq-test status                           who holds the lock, who waits
  $ seq-test cancel 4242                      end that run (waiting or holding), reap, free its place
  $ seq-test exec --timeout 60 -- pytest      end the whole tree after 60 s (exit 124)
  $ seq-test exec --json -- make check        one JSON document with status, memory, leftovers

Exit codes: the command's own; 128+N if it died by signal N; 121 memory limit; 122 --wait-timeout
expired; 123 lock busy with --no-wait; 124 timeout; 125 seq-test error or bad usage (cancel: no such run of yours);
126 not executable; 127 not found.`,
    );
  program.enablePositionalOptions();
  registerRun(program);
  registerExec(program);
  registerStatus(program);
  registerMonitor(program);
  registerCancel(program);
  registerReap(program);
  registerInit(program);
  registerDoctor(program);
  for (const sub of program.commands) {
    sub.exitOverride().configureOutput({ outputError: (text) => sayError(text.replace(/^error:\s*/i, '').trim()) });
    // Everything after the command name belongs to the command: `seq-test exec -- ls -la`.
    sub.passThroughOptions();
  }
  return program;
}

/** Parses argv and runs; resolves to the exit code instead of exiting, so tests and embedders can call it. */
export async function main(argv: string[]): Promise<number> {
  try {
    assertSupportedPlatform();
    const program = buildProgram();
    process.exitCode = undefined;
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed as one line.
      return error.exitCode === 0 ? 0 : 125;
    }
    return exitCodeFor(error);
  }
}
