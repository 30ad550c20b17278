import { existingStateDir, parseSeconds, SeqTestError } from '@seq-test/core/internal';
import type { Command } from 'commander';

const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 1000;

export function registerMonitor(program: Command): void {
  program
    .command('monitor')
    .summary('live full-screen view of the queue; cancel a run')
    .description(
      'What `seq-test status` shows, refreshed live: holders and waiters with their place, pid, command, cwd,\n' +
        'wait and hold times, memory and process count, nested runs, and leftovers of dead runs.\n' +
        'Keys: up/down or k/j select, g/G first/last, c cancel the selected run, waiting or holding (asks y/n;\n' +
        'as `seq-test cancel`: SIGTERM, SIGKILL after 5 s, leftovers ended, ticket gone), q or Ctrl-C quit.\n' +
        'A run whose parent is gone (re-parented: nobody reads its result) is marked [re-parented].',
    )
    .option('--key <key>', 'lock key (default: $SEQ_TEST_KEY, else the git top-level, else cwd)')
    .option('--all-keys', 'every queue of this user')
    .option('--interval <sec>', 'seconds between refreshes (0.1 to 1)', '0.5')
    .addHelpText('after', '\nExamples:\n  $ seq-test monitor\n  $ seq-test monitor --all-keys --interval 1')
    .action(async (raw: { key?: string; allKeys?: boolean; interval?: string }) => {
      const intervalMs = parseInterval(raw.interval ?? '0.5');
      if (raw.key !== undefined && raw.key.trim() === '') throw new SeqTestError('--key expects a non-empty name');
      existingStateDir(); // refused exactly as `run` refuses it, before anything else is said
      if (!process.stdout.isTTY || !process.stdin.isTTY) {
        throw new SeqTestError(
          `monitor needs a terminal (${process.stdout.isTTY ? 'stdin' : 'stdout'} is not a TTY); use \`seq-test status\` (or \`seq-test status --json\`) instead`,
        );
      }
      // Ink renders only the last frame when it believes it runs in CI (it reads $CI when it is loaded);
      // we already know there is a terminal to draw on. React's development build is slower and chattier.
      delete process.env.CI;
      delete process.env.CONTINUOUS_INTEGRATION;
      process.env.NODE_ENV ??= 'production';
      // Loaded only here, so Ink and React cost nothing to `run`, `exec` and `status`.
      const { runMonitor } = await import('../monitor/screen.js');
      process.exitCode = await runMonitor({ key: raw.key, allKeys: Boolean(raw.allKeys), intervalMs });
    });
}

function parseInterval(value: string): number {
  const ms = parseSeconds('--interval', value);
  if (ms < MIN_INTERVAL_MS || ms > MAX_INTERVAL_MS) {
    throw new SeqTestError(
      `--interval expects seconds between ${MIN_INTERVAL_MS / 1000} and ${MAX_INTERVAL_MS / 1000}, got "${value}"`,
    );
  }
  return ms;
}
