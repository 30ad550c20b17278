import {
  endProcesses,
  existingStateDir,
  findLeftovers,
  liveRuns,
  parseSeconds,
  stateDirScope,
  visitQueues,
} from '@seq-test/core/internal';
import type { Command } from 'commander';
import { say } from '../report.js';

export function registerReap(program: Command): void {
  program
    .command('reap')
    .summary('end processes left behind by runs that are gone')
    .description(
      'Ends (TERM, then KILL) every process of yours that carries the token of a run whose owner is no longer ' +
        'alive and that ran under this state dir, and removes dead tickets. Never signals a process without ' +
        "such a token. A process belongs to the state dir its environment's SEQ_TEST_STATE_DIR names, or to the " +
        'default one when it has none: runs with another SEQ_TEST_STATE_DIR (a test sandbox) are left alone.',
    )
    .option('--dry-run', 'list what would be ended, end nothing')
    .option('--json', 'machine-readable output')
    .option('--grace <sec>', 'seconds between TERM and KILL', '1')
    .addHelpText('after', '\nExamples:\n  $ seq-test reap --dry-run\n  $ seq-test reap')
    .action(async (raw: { dryRun?: boolean; json?: boolean; grace: string }) => {
      const graceMs = parseSeconds('--grace', raw.grace);
      // Validated exactly as `run` validates it, before anything is signalled or removed.
      const stateDir = existingStateDir();
      // A live run (even one still waiting) is never another run's leftover, whatever token it inherited.
      // Only this state dir's runs: another SEQ_TEST_STATE_DIR's are someone else's (a test's sandbox).
      const found = findLeftovers({ liveRuns: stateDir ? liveRuns(stateDir) : [], scope: stateDirScope() });
      const ended = raw.dryRun ? found.map((p) => ({ ...p, signal: null })) : await endProcesses(found, graceMs);
      const removed = raw.dryRun || !stateDir ? [] : removeDeadTickets(stateDir);
      if (raw.json) {
        process.stdout.write(
          `${JSON.stringify({ dryRun: Boolean(raw.dryRun), processes: ended, removedTickets: removed }, null, 2)}\n`,
        );
        return;
      }
      if (ended.length === 0) say('no leftovers of dead runs');
      for (const p of ended) {
        process.stdout.write(`${raw.dryRun ? 'would end' : `ended (${p.signal})`}  pid ${p.pid}  ${p.command}\n`);
      }
      for (const file of removed) process.stdout.write(`removed dead ticket ${file}\n`);
    });
}

/**
 * Dead tickets (and dead overflow tickets) of every key; no reaping needed here: their leftovers were just
 * ended.
 */
function removeDeadTickets(stateDir: string): string[] {
  const removed: string[] = [];
  visitQueues(stateDir, (queue, state) => {
    for (const file of state.deadOverflow) {
      queue.removeFile(file);
      removed.push(file);
    }
    for (const t of state.tickets) {
      if (t.alive) continue;
      queue.remove(t);
      removed.push(t.file);
    }
  });
  return removed;
}
