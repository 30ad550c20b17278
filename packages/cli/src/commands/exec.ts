import { ExecController, type ExecResult, execTree, forwardSignals } from '@seq-test/core';
import type { Command } from 'commander';
import { addExecOptions, type RawExecOptions, toExecOptions } from '../exec-options.js';
import { say } from '../report.js';
import { applyProjectDefaults } from '../setup/project-config.js';

export function registerExec(program: Command): void {
  addExecOptions(
    program
      .command('exec')
      .summary('run a command and wait for every process it starts (no lock)')
      .description(
        'Run a command in its own session, stream its output, wait for its whole process tree\n' +
          '(escapees included), enforce --timeout/--max-memory, and end what it leaves behind.',
      )
      .argument('<command...>', 'the command and its arguments, after --'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ seq-test exec -- npm test
  $ seq-test exec --timeout 300 --grace 10 -- pytest -x
  $ seq-test exec --wait-all -- bash -c 'sleep 1 & echo started'
  $ seq-test exec --json -- bash -c 'echo out; echo err >&2; exit 3'
  $ seq-test exec --retry 2 --retry-delay 1 --log run.log -- ./flaky.sh
  $ seq-test exec --max-memory 2G -- vitest run`,
    )
    .action(async (command: string[], raw: RawExecOptions, cmd: Command) => {
      // Project settings (package.json "seqTest" / .seqtestrc.json) fill the flags not given.
      process.exitCode = await runExec(command, applyProjectDefaults(raw, cmd, { lock: false }));
    });
}

export async function runExec(command: string[], raw: RawExecOptions): Promise<number> {
  const options = toExecOptions(raw, command);
  const controller = new ExecController();
  const stopForwarding = forwardSignals(controller);
  try {
    const result = await execTree({
      ...options,
      controller,
      onNotice: say,
      onNarrate: raw.verbose ? (line) => say(line) : undefined,
    });
    if (raw.json) process.stdout.write(`${JSON.stringify(toJson(result), null, 2)}\n`);
    return result.exitCode;
  } finally {
    stopForwarding();
  }
}

/** The `--json` document; its schema is documented in docs/json-output.md (version 1). */
export function toJson(result: ExecResult) {
  const last = result.attempts[result.attempts.length - 1];
  return {
    version: 1,
    command: result.command,
    exitCode: result.exitCode,
    signal: result.signal,
    timedOut: result.timedOut,
    memoryExceeded: result.memoryExceeded,
    interrupted: result.interrupted,
    durationMs: result.durationMs,
    peakRssBytes: result.peakRssBytes,
    peakProcesses: result.peakProcesses,
    reaped: result.attempts.flatMap((a) => a.reaped.map((p) => ({ attempt: a.attempt, ...p }))),
    stdout: last?.stdout ?? '',
    stderr: last?.stderr ?? '',
    stdoutDroppedBytes: last?.stdoutDroppedBytes ?? 0,
    stderrDroppedBytes: last?.stderrDroppedBytes ?? 0,
    attempts: result.attempts,
  };
}
