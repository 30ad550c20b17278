import type { ProcessInfo } from '../proc/index.js';
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

/** A tree is read again at least this often, whatever its RSS says (see PeakRecorder.sample). */
export const RECHECK_MS = 2000;
/**
 * How far above the peak the estimate must be for a read: 2 % of the peak (at least 1 MiB, the kernel's RSS
 * counters lagging by a few pages). A tree on its plateau moves by a few MiB from allocation to allocation,
 * and a walk for each move costs more than it tells: a rise this small is far below the prediction's margin.
 */
const peakNoise = (peak: number) => Math.max(1024 ** 2, peak / 50);

const idOf = (info: ProcessInfo) => `${info.pid}:${info.start}`;

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
  /** Each process (pid:start) at the last Pss read: RSS − Pss, and its shared anonymous memory (smapsOf). */
  private last = new Map<string, { excess: number; sharedAnon: number | undefined }>();
  private readAt = -Infinity;
  private reads = 0;

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
    const now = performance.now();
    // Pss ≤ RSS for every process, and what a process's RSS has over its Pss (its share of libraries and of
    // pages shared with other processes) hardly moves between two looks. So the tree's Pss is estimated as
    // Σ (RSS − that excess found at the process's last smaps_rollup read), and the reads (a page-table walk
    // each: about 5 ms per 300 MiB here, 20 ms for a `pytest -n 4` tree of 1.3 GiB) are made only when the
    // estimate is above the peak by more than peakNoise, or, RECHECK_MS after the last ones, when a process
    // shared anonymous pages then: pages inherited over fork become private when written, which raises Pss
    // at the same RSS. (Shared file pages, libraries, can only add their few MiB.) A process not read yet
    // counts its whole RSS.
    let estimate = 0;
    let mayTurnPrivate = false;
    for (const info of tree) {
      const last = this.last.get(idOf(info));
      estimate += Math.max(0, info.rssBytes - (last?.excess ?? 0));
      if (last?.sharedAnon !== 0) mayTurnPrivate = true;
    }
    const recheck = mayTurnPrivate && now - this.readAt >= RECHECK_MS;
    if (estimate <= this.peak + peakNoise(this.peak) && !recheck) return;
    this.readAt = now;
    this.reads++;
    const byPid = new Map(tree.map((info) => [info.pid, info]));
    const last = new Map<string, { excess: number; sharedAnon: number | undefined }>();
    const read = memoryOf(byPid.keys(), (pid, one) => {
      const info = byPid.get(pid) as ProcessInfo;
      if (one.measure === 'pss') {
        last.set(idOf(info), { excess: Math.max(0, info.rssBytes - one.bytes), sharedAnon: one.sharedAnon });
      }
    });
    this.last = last;
    if (read.bytes > this.peak) {
      this.peak = read.bytes;
      this.measure = read.measure;
    }
  }

  /** How many times the tree's Pss was read (each a smaps_rollup read per process): for tests and benches. */
  get pssReads(): number {
    return this.reads;
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
