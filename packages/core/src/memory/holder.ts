import { existsSync } from 'node:fs';
import type { AdmissionHook } from '../lock/acquire.js';
import { type Queue, type QueueEntry, writeAtomic } from '../lock/queue.js';
import type { ProjectConfig } from '../project-config.js';
import { AutoAdmission, type AutoSettings, defaultMaxSlots } from './auto.js';
import type { CommandIdentity } from './history.js';
import { PressureGuard } from './pressure.js';
import { PeakRecorder } from './recorder.js';
import type { PressureAction } from './settings.js';

export interface AutoMode {
  settings: AutoSettings;
  onPressure: PressureAction;
}

/**
 * One run in `--slots auto` mode, for every kind of owner (`seq-test run`, the Vitest and Jest
 * integrations): the lock's admission hook, then, once it holds, the measurement of its own tree for the
 * history (and the pressure guard when asked for), and the record when it ends.
 */
export class AutoHolder {
  private admission: AutoAdmission | undefined;
  private queueDir: string | undefined;
  private recorder: PeakRecorder | undefined;
  private guard: PressureGuard | undefined;

  constructor(
    private readonly auto: AutoMode,
    private readonly warn: (message: string) => void,
  ) {}

  get maxSlots(): number {
    return this.auto.settings.maxSlots ?? defaultMaxSlots();
  }

  /** For acquireLock's `admission` option. */
  readonly hook = (queueDir: string): AdmissionHook => {
    this.queueDir = queueDir;
    this.admission = new AutoAdmission(queueDir, this.auto.settings, this.warn);
    return this.admission;
  };

  /** Why our ticket was admitted (the admission rule's line), once we hold; undefined for a nested run. */
  get admittedBecause(): string | undefined {
    return this.admission?.lastVerdict?.text;
  }

  /** We hold: start measuring (and watching for pressure). Nothing for a nested run (its holder measures). */
  started(queue: Queue, ticketName: string): void {
    if (!this.admission) return;
    this.recorder = new PeakRecorder();
    if (this.auto.onPressure === 'pause')
      this.guard = new PressureGuard(queue, ticketName, this.auto.settings, this.warn);
  }

  /**
   * Our command has ended and no further attempt will start; only leftovers may still run (until the
   * runner ends them, `--linger`). Says so in our ticket (`admission.endedAt`, docs/PROTOCOL.md version 2),
   * so that a waiting head no longer charges us the growth to our predicted peak: we cannot grow any more.
   * Best effort (a failed write only costs the head time); nothing for a nested run or a second call.
   */
  commandEnded(queue: Queue, mine: QueueEntry): void {
    const ticket = mine.ticket;
    const admission = ticket?.admission;
    if (!this.admission || !ticket || typeof admission !== 'object' || admission === null) return;
    // Already said, or our ticket is gone (removed by hand): never write one back.
    if ((admission as { endedAt?: unknown }).endedAt != null || !existsSync(mine.file)) return;
    const next = { ...ticket, admission: { ...admission, endedAt: Date.now() } };
    try {
      // Write + rename by the owner, as startedAt: readers never see half a ticket.
      writeAtomic(queue.ticketsDir, mine.file, mine.token, next);
      mine.ticket = next;
    } catch (error) {
      this.warn(`could not mark the run's command as ended in its ticket: ${(error as Error).message}`);
    }
  }

  /** The run ended; `completed`: on its own (not interrupted, timed out or killed). Safe to call twice. */
  finished(completed: boolean): void {
    this.guard?.stop();
    this.guard = undefined;
    if (!this.recorder || !this.queueDir) return;
    const problem = this.recorder.finish(this.queueDir, this.auto.settings.what, completed);
    if (problem) this.warn(problem);
  }
}

/**
 * The lock options for project settings (`"slots": "auto"`, `maxSlots`, `memoryBudget`), for the
 * integrations: a fixed count as before, or auto mode with its holder (see AutoHolder).
 */
export function autoFromSettings(
  config: Pick<ProjectConfig, 'slots' | 'maxSlots' | 'memoryBudgetBytes'>,
  what: CommandIdentity,
  warn: (message: string) => void,
): { slots: number | undefined; holder?: AutoHolder } {
  if (config.slots !== 'auto') return { slots: config.slots };
  const settings: AutoSettings = { what };
  if (config.maxSlots !== undefined) settings.maxSlots = config.maxSlots;
  if (config.memoryBudgetBytes !== undefined) settings.budgetBytes = config.memoryBudgetBytes;
  const holder = new AutoHolder({ settings, onPressure: 'wait' }, warn);
  return { slots: holder.maxSlots, holder };
}
