import { identityOf, signalIdentity } from '../identity.js';
import type { Queue } from '../lock/queue.js';
import { descendantsOf } from '../ownership.js';
import { type AutoSettings, defaultReserve } from './auto.js';
import { availableMemory } from './available.js';
import { treeMemory } from './measure.js';

/** How often a holder with `--on-pressure pause` looks at the machine's memory. */
const CHECK_EVERY_MS = 500;

/**
 * `--on-pressure pause`: while several runs hold and available memory falls below the reserve, the
 * youngest holder (the last to start) stops its own command tree with SIGSTOP, and continues it (SIGCONT)
 * once twice the reserve is available again or it is the only holder left. Each holder decides for
 * itself and signals only its own descendants (pid + start time re-checked), never another run.
 *
 * Caveats (docs): a paused run's wall-clock timeouts keep counting (seq-test's --timeout, a test
 * runner's per-test timeouts, network peers that drop idle connections); a paused tree keeps the memory
 * it has (pausing stops the growth, it frees nothing); a process that handles SIGCONT may notice.
 */
export class PressureGuard {
  private readonly timer: NodeJS.Timeout;
  private paused = new Map<number, { pid: number; start: number }>();

  constructor(
    private readonly queue: Queue,
    private readonly ticketName: string,
    private readonly settings: Pick<AutoSettings, 'budgetBytes' | 'reserveBytes'>,
    private readonly onNotice: (line: string) => void = () => {},
    private readonly root: number = process.pid,
  ) {
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  get isPaused(): boolean {
    return this.paused.size > 0;
  }

  check(): void {
    const holders = this.queue
      .read()
      .tickets.filter((t) => t.alive && t.ticket?.startedAt !== null && t.ticket?.startedAt !== undefined);
    // With a budget, what is left of it (budget − the holders' trees now) is what counts, as in admission.
    const budget = this.settings.budgetBytes;
    const machine = budget === undefined ? availableMemory() : undefined;
    if (budget === undefined && !machine) return;
    const available =
      budget === undefined
        ? (machine?.bytes as number)
        : budget - holders.reduce((sum, h) => sum + treeMemory(h.owner.pid).bytes, 0);
    const reserve = this.settings.reserveBytes ?? defaultReserve(budget ?? machine?.totalBytes ?? 0);
    const youngest = [...holders]
      .sort((a, b) => (a.ticket?.startedAt ?? 0) - (b.ticket?.startedAt ?? 0) || (a.name < b.name ? -1 : 1))
      .at(-1);
    if (this.paused.size === 0) {
      if (holders.length > 1 && youngest?.name === this.ticketName && available < reserve) {
        this.pause(
          // With a budget, what is left of it goes below zero when the holders have outgrown it: say 0.
          `memory is short (${Math.round(Math.max(0, available) / 2 ** 20)} MiB available, reserve ${Math.round(reserve / 2 ** 20)} MiB): pausing this run until it returns`,
        );
      }
    } else if (holders.length <= 1 || available >= 2 * reserve) {
      this.resume(holders.length <= 1 ? 'the only run left: continuing' : 'memory returned: continuing');
    }
  }

  private pause(why: string): void {
    const root = identityOf(this.root);
    if (!root) return;
    for (const info of descendantsOf(root)) {
      const identity = { pid: info.pid, start: info.start };
      if (signalIdentity(identity, 'SIGSTOP')) this.paused.set(info.pid, identity);
    }
    if (this.paused.size > 0) this.onNotice(why);
  }

  private resume(why: string): void {
    for (const identity of this.paused.values()) signalIdentity(identity, 'SIGCONT');
    this.paused.clear();
    this.onNotice(why);
  }

  /** Continues anything still paused (the run is ending) and stops watching. */
  stop(): void {
    clearInterval(this.timer);
    for (const identity of this.paused.values()) signalIdentity(identity, 'SIGCONT');
    this.paused.clear();
  }
}
