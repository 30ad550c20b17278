import { type CommandIdentity, recordRun } from './history.js';
import { type MemoryMeasure, memoryOf, treeProcesses } from './measure.js';

/** One phase of a sampling schedule: sample every `everyMs` until `untilMs` after the start. */
export interface SamplePhase {
  untilMs: number;
  everyMs: number;
}

/**
 * How often a holder measures its own tree for the history (a children walk and one smaps_rollup per
 * process, about 3 ms of kernel time for each Node process holding a few hundred MiB): every 100 ms for
 * the first 2 s, so that a short run's peak is seen at all, then every 500 ms. Measured on the heavy Vitest
 * fixture, this halves what sampling costs (0.42 s of CPU per run with 50 ms then 250 ms, 0.23 s now) for a
 * peak within 2 % of the same; a spike shorter than 500 ms after the first 2 s may be missed (figures and
 * command in docs/memory.md, "What sampling costs").
 */
export const SAMPLE_SCHEDULE: readonly SamplePhase[] = [
  { untilMs: 2000, everyMs: 100 },
  { untilMs: Infinity, everyMs: 500 },
];

/**
 * Measures the peak memory of a process tree (by default this process's) while it holds, and records it
 * in the key's history when the run ends on its own. Sampled on SAMPLE_SCHEDULE, so a spike shorter than
 * the period is missed: the peak is a floor, which is why the prediction takes a high percentile and adds
 * a margin.
 */
export class PeakRecorder {
  private peak = 0;
  private measure: MemoryMeasure = 'pss';
  private timer: NodeJS.Timeout | undefined;
  private readonly began = performance.now();
  private stopped = false;

  constructor(
    private readonly root: number = process.pid,
    private readonly schedule: readonly SamplePhase[] = SAMPLE_SCHEDULE,
  ) {
    this.sample();
    this.next();
  }

  private next(): void {
    if (this.stopped) return;
    const elapsed = performance.now() - this.began;
    const phase = this.schedule.find((p) => elapsed < p.untilMs) ?? this.schedule[this.schedule.length - 1];
    if (!phase) return;
    this.timer = setTimeout(() => {
      this.sample();
      this.next();
    }, phase.everyMs);
    this.timer.unref();
  }

  sample(): void {
    if (this.stopped) return;
    const tree = treeProcesses(this.root);
    // Pss ≤ RSS: a tree whose summed RSS is not above the peak cannot be above it in Pss either, so the
    // smaps_rollup reads (a page-table walk each, milliseconds for a tree holding hundreds of MiB) are
    // skipped: between a suite's heavy phases and while leftovers linger. (The kernel's RSS counters can
    // lag by a few pages per thread: far below the prediction's margin.)
    if (tree.reduce((sum, info) => sum + info.rssBytes, 0) <= this.peak) return;
    const now = memoryOf(tree.map((info) => info.pid));
    if (now.bytes > this.peak) {
      this.peak = now.bytes;
      this.measure = now.measure;
    }
  }

  get peakBytes(): number {
    return this.peak;
  }

  /**
   * Stops sampling. `completed`: the command ended on its own (whatever its exit status). A run that was
   * interrupted, timed out or ended for memory records nothing: its peak says nothing about a whole run.
   * Returns a problem to report, if any.
   */
  finish(queueDir: string, what: CommandIdentity, completed: boolean): string | undefined {
    if (this.stopped) return undefined;
    this.sample();
    this.stopped = true;
    clearTimeout(this.timer);
    if (!completed || this.peak <= 0) return undefined;
    return recordRun(queueDir, what, {
      peakBytes: Math.round(this.peak),
      durationMs: Math.round(performance.now() - this.began),
      endedAt: Date.now(),
      measure: this.measure,
    });
  }

  cancel(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
