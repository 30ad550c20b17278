import { identityKey, SETTLE_MS } from '../ownership.js';
import type { ProcessInfo } from '../proc/index.js';
import type { RunTracker, SampleRequest, TreeSample } from '../tracker.js';
import { pause } from './timers.js';

/** A process's CPU time as last sampled, and the first sample that showed that figure. */
interface CpuSeen {
  ticks: number;
  since: number;
}

/**
 * Samples the run's tree for what is alive, the peaks of memory and process count, and since when each
 * process has used no CPU (read from the same samples: no extra look at the table).
 */
export class TreeSampler {
  peakRssBytes = 0;
  peakProcesses = 0;
  /** Sees every sample (the memory limit). */
  onSample: ((sample: TreeSample) => void) | undefined;
  /** By identity, for the processes alive at the last sample. */
  private cpu = new Map<string, CpuSeen>();

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
    this.noteCpu(sample.alive, performance.now());
    this.onSample?.(sample);
    return sample;
  }

  /**
   * The latest moment from which every one of `alive` (as just sampled) is known to have used no CPU: the
   * first sample that showed its current CPU time. Undefined when that cannot be told for one of them (a
   * table without CPU times, such as macOS) or one is running or in disk wait right now. CPU time comes in
   * whole clock ticks, so "no CPU" means less than one tick (usually 10 ms) over that time.
   */
  idleSince(alive: ProcessInfo[]): number | undefined {
    let latest = Number.NEGATIVE_INFINITY;
    for (const info of alive) {
      const seen = this.cpu.get(identityKey(info));
      if (!seen || info.state === 'R' || info.state === 'D') return undefined;
      latest = Math.max(latest, seen.since);
    }
    return alive.length > 0 ? latest : undefined;
  }

  // Kept for the processes of this sample only: the map stays as small as the tree. A process missing from
  // one sample starts over, which can only make it look busier than it was.
  private noteCpu(alive: ProcessInfo[], now: number): void {
    const cpu = new Map<string, CpuSeen>();
    for (const info of alive) {
      if (info.cpuTicks === undefined || Number.isNaN(info.cpuTicks)) continue;
      const k = identityKey(info);
      const before = this.cpu.get(k);
      cpu.set(k, before?.ticks === info.cpuTicks ? before : { ticks: info.cpuTicks, since: now });
    }
    this.cpu = cpu;
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
