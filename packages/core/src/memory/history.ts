import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { identityOf } from '../identity.js';
import { writeAtomic } from '../lock/queue.js';
import { createToken } from '../token.js';
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
/** Percentile of recent peaks taken as the prediction, and the margin added on top. */
export const PREDICT_PERCENTILE = 0.9;
export const PREDICT_MARGIN = 0.15;
/** Bounds of a believable entry: at most 1 PiB, at most 30 days. */
const MAX_PEAK = 2 ** 50;
const MAX_DURATION = 30 * 24 * 3600 * 1000;
const MAX_FILE = 256 * 1024;

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
    const problem = checkDir(dir);
    if (problem === 'absent') mkdirSync(dir, { mode: 0o700 });
    else if (problem) return problem;
    // A file we could not trust (a symlink, another version) is replaced: rename swaps the directory
    // entry and never writes through a link.
    const previous = readHistory(queueDir, fingerprint);
    const runs = [...previous.runs, checked].slice(-HISTORY_KEEP);
    // The temp file is named after a token of this process, as every writer's in the state dir.
    const self = identityOf(process.pid);
    const writer = self ? createToken(self).value : `${process.pid}.0.000000`;
    writeAtomic(dir, historyFile(queueDir, fingerprint), writer, { v: HISTORY_VERSION, fingerprint, what, runs });
    return undefined;
  } catch (error) {
    return `could not record memory history in ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
}

/** A high percentile of the recent peaks plus a margin; null when nothing is known. */
export function predictPeak(runs: readonly RunRecord[]): number | null {
  const recent = runs.slice(-PREDICT_FROM).map((r) => r.peakBytes);
  if (recent.length === 0) return null;
  recent.sort((a, b) => a - b);
  // Nearest rank: the smallest peak with at least 90 % of the recent peaks at or below it.
  const rank = Math.max(1, Math.ceil(PREDICT_PERCENTILE * recent.length));
  const peak = recent[rank - 1] as number;
  return Math.ceil(peak * (1 + PREDICT_MARGIN));
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
