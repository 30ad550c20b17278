import { SETTLE_MS } from '../ownership.js';
import type { RunTracker, SampleRequest, TreeSample } from '../tracker.js';
import { pause } from './timers.js';

/** Samples the run's tree for what is alive and the peaks of memory and process count. */
export class TreeSampler {
  peakRssBytes = 0;
  peakProcesses = 0;
  /** Sees every sample (the memory limit). */
  onSample: ((sample: TreeSample) => void) | undefined;

  constructor(
    /** Absent when nothing was started (spawn failed). */
    private readonly tracker: RunTracker | undefined,
    /** Whether the helper said its subtree is empty (a walk can then stop at it). */
    private readonly subtreeEmpty: () => boolean,
  ) {}

  sample(request: SampleRequest = {}): TreeSample {
    if (!this.tracker) return { alive: [], rssBytes: 0, costMs: 0, full: true, unsettled: false };
    if (this.subtreeEmpty()) this.tracker.markSubtreeEmpty();
    const sample = this.tracker.sample(request);
    this.peakRssBytes = Math.max(this.peakRssBytes, sample.rssBytes);
    this.peakProcesses = Math.max(this.peakProcesses, sample.alive.length);
    this.onSample?.(sample);
    return sample;
  }

  /**
   * What is left of the tree; an empty subtree is confirmed by a full sweep (token carriers outside it). A
   * look that finds nothing while some environment read empty (a process inside execve: `sh -c 'job &'`
   * with sh already reaped leaves the job findable by its token only) is repeated SETTLE_MS later, so that
   * one such read cannot end the wait for leftovers or the ending of the tree.
   */
  async remaining(): Promise<TreeSample> {
    const sample = this.look();
    if (sample.alive.length > 0 || !sample.unsettled) return sample;
    await pause(SETTLE_MS);
    return this.look();
  }

  private look(): TreeSample {
    const sample = this.sample();
    return sample.alive.length > 0 || sample.full ? sample : this.sample({ full: true });
  }

  /**
   * Background sampling for peaks and the memory limit while the main command runs, paced by what a sweep
   * costs; `mainEnded` cuts the pause short. After it ends, the leftover wait samples instead.
   */
  async whileRunning(running: () => boolean, mainEnded: Promise<unknown>): Promise<void> {
    while (running()) {
      const { costMs } = this.sample();
      await pause(Math.min(1000, Math.max(100, costMs * 10)), mainEnded);
    }
  }
}
