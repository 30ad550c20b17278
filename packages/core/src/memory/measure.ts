import { readFileSync } from 'node:fs';
import { identityOf } from '../identity.js';
import { descendantsOf } from '../ownership.js';
import { isGone, type ProcessInfo, processTable } from '../proc/index.js';
import { linuxPageSize } from '../proc/linux.js';

/**
 * How much memory a process tree really uses. Summed RSS counts every shared page (the runtime's code,
 * copy-on-write pages after fork) once per process that maps it, so four Vitest workers "use" several
 * times what they cost the machine. Proportional set size (Pss, /proc/PID/smaps_rollup, Linux ≥ 4.14)
 * splits each shared page among the processes that map it, so the figures of a tree add up to what it
 * costs. Where smaps_rollup cannot be read (macOS, an old kernel, a process of another user or a
 * non-dumpable one) the process's RSS is used instead and the result says so (`measure: 'rss'` or
 * `'mixed'`): RSS over-counts shared pages, so it errs on the safe side for admission.
 */
export type MemoryMeasure = 'pss' | 'rss' | 'mixed';

export interface TreeMemory {
  bytes: number;
  /** Which figure the total is made of. */
  measure: MemoryMeasure;
  /** The pids that were counted. */
  pids: number[];
}

/** Pss of one process in bytes, or undefined when smaps_rollup is unreadable (or absent). */
export function pssOf(pid: number): number | undefined {
  return smapsOf(pid)?.pss;
}

const RSS = /^Rss:\s+(\d+) kB$/m;
const PSS = /^Pss:\s+(\d+) kB$/m;
const ANONYMOUS = /^Anonymous:\s+(\d+) kB$/m;
const PSS_ANON = /^Pss_Anon:\s+(\d+) kB$/m;

/** What smapsOf reads of one process (bytes). */
export interface Smaps {
  pss: number;
  /**
   * How much of its anonymous memory it shares with other processes (pages inherited over fork and not yet
   * written: `Anonymous` − `Pss_Anon`; undefined where the kernel does not say, before Linux 5.9): what
   * copy-on-write can turn private, raising its Pss at the same RSS.
   */
  sharedAnon: number | undefined;
  /** Its resident pages that are not anonymous (`Rss` − `Anonymous`: files, libraries, shared memory). */
  fileRss: number | undefined;
}

/** One process's smaps_rollup (Smaps), or undefined when it is unreadable (or absent). */
export function smapsOf(pid: number): Smaps | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
  } catch {
    return undefined;
  }
  const kb = (field: RegExp) => {
    const match = field.exec(text);
    return match ? Number(match[1]) * 1024 : undefined;
  };
  const pss = kb(PSS);
  if (pss === undefined) return undefined;
  const rss = kb(RSS);
  const anonymous = kb(ANONYMOUS);
  const pssAnon = kb(PSS_ANON); // Linux ≥ 5.9
  return {
    pss,
    sharedAnon: anonymous !== undefined && pssAnon !== undefined ? Math.max(0, anonymous - pssAnon) : undefined,
    fileRss: rss !== undefined && anonymous !== undefined ? Math.max(0, rss - anonymous) : undefined,
  };
}

/**
 * A process's resident pages that are not anonymous (files, libraries, shared memory), from the kernel's
 * counters (/proc/PID/statm, no page-table walk: cheap enough to read at every sample); undefined when
 * unreadable. The counterpart of Smaps.fileRss.
 */
export function fileRssOf(pid: number): number | undefined {
  let fields: string[];
  try {
    fields = readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ');
  } catch {
    return undefined;
  }
  const pages = Number(fields[2]);
  return Number.isFinite(pages) ? pages * linuxPageSize() : undefined;
}

/** One process's memory: its Pss (with its shared anonymous memory, smapsOf), else its RSS. */
export type ProcessMemory =
  | ({ bytes: number; measure: 'pss' } & Omit<Smaps, 'pss'>)
  | { bytes: number; measure: 'rss' };

/** One process: its Pss, else its RSS; undefined when it is gone. */
export function processMemory(pid: number): ProcessMemory | undefined {
  const smaps = process.platform === 'linux' ? smapsOf(pid) : undefined;
  if (smaps !== undefined) {
    return { bytes: smaps.pss, measure: 'pss', sharedAnon: smaps.sharedAnon, fileRss: smaps.fileRss };
  }
  const info = processTable().get(pid);
  if (isGone(info) || !info) return undefined;
  return { bytes: info.rssBytes, measure: 'rss' };
}

/**
 * The memory of these processes together (gone ones count nothing). `each`: told every process counted,
 * with its own figure (the peak recorder keeps them).
 */
export function memoryOf(pids: Iterable<number>, each?: (pid: number, one: ProcessMemory) => void): TreeMemory {
  let bytes = 0;
  let pss = 0;
  let rss = 0;
  const counted: number[] = [];
  for (const pid of pids) {
    const one = processMemory(pid);
    if (!one) continue;
    each?.(pid, one);
    bytes += one.bytes;
    if (one.measure === 'pss') pss++;
    else rss++;
    counted.push(pid);
  }
  return { bytes, measure: measureOf(pss, rss), pids: counted };
}

/** What a total made of `pss` Pss figures and `rss` RSS figures is. */
export function measureOf(pss: number, rss: number): MemoryMeasure {
  return rss === 0 ? 'pss' : pss === 0 ? 'rss' : 'mixed';
}

/**
 * The memory of a process and everything below it (ownership's descendantsOf: children lists from the
 * root down). Processes that left the tree (setsid and re-parented to init) are not found; the runner's
 * subreaper helper keeps a `seq-test run` tree together, so there they are.
 */
export function treeMemory(root: number): TreeMemory {
  return memoryOf(treeProcesses(root).map((info) => info.pid));
}

/**
 * The processes of a tree (root first), with the RSS the walk reads anyway: its sum bounds the tree's Pss
 * from above (Pss ≤ RSS for every process), at the cost of no smaps_rollup read.
 */
export function treeProcesses(root: number): ProcessInfo[] {
  const identity = identityOf(root);
  const self = identity ? processTable().get(root) : undefined;
  if (!identity || !self || isGone(self)) return [];
  return [self, ...descendantsOf(identity)];
}
