import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { identityOf, isAlive } from '../identity.js';
import { readRegularFile, unlinkQuiet, writeAtomic } from '../lock/queue.js';
import { createToken, parseToken } from '../token.js';
import type { MemoryMeasure } from './measure.js';

/**
 * Memory history of `--slots auto` (docs/PROTOCOL.md, version 2, "History"): each finished run of a
 * command records its tree's peak memory and duration, per key (the queue dir) and command fingerprint:
 *
 *   <queue dir>/history/<fingerprint>.json
 *   {"v":2,"fingerprint":"…","what":{…},"runs":[{"peakBytes":…,"durationMs":…,"endedAt":…,"measure":"pss"}]}
 *
 * Files are private (0600 in a 0700 directory), written whole (temp file + rename), read without
 * following symbolic links; a file or entry that is not what this version writes (garbage, hostile
 * figures, another version) is ignored and reported, never trusted and never a crash.
 */
export const HISTORY_VERSION = 2;
/** Runs kept per fingerprint, newest last. */
export const HISTORY_KEEP = 20;
/** The prediction looks at this many recent runs. */
export const PREDICT_FROM = 10;
/** Percentile of recent peaks taken as the prediction. */
export const PREDICT_PERCENTILE = 0.9;
/**
 * The margin from five runs on, at most: peaks spread over 10 % or more of p (the Jest fixture's 363 to 627
 * MiB) get all of it, on top of the spread rule of predictPeak.
 */
export const PREDICT_MARGIN = 0.15;
/**
 * The margin from five runs on, at least: for peaks that agree (the Vitest fixture's ten peaks within 1 %),
 * what the history cannot show (a spike the 500 ms sampling missed in every run, a few tests added). The
 * margin is this plus the peaks' spread over p, up to PREDICT_MARGIN: 15 % on a command that peaks alike
 * every time made a 1.1 GiB limit hold one run where two fitted (issue 17's benchmark, docs/memory.md).
 */
export const PREDICT_MARGIN_LEAST = 0.05;
/**
 * The margin with 1, 2, 3, 4 runs known: 75 % down to 15 % at five, evenly. A peak seen once says little:
 * the next run peaks above it one time in two (above the highest of n runs: one time in n + 1), and by how
 * much is unknown. One command's peaks measured 363 to 627 MiB in five runs (Jest in band frees each test
 * file's buffers only when the GC runs: docs/memory.md), a ratio of 1.73: 75 % covers that from one run,
 * where 15 % let more runs into a 2005 MiB memory limit than fitted (issue 17's benchmark). Each further run
 * known takes 15 points off, down to the steady margin at five: wide enough for a first batch, and by the time
 * a handful of runs are known the percentile (and the spread rule of predictPeak) carries the knowledge.
 */
export const PREDICT_MARGINS: readonly number[] = [0.75, 0.6, 0.45, 0.3];
/** Bounds of a believable entry: at most 1 PiB, at most 30 days. */
const MAX_PEAK = 2 ** 50;
const MAX_DURATION = 30 * 24 * 3600 * 1000;
const MAX_FILE = 256 * 1024;
/** How long a writer waits for another writer of the same history before it skips recording its run. */
export const HISTORY_LOCK_WAIT_MS = 2000;
/** Between two looks at a busy lock: a writer holds it for a read, a JSON write and a rename (about a ms). */
const HISTORY_LOCK_POLL_MS = 3;

export interface RunRecord {
  peakBytes: number;
  durationMs: number;
  /** ms since the epoch. */
  endedAt: number;
  measure: MemoryMeasure;
}

/** What a fingerprint is made of: the command and where it runs; for an integration, the runner and its config. */
export interface CommandIdentity {
  argv: string[];
  cwd: string;
  runner?: string;
  config?: string;
}

export interface History {
  fingerprint: string;
  runs: RunRecord[];
  /** Why (part of) the file was ignored; empty when all was well. */
  problems: string[];
}

export function fingerprintOf(what: CommandIdentity): string {
  const canonical = JSON.stringify([what.argv, what.cwd, what.runner ?? null, what.config ?? null]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 24);
}

export function historyDir(queueDir: string): string {
  return join(queueDir, 'history');
}

export function historyFile(queueDir: string, fingerprint: string): string {
  return join(historyDir(queueDir), `${fingerprint}.json`);
}

/** Reads a fingerprint's history; anything wrong is reported in `problems`, never thrown. */
export function readHistory(queueDir: string, fingerprint: string): History {
  const result: History = { fingerprint, runs: [], problems: [] };
  if (!/^[0-9a-f]{24}$/.test(fingerprint)) {
    result.problems.push(`invalid fingerprint ${JSON.stringify(fingerprint)}`);
    return result;
  }
  const dirProblem = checkDir(historyDir(queueDir));
  if (dirProblem === 'absent') return result;
  if (dirProblem) {
    result.problems.push(dirProblem);
    return result;
  }
  const file = historyFile(queueDir, fingerprint);
  const text = readPrivate(file);
  if (text === undefined) return result;
  if (typeof text !== 'string') {
    result.problems.push(`${file}: ${text.problem}; ignored`);
    return result;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    result.problems.push(`${file}: not valid JSON; ignored`);
    return result;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    result.problems.push(`${file}: not a JSON object; ignored`);
    return result;
  }
  const record = data as Record<string, unknown>;
  if (record.v !== HISTORY_VERSION) {
    result.problems.push(
      `${file}: history of protocol version ${JSON.stringify(record.v)} (we read ${HISTORY_VERSION}); ignored`,
    );
    return result;
  }
  if (record.fingerprint !== fingerprint || !Array.isArray(record.runs)) {
    result.problems.push(`${file}: fingerprint or runs missing or wrong; ignored`);
    return result;
  }
  let bad = 0;
  for (const entry of record.runs.slice(-HISTORY_KEEP)) {
    const run = validRun(entry);
    if (run) result.runs.push(run);
    else bad++;
  }
  if (bad > 0) result.problems.push(`${file}: ${bad} invalid run entr${bad === 1 ? 'y' : 'ies'} ignored`);
  return result;
}

/**
 * Appends a finished run (keeping the newest HISTORY_KEEP). A file that could not be trusted is replaced
 * by one holding only valid entries. Errors (a damaged history dir, a full disk) are returned, not thrown:
 * a history that cannot be written must never fail the run.
 */
export function recordRun(queueDir: string, what: CommandIdentity, run: RunRecord): string | undefined {
  const checked = validRun(run);
  if (!checked) return `not recording an invalid run (${JSON.stringify(run)})`;
  const fingerprint = fingerprintOf(what);
  const dir = historyDir(queueDir);
  try {
    let problem = checkDir(dir);
    if (problem === 'absent') {
      // Two first runs may both make it: the second one checks the first's like any other.
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      problem = checkDir(dir);
    }
    if (problem) return problem === 'absent' ? `${dir} vanished while being made; this run is not recorded` : problem;
    // The temp file and the lock are named after a token of this process, as every writer's in the state dir.
    const self = identityOf(process.pid);
    const writer = self ? createToken(self).value : `${process.pid}.0.000000`;
    const lock = historyLockFile(queueDir, fingerprint);
    const busy = takeHistoryLock(dir, lock, writer);
    if (busy) return busy;
    try {
      // A file we could not trust (a symlink, another version) is replaced: rename swaps the directory
      // entry and never writes through a link.
      const previous = readHistory(queueDir, fingerprint);
      const runs = [...previous.runs, checked].slice(-HISTORY_KEEP);
      writeAtomic(dir, historyFile(queueDir, fingerprint), writer, { v: HISTORY_VERSION, fingerprint, what, runs });
    } finally {
      releaseHistoryLock(lock, writer);
    }
    return undefined;
  } catch (error) {
    return `could not record memory history in ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
}

export function historyLockFile(queueDir: string, fingerprint: string): string {
  return join(historyDir(queueDir), `${fingerprint}.lock`);
}

/**
 * Serializes the read-append-rename of one history (two runs ending together would otherwise each rename
 * a file holding only their own new entry, one dropping the other's). The lock is a file holding the
 * writer's token, put in place whole by link() (which fails if it exists), so it is never seen empty. One
 * whose owner is dead is moved aside and removed. Waits in short polls, at most HISTORY_LOCK_WAIT_MS: a
 * history must never hold up a run's exit for long. Returns undefined once held, else the problem.
 */
function takeHistoryLock(dir: string, lock: string, writer: string): string | undefined {
  const temp = join(dir, `.tmp-${writer}-lock`);
  writeFileSync(temp, writer, { mode: 0o600, flag: 'wx' });
  try {
    const deadline = performance.now() + HISTORY_LOCK_WAIT_MS;
    for (;;) {
      try {
        linkSync(temp, lock);
        return undefined;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = lockOwner(lock);
      if (owner === 'dead') removeDeadLock(dir, lock, writer);
      else if (performance.now() >= deadline)
        return `memory history ${lock} is held by ${owner ?? 'another writer'} for over ${HISTORY_LOCK_WAIT_MS} ms; this run is not recorded`;
      else Atomics.wait(sleeper, 0, 0, HISTORY_LOCK_POLL_MS);
    }
  } finally {
    unlinkQuiet(temp);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** The lock's token, 'dead' when its owner is gone or it is not a lock we wrote (a link, garbage), undefined when absent. */
function lockOwner(lock: string): string | 'dead' | undefined {
  let text: string | undefined;
  try {
    text = readRegularFile(lock);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? undefined : 'dead';
  }
  const token = text === undefined ? undefined : parseToken(text.trim());
  return token && isAlive(token.owner) ? token.value : 'dead';
}

/**
 * Moves a dead writer's lock aside under our own name before removing it, then checks what was moved: if
 * another writer took the lock in between (it judged the same dead lock a moment before us), its live lock
 * is put back where it was (link fails if a third writer holds it already).
 */
function removeDeadLock(dir: string, lock: string, writer: string): void {
  const aside = join(dir, `.tmp-${writer}-stale`);
  try {
    renameSync(lock, aside);
  } catch {
    return;
  }
  try {
    if (lockOwner(aside) !== 'dead') linkSync(aside, lock);
  } catch {}
  unlinkQuiet(aside);
}

function releaseHistoryLock(lock: string, writer: string): void {
  try {
    if (readRegularFile(lock)?.trim() === writer) unlinkSync(lock);
  } catch {}
}

/**
 * The margin once five runs or more are known (docs/PROTOCOL.md, "History"): PREDICT_MARGIN_LEAST plus the
 * recent peaks' spread (highest − lowest) relative to p, at most PREDICT_MARGIN. The highest counts although
 * the percentile leaves it out: one run well above the others says the command can do that again.
 */
export function steadyMargin(peak: number, lowest: number, highest: number): number {
  return Math.min(PREDICT_MARGIN, PREDICT_MARGIN_LEAST + (highest - lowest) / peak);
}

/** The margin for a prediction made from `known` recent runs whose p, lowest and highest peaks are given. */
export function predictMargin(known: number, peak: number, lowest: number, highest: number): number {
  return PREDICT_MARGINS[known - 1] ?? steadyMargin(peak, lowest, highest);
}

/**
 * A run's predicted peak from its command's history (docs/PROTOCOL.md, "History"; the pytest bridge's
 * predict_peak is the same rule, and the conformance tests hold them to it); null when nothing is known.
 * Of the last PREDICT_FROM peaks (n of them), p is the nearest-rank 90th percentile, the larger of:
 *  - p × (1 + predictMargin(n)): a margin that is wide while few runs are known, then steadyMargin;
 *  - (p + (p − lowest) / (n − 1)) × (1 + steadyMargin), n ≥ 2: where the peaks are spread out, the next
 *    run may go past p by about the spread over n − 1 (for peaks spread evenly over a range, the unbiased
 *    estimate of its top is highest + (highest − lowest) / (n − 1)). It only ever raises the prediction:
 *    equal peaks say little about the next one while few are known (the Jest fixture peaked 365 then 363,
 *    then 627 MiB).
 */
export function predictPeak(runs: readonly RunRecord[]): number | null {
  const recent = runs.slice(-PREDICT_FROM).map((r) => r.peakBytes);
  const n = recent.length;
  if (n === 0) return null;
  recent.sort((a, b) => a - b);
  // Nearest rank: the smallest peak with at least 90 % of the recent peaks at or below it.
  const rank = Math.max(1, Math.ceil(PREDICT_PERCENTILE * n));
  const peak = recent[rank - 1] as number;
  const lowest = recent[0] as number;
  const highest = recent[n - 1] as number;
  const fewKnown = peak * (1 + predictMargin(n, peak, lowest, highest));
  const spread = n < 2 ? 0 : (peak + (peak - lowest) / (n - 1)) * (1 + steadyMargin(peak, lowest, highest));
  return Math.ceil(Math.max(fewKnown, spread));
}

function validRun(entry: unknown): RunRecord | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
  const e = entry as Record<string, unknown>;
  const whole = (n: unknown, max: number): n is number =>
    typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= max;
  if (!whole(e.peakBytes, MAX_PEAK) || e.peakBytes === 0) return undefined;
  if (!whole(e.durationMs, MAX_DURATION) || !whole(e.endedAt, Number.MAX_SAFE_INTEGER)) return undefined;
  if (e.measure !== 'pss' && e.measure !== 'rss' && e.measure !== 'mixed') return undefined;
  return { peakBytes: e.peakBytes, durationMs: e.durationMs, endedAt: e.endedAt, measure: e.measure };
}

/** 'absent', undefined when the directory is ours and private, else the problem. */
function checkDir(dir: string): string | undefined {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    return `${dir}: cannot be read (${(error as NodeJS.ErrnoException).code}); memory history ignored`;
  }
  if (stat.isSymbolicLink()) return `${dir} is a symbolic link; memory history ignored (remove it)`;
  if (!stat.isDirectory()) return `${dir} is not a directory; memory history ignored (remove it)`;
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
    return `${dir} belongs to another user; memory history ignored`;
  }
  if (stat.mode & 0o022) return `${dir} is group or world writable; memory history ignored (chmod 700 it)`;
  return undefined;
}

/** The file's text, undefined when absent, or the reason it is not trusted (never followed through a link). */
function readPrivate(file: string): string | undefined | { problem: string } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') return { problem: 'a symbolic link' };
    return { problem: `cannot be read (${code})` };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { problem: 'not a regular file' };
    if (typeof process.getuid === 'function' && stat.uid !== process.getuid())
      return { problem: "another user's file" };
    if (stat.size > MAX_FILE) return { problem: `larger than ${MAX_FILE} bytes` };
    const buffer = Buffer.alloc(stat.size);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, length);
      if (n === 0) break;
      length += n;
    }
    return buffer.toString('utf8', 0, length);
  } catch (error) {
    return { problem: `cannot be read (${(error as NodeJS.ErrnoException).code})` };
  } finally {
    closeSync(fd);
  }
}
