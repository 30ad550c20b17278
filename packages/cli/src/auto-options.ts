import { realpathSync } from 'node:fs';
import {
  type AutoMode,
  type AutoSettings,
  type CommandIdentity,
  defaultMaxSlots,
  parseBudget,
  parseCount,
  parsePressureAction,
  parseSlots,
  SeqTestError,
} from '@seq-test/core/internal';
import type { Command } from 'commander';

/** Raw values of the `--slots auto` options (commander's strings). */
export interface RawAutoOptions {
  slots?: string;
  maxSlots?: string;
  memoryBudget?: string;
  onPressure?: string;
}

/** The options of memory-aware admission, for `run`. */
export function addAutoOptions(command: Command): Command {
  return command
    .option('--max-slots <n>', 'with --slots auto: at most N runs at once (default: the number of cores)')
    .option(
      '--memory-budget <size>',
      'with --slots auto: memory the runs of this key may use together (512M, 8G) instead of what is available',
    )
    .option(
      '--on-pressure <action>',
      'with --slots auto, when memory runs short while several hold: wait (default) or pause the youngest',
    );
}

/**
 * Validates `--slots` and the auto options before anything joins the queue. Returns the fixed slot count,
 * or the auto mode; options that only mean something with `--slots auto` are an error without it.
 */
export function parseSlotsOptions(
  raw: RawAutoOptions,
  command: string[],
  cwd: string,
): { slots: number; auto?: AutoMode } {
  const slots = parseSlots('--slots', raw.slots ?? '1');
  if (slots !== 'auto') {
    for (const [flag, value] of [
      ['--max-slots', raw.maxSlots],
      ['--memory-budget', raw.memoryBudget],
      ['--on-pressure', raw.onPressure],
    ] as const) {
      if (value !== undefined) throw new SeqTestError(`${flag} only applies with --slots auto`);
    }
    return { slots };
  }
  const settings: AutoSettings = { what: identityOf(command, cwd) };
  if (raw.maxSlots !== undefined) settings.maxSlots = parseCount('--max-slots', raw.maxSlots, 1);
  if (raw.memoryBudget !== undefined) settings.budgetBytes = parseBudget('--memory-budget', raw.memoryBudget);
  const onPressure = raw.onPressure === undefined ? 'wait' : parsePressureAction('--on-pressure', raw.onPressure);
  const auto = { settings, onPressure };
  return { slots: settings.maxSlots ?? defaultMaxSlots(), auto };
}

/** The command fingerprint of a `seq-test run`: its argv and the real path of where it runs. */
function identityOf(argv: string[], cwd: string): CommandIdentity {
  let where = cwd;
  try {
    where = realpathSync(cwd);
  } catch {}
  return { argv, cwd: where };
}
