import { realpathSync } from 'node:fs';
import {
  type AdmissionHook,
  AutoAdmission,
  type AutoSettings,
  type CommandIdentity,
  defaultMaxSlots,
  PeakRecorder,
  type PressureAction,
  PressureGuard,
  parseBudget,
  parseCount,
  parsePressureAction,
  parseSlots,
  type Queue,
  SeqTestError,
} from '@seq-test/core';
import type { Command } from 'commander';

/** Raw values of the `--slots auto` options (commander's strings). */
export interface RawAutoOptions {
  slots?: string;
  maxSlots?: string;
  memoryBudget?: string;
  onPressure?: string;
}

export interface AutoMode {
  settings: AutoSettings;
  onPressure: PressureAction;
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

/** What a holding `seq-test run` does in auto mode: measures its tree, and pauses under pressure if asked. */
export class AutoRun {
  private admission: AutoAdmission | undefined;
  private queueDir: string | undefined;
  private recorder: PeakRecorder | undefined;
  private guard: PressureGuard | undefined;

  constructor(
    private readonly auto: AutoMode,
    private readonly warn: (message: string) => void,
  ) {}

  /** For acquireLock's `admission` option. */
  readonly hook = (queueDir: string): AdmissionHook => {
    this.queueDir = queueDir;
    this.admission = new AutoAdmission(queueDir, this.auto.settings, this.warn);
    return this.admission;
  };

  /** We hold: start measuring (and watching for pressure). */
  started(queue: Queue, ticketName: string): void {
    if (!this.admission) return; // nested: a run inside a holder is part of that holder's tree
    this.recorder = new PeakRecorder();
    if (this.auto.onPressure === 'pause') {
      const admission = this.admission;
      this.guard = new PressureGuard(queue, ticketName, (available) => admission.reserveFor(available), this.warn);
    }
  }

  /** The run ended; `completed`: on its own (not interrupted, timed out or ended for memory). */
  finished(completed: boolean): void {
    this.guard?.stop();
    if (!this.recorder || !this.queueDir) return;
    const problem = this.recorder.finish(this.queueDir, this.auto.settings.what, completed);
    if (problem) this.warn(problem);
  }
}
