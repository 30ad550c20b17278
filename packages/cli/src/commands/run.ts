import {
  AutoHolder,
  acquireLock,
  describeWait,
  EXIT,
  ExecController,
  formatDuration,
  HandedOff,
  type HandOffPlan,
  type LockHandle,
  type PreparedExec,
  parseSeconds,
  prepareExec,
  resolveCommand,
  SeqTestError,
  signalNumber,
  type WaitInfo,
  WaitLine,
} from '@seq-test/core/internal';
import type { Command } from 'commander';
import { addAutoOptions, parseSlotsOptions, type RawAutoOptions } from '../auto-options.js';
import { addExecOptions, type RawExecOptions, toExecOptions } from '../exec-options.js';
import { FORWARDED_SIGNALS, say } from '../report.js';
import { applyProjectDefaults } from '../setup/project-config.js';
import { runExec, toJson } from './exec.js';
import { closePlan, handOffTo, takeLauncher } from './run-launcher.js';

interface RawRunOptions extends RawExecOptions, RawAutoOptions {
  key?: string;
  waitTimeout?: string;
  wait?: boolean;
  quiet?: boolean;
}

export function registerRun(program: Command): void {
  addExecOptions(
    addAutoOptions(program.command('run'))
      .summary("wait for this project's lock, then run like exec (the default way to run tests)")
      .description(
        'Join the per-project FIFO queue, run the command with everything exec does once it is our turn,\n' +
          "release the lock, and exit with the command's code. Runs started inside a holder (same token)\n" +
          'do not wait for their own ancestor; they run one at a time among themselves.',
      )
      .argument('<command...>', 'the command and its arguments, after --')
      .option('--key <key>', 'lock key (default: $SEQ_TEST_KEY, else the git top-level, else cwd)')
      .option('--slots <n>', 'how many runs of this key may hold at once, or "auto" (as many as memory allows)', '1')
      .option('--wait-timeout <sec>', `give up after waiting SEC seconds (exit ${EXIT.WAIT_TIMEOUT})`)
      .option('--no-wait', `fail at once if the lock is busy (exit ${EXIT.LOCK_BUSY})`)
      .option('--quiet', 'do not print the queue line'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ seq-test run -- npm test
  $ seq-test run --timeout 600 -- pytest -x
  $ seq-test run --no-wait -- npx vitest run       # exit ${EXIT.LOCK_BUSY} if another run holds the lock
  $ seq-test run --wait-timeout 120 -- make check  # exit ${EXIT.WAIT_TIMEOUT} after 2 minutes in the queue
  $ seq-test run --key shared-gpu --slots 2 -- ./train.sh
  $ seq-test run --slots auto -- npm test          # as many at once as memory allows (docs/memory.md)

Set SEQ_TEST_DISABLE=1 to run without the lock.`,
    )
    .action(async (command: string[], raw: RawRunOptions, cmd: Command) => {
      // Project settings (package.json "seqTest" / .seqtestrc.json) fill the flags not given.
      process.exitCode = await runLocked(command, applyProjectDefaults(raw, cmd, { lock: true }));
    });
}

async function runLocked(command: string[], raw: RawRunOptions): Promise<number> {
  // First: started by the launcher, our environment still holds its variables (nothing may inherit them).
  const launcher = takeLauncher();
  // Validate everything before joining the queue: bad input must leave no ticket behind.
  const options = toExecOptions(raw, command);
  const { slots, auto } = parseSlotsOptions(raw, command, process.cwd());
  const waitTimeoutMs = raw.waitTimeout === undefined ? undefined : parseSeconds('--wait-timeout', raw.waitTimeout);
  if (raw.key !== undefined && raw.key.trim() === '') throw new SeqTestError('--key expects a non-empty name');
  resolveCommand(command[0] ?? '');

  if (process.env.SEQ_TEST_DISABLE === '1') {
    say('SEQ_TEST_DISABLE=1: running without the lock');
    closePlan(launcher);
    return runExec(command, raw);
  }

  const waitLine = new WaitLine(process.stderr, Boolean(raw.quiet));
  const autoRun = auto ? new AutoHolder(auto, (message) => say(`warning: ${message}`)) : undefined;
  const controller = new ExecController();
  const aborter = new AbortController();
  let phase: 'waiting' | 'running' = 'waiting';
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => {
      if (phase === 'waiting')
        aborter.abort(new SeqTestError(`interrupted by ${signal} while waiting`, 128 + signalNumber(signal)));
      else controller.interrupt(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    // The run is made ready as soon as we are queued (its helper started, parked), so that our turn
    // starts the command with one write; a failed or abandoned wait dismisses it.
    let prepared: PreparedExec | undefined;
    let held: LockHandle | undefined;
    let lastWait: WaitInfo | undefined;
    try {
      const lock = await acquireLock({
        key: raw.key,
        slots,
        command: command.join(' '),
        noWait: raw.wait === false,
        waitTimeoutMs,
        signal: aborter.signal,
        ...(autoRun ? { admission: autoRun.hook } : {}),
        ...(launcher
          ? {
              owner: launcher.owner,
              resumeTicket: launcher.resume,
              handOff: (plan: HandOffPlan) => {
                if (!handOffTo(launcher, plan)) return false;
                if (waitLine.live) {
                  // The live line stops here: leave it as a plain line while the launcher waits.
                  waitLine.done(undefined);
                  if (lastWait)
                    say(`${describeWait(lastWait)}; waiting in the launcher until ${plan.near} or fewer are ahead`);
                }
                return true;
              },
            }
          : {}),
        onQueued: (ticket, token) => {
          closePlan(launcher);
          prepared?.cancel();
          prepared = prepareExec({
            ...options,
            token,
            // Which ticket this run holds (number-token), for logs and for tests that check FIFO order.
            env: { ...process.env, SEQ_TEST_TICKET: ticket.name.replace(/\.json$/, '') },
            controller,
            onNotice: say,
            onNarrate: raw.verbose ? say : undefined,
            // Auto mode: our command ended, only leftovers linger (--linger bounds them): tell the waiting
            // head we will not grow. Not with --wait-all: there the leftovers are work the user waits for.
            ...(autoRun && !options.waitAll
              ? { onCommandEnded: () => held && autoRun.commandEnded(held.queue, held.ticket) }
              : {}),
          });
        },
        onWait: (info) => {
          lastWait = info;
          waitLine.update(info);
        },
        // Off a terminal the line is printed once: the queue need not be read in full four times a second.
        waitReportMs: waitLine.reportEveryMs,
        onWarning: (message) => say(`warning: ${message}`),
      }).catch((error: unknown) => {
        if (!(error instanceof HandedOff)) waitLine.done(undefined);
        throw error;
      });
      waitLine.done(lock.waitedMs >= 1 ? `our turn after ${formatDuration(lock.waitedMs)}` : undefined);
      if (raw.verbose && autoRun?.admittedBecause) say(`admitted (--slots auto): ${autoRun.admittedBecause}`);
      held = lock;
      phase = 'running';
      try {
        if (aborter.signal.aborted) throw aborter.signal.reason;
        const run = prepared as PreparedExec;
        prepared = undefined;
        autoRun?.started(lock.queue, lock.ticket.name);
        const result = await run.run();
        autoRun?.finished(!result.timedOut && !result.memoryExceeded && !result.interrupted && result.signal === null);
        if (raw.json)
          process.stdout.write(
            `${JSON.stringify({ ...toJson(result), lock: { key: lock.key, waitedMs: lock.waitedMs, nested: lock.nested } }, null, 2)}\n`,
          );
        return result.exitCode;
      } finally {
        autoRun?.finished(false);
        lock.release();
      }
    } catch (error) {
      // The launcher waits from here, with our ticket; it starts us again near the head.
      if (error instanceof HandedOff) return 0;
      throw error;
    } finally {
      prepared?.cancel();
    }
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
