import {
  CANCEL_GRACE_MS,
  type CancelOutcome,
  cancelRun,
  existingStateDir,
  findRunToCancel,
  parseSeconds,
  SeqTestError,
} from '@seq-test/core/internal';
import type { Command } from 'commander';

export function registerCancel(program: Command): void {
  program
    .command('cancel')
    .summary('end a waiting or holding run and clear up after it')
    .description(
      "Ends the run that a pid, token or ticket names (as `seq-test status` shows them): SIGTERM to its owner, SIGKILL after the grace if it is still there, then every process still carrying the run's token, as `seq-test reap` does; its ticket goes, so the next run in the queue starts. Only runs of your own user, and every signal only after checking pid and start time (a reused pid is never signalled).",
    )
    .argument('[run]', "the owner's pid, the run's token, or its ticket file (or $SEQ_TEST_TICKET)")
    .option('--grace <sec>', 'seconds between SIGTERM and SIGKILL', String(CANCEL_GRACE_MS / 1000))
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExamples:\n  $ seq-test cancel 4242\n  $ seq-test cancel --grace 1 4242.1234567.9f2c4e01ab33',
    )
    .action(async (target: string | undefined, raw: { grace: string; json?: boolean }) => {
      const graceMs = parseSeconds('--grace', raw.grace);
      if (target === undefined) {
        throw new SeqTestError(
          "cancel needs the run to end: its owner's pid, its token or its ticket, as `seq-test status` shows them (e.g. seq-test cancel 4242)",
        );
      }
      // Validated exactly as `run` validates it, before anything is looked up or signalled.
      const run = findRunToCancel(target, existingStateDir());
      const outcome = await cancelRun(run, { graceMs });
      if (!outcome.cancelled) throw new SeqTestError(outcome.reason);
      process.stdout.write(raw.json ? `${JSON.stringify(outcome, null, 2)}\n` : describeCancel(outcome));
    });
}

type Cancelled = Extract<CancelOutcome, { cancelled: true }>;

/** The CLI's report: the summary, then one line per leftover ended (as `seq-test reap` writes them). */
export function describeCancel(outcome: Cancelled): string {
  const lines = [summarizeCancel(outcome)];
  for (const p of outcome.leftovers) lines.push(`ended (${p.signal})  pid ${p.pid}  ${p.command}`);
  return `${lines.join('\n')}\n`;
}

/** What a cancel did, in one line (the monitor shows just this). */
export function summarizeCancel(outcome: Cancelled): string {
  const { pid, was, signal, command, leftovers } = outcome;
  const how =
    was === 'dead'
      ? `pid ${pid} was already gone (${command})`
      : `cancelled pid ${pid} (${was}: ${command}): ${signal ? `ended by ${signal}` : 'it exited before the signal'}`;
  const reaped = leftovers.length > 0 ? `; ${leftovers.length} leftover process(es) ended` : '';
  const ticket = outcome.ticketRemoved ? 'its ticket is gone' : 'its ticket is still there (see `seq-test status`)';
  return `${how}${reaped}; ${ticket}`;
}
