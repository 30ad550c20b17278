import { type CommandIdentity, recordRun } from './history.js';
import { type MemoryMeasure, memoryOf, treeProcesses } from './measure.js';

/**
 * How often a holder measures its own tree for the history (a children walk and one smaps_rollup per
 * process): often at first, so that a short run's peak is seen at all, then every 250 ms.
 */
const FIRST_SAMPLES_MS = 50;
const FIRST_PERIOD_MS = 2000;
const SAMPLE_EVERY_MS = 250;

/**
 * Measures the peak memory of this process's tree while it holds, and records it in the key's history
 * when the run ends on its own. Samples every 50 ms for the first 2 s, then every 250 ms, so a spike
 * shorter than that can be missed: the peak is a floor, which is why the prediction takes a high
 * percentile and adds a margin.
 */
export class PeakRecorder {
  private peak = 0;
  private measure: MemoryMeasure = 'pss';
  private timer: NodeJS.Timeout;
  private readonly began = performance.now();
  private stopped = false;

  constructor(private readonly root: number = process.pid) {
    this.sample();
    this.timer = setInterval(() => {
      this.sample();
      if (performance.now() - this.began < FIRST_PERIOD_MS || this.stopped) return;
      clearInterval(this.timer);
      this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
      this.timer.unref();
    }, FIRST_SAMPLES_MS);
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
    clearInterval(this.timer);
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
    clearInterval(this.timer);
  }
}
