import type { ProcessInfo } from '../proc/index.js';
import { type CommandIdentity, recordRun } from './history.js';
import { fileRssOf, type MemoryMeasure, measureOf, memoryOf, treeProcesses } from './measure.js';

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
 * A process at its last read: how much its RSS was above its Pss (0 where its RSS had to serve), how much
 * anonymous memory it shared and how much of its RSS was not anonymous (Smaps; undefined where the kernel
 * does not say or Pss was unreadable), and which figure it gave.
 */
interface LastRead {
  excess: number;
  sharedAnon: number | undefined;
  fileRss: number | undefined;
  measure: 'pss' | 'rss';
}

/** A process's memory now as estimated from its RSS and its last read (none yet: its whole RSS). */
const figureOf = (info: ProcessInfo, last: LastRead | undefined) => Math.max(0, info.rssBytes - (last?.excess ?? 0));

/**
 * Whether a process's Pss surely moved as its RSS did since its last read: it shared no anonymous page then,
 * and its resident file pages (which count in Pss only in part) moved by at most FILE_DRIFT since.
 * `fileRssNow`: read only when the answer matters (fileRssOf).
 */
function followsRss(last: LastRead | undefined, fileRssNow?: () => number | undefined): boolean {
  if (last?.sharedAnon !== 0 || last.fileRss === undefined) return false;
  if (!fileRssNow) return true;
  const now = fileRssNow();
  return now !== undefined && Math.abs(now - last.fileRss) <= FILE_DRIFT;
}

/**
 * How far a process's resident file pages may move before its Pss is read again: a page of a library shared
 * with N processes raises RSS by a page and Pss by 1/N of one, so the estimate errs high by at most this.
 */
const FILE_DRIFT = 1024 ** 2;

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
  /** Each process of the tree (pid:start) as last read: see LastRead. */
  private last = new Map<string, LastRead>();
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
    // pages shared with other processes) hardly moves between two looks; a page a process makes its own (an
    // allocation it writes) raises its RSS and its Pss alike. So the tree's Pss is estimated as
    // Σ (RSS − that excess found at the process's last smaps_rollup read), a process not read yet counting
    // its whole RSS, and the reads (a page-table walk each: about 5 ms per 300 MiB here, 20 ms for a
    // `pytest -n 4` tree of 1.3 GiB) are made only where the estimate may be wrong, and only when the
    // estimate says the tree may be above its peak. A process that shared no anonymous page at its last read,
    // and whose resident file pages hardly moved since, follows its RSS (followsRss): it is not read again,
    // which keeps a tree of workers ramping up to their peak from being walked at every sample. The others
    // (not read yet, or sharing anonymous pages) are read again RECHECK_MS after the last reads anyway: pages
    // inherited over fork become private when written, which raises Pss at the same RSS.
    let estimate = 0;
    let unsure = false;
    for (const info of tree) {
      const last = this.last.get(idOf(info));
      estimate += figureOf(info, last);
      if (!followsRss(last)) unsure = true;
    }
    const recheck = unsure && now - this.readAt >= RECHECK_MS;
    // Where every figure follows RSS, the estimate is the tree's Pss: any rise counts, at no read's cost.
    if (estimate <= this.peak + (unsure ? peakNoise(this.peak) : 0) && !recheck) return;
    const last = new Map<string, LastRead>();
    const toRead: ProcessInfo[] = [];
    const rest: ProcessInfo[] = [];
    for (const info of tree) {
      const one = this.last.get(idOf(info));
      if (one) last.set(idOf(info), one);
      if (followsRss(one, () => fileRssOf(info.pid))) rest.push(info);
      else toRead.push(info);
    }
    // A process seen for the first time that shares anonymous pages was forked: the process it shares them
    // with now has a smaller Pss than its estimate, so the others are read too (the estimate errs only high
    // there, but a peak recorded high costs every later run room it does not need).
    if (this.read(toRead, last)) this.read(rest, last);
    this.last = last;
    let bytes = 0;
    let pss = 0;
    let rss = 0;
    for (const info of tree) {
      const one = last.get(idOf(info));
      if (!one) continue; // gone before it could be read
      bytes += figureOf(info, one);
      if (one.measure === 'pss') pss++;
      else rss++;
    }
    if (bytes > this.peak) {
      this.peak = bytes;
      this.measure = measureOf(pss, rss);
    }
  }

  /**
   * Reads these processes' Pss (their RSS where it is unreadable) into `into`. True when one of them, not
   * read before, shares anonymous pages (or does not say): it may have been forked.
   */
  private read(infos: readonly ProcessInfo[], into: Map<string, LastRead>): boolean {
    if (infos.length === 0) return false;
    this.readAt = performance.now();
    const byPid = new Map(infos.map((info) => [info.pid, info]));
    let forked = false;
    memoryOf(byPid.keys(), (pid, one) => {
      this.reads++;
      const info = byPid.get(pid) as ProcessInfo;
      const id = idOf(info);
      const pss = one.measure === 'pss' ? one : undefined;
      if (pss?.sharedAnon !== 0 && !into.has(id)) forked = true;
      into.set(id, {
        excess: Math.max(0, info.rssBytes - one.bytes),
        sharedAnon: pss?.sharedAnon,
        fileRss: pss?.fileRss,
        measure: one.measure,
      });
    });
    return forked;
  }

  /** How many smaps_rollup reads sampling made (one per process read): for tests and benches. */
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
