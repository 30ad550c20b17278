import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { identityOf, type ProcessIdentity } from '../src/identity.js';
import {
  fingerprintOf,
  HISTORY_KEEP,
  historyFile,
  historyLockFile,
  predictMargin,
  predictPeak,
  type RunRecord,
  readHistory,
  recordRun,
  steadyMargin,
} from '../src/memory/history.js';
import { createToken } from '../src/token.js';

const MiB = 1024 ** 2;
const what = { argv: ['npm', 'test'], cwd: '/home/me/app' };
const run = (peakBytes: number, over: Partial<RunRecord> = {}): RunRecord => ({
  peakBytes,
  durationMs: 1000,
  endedAt: 1_764_000_000_000,
  measure: 'pss',
  ...over,
});

describe('memory history', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'seq-test-history-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const fp = fingerprintOf(what);
  const file = () => historyFile(dir, fp);
  const write = (content: unknown) => {
    mkdirSync(join(dir, 'history'), { recursive: true, mode: 0o700 });
    writeFileSync(file(), typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
  };

  it('fingerprints differ by argv, cwd, runner and config', () => {
    const all = [
      what,
      { ...what, argv: ['npm', 'test', '--', 'a'] },
      { ...what, cwd: '/home/me/other' },
      { ...what, runner: 'vitest' },
      { ...what, runner: 'vitest', config: '/home/me/app/vitest.config.ts' },
      { argv: ['npm test'], cwd: '/home/me/app' },
    ];
    expect(new Set(all.map(fingerprintOf)).size).toBe(all.length);
    expect(fingerprintOf(what)).toMatch(/^[0-9a-f]{24}$/);
  });

  it('records runs privately, newest last, keeping the last HISTORY_KEEP', () => {
    expect(readHistory(dir, fp)).toEqual({ fingerprint: fp, runs: [], problems: [] });
    for (let i = 1; i <= HISTORY_KEEP + 5; i++) expect(recordRun(dir, what, run(i * MiB))).toBeUndefined();
    const history = readHistory(dir, fp);
    expect(history.problems).toEqual([]);
    expect(history.runs.map((r) => r.peakBytes / MiB)).toEqual(Array.from({ length: HISTORY_KEEP }, (_, i) => i + 6));
    expect(statSync(join(dir, 'history')).mode & 0o777).toBe(0o700);
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file(), 'utf8'));
    expect(stored).toMatchObject({ v: 2, fingerprint: fp, what });
  });

  const peaks = (...mib: number[]) => mib.map((m) => run(m * MiB));

  it('predicts a high percentile of recent peaks plus a margin, not the mean', () => {
    expect(predictPeak([])).toBeNull();
    // Nine runs at 100 MiB and one at 1000: the mean would be 190; the 90th percentile is 100 (and the one
    // far above it keeps the margin at its most).
    expect(predictPeak(peaks(...Array(9).fill(100), 1000))).toBe(Math.ceil(100 * MiB * 1.15));
    // Two of ten high: the 90th percentile is high (and the spread of the ten, past it, adds 900 / 9).
    expect(predictPeak(peaks(...Array(8).fill(100), 1000, 1000))).toBe(Math.ceil((1000 + 900 / 9) * MiB * 1.15));
    // Only the ten most recent count: an old spike is forgotten.
    expect(predictPeak(peaks(5000, ...Array(10).fill(100)))).toBe(Math.ceil(105 * MiB));
  });

  it('the margin is wide while few runs are known: 75 % from one, then 60, 45, 30; from five on 5 % plus the spread', () => {
    // Equal peaks: 5 % from five on.
    expect([1, 2, 3, 4, 5, 6, 10, 20].map((n) => predictMargin(n, 100, 100, 100))).toEqual([
      0.75, 0.6, 0.45, 0.3, 0.05, 0.05, 0.05, 0.05,
    ]);
    // Peaks spread over 10 % of p or more: 15 %, the most.
    expect([4, 5, 10].map((n) => predictMargin(n, 100, 90, 100))).toEqual([0.3, 0.15, 0.15]);
    expect([4, 5, 10].map((n) => predictMargin(n, 100, 1, 100))).toEqual([0.3, 0.15, 0.15]);
    expect([4, 5, 10].map((n) => predictMargin(n, 100, 100, 110))).toEqual([0.3, 0.15, 0.15]);
    // In between: 5 % plus the spread (highest − lowest) over p.
    expect(predictMargin(5, 100, 96, 100)).toBeCloseTo(0.09, 12);
    expect(steadyMargin(400, 398, 400)).toBe(0.05 + 2 / 400);
    expect(steadyMargin(400, 398, 404)).toBe(0.05 + 6 / 400);
    // Equal peaks: the margin alone.
    const equal = [1, 2, 3, 4, 5, 10].map((n) => predictPeak(peaks(...Array(n).fill(100))));
    expect(equal).toEqual([175, 160, 145, 130, 105, 105].map((m) => Math.ceil(m * MiB)));
    expect(equal[0]).toBe(Math.ceil(100 * MiB * 1.75));
  });

  it('peaks that agree get the least margin: the Vitest fixture’s, 432 to 436 MiB over ten runs', () => {
    // Issue 17's benchmark: with 15 % on top (~502 MiB) two of these runs did not fit a 1141 MiB limit
    // beside the reserve, where they did fit; 5 % plus the 1 % spread covers what the history shows.
    const vitest = peaks(432, 433, 433, 434, 434, 435, 435, 435, 436, 436);
    const p = 436 * MiB;
    const lowest = 432 * MiB;
    expect(predictPeak(vitest)).toBe(Math.ceil((p + (p - lowest) / 9) * (1 + 0.05 + (p - lowest) / p)));
    expect(predictPeak(vitest)).toBeLessThan(465 * MiB);
    // One run an outlier below (a run cut short): its spread lifts the margin to 15 % again.
    expect(predictPeak(peaks(380, ...Array(9).fill(436)))).toBe(Math.ceil((436 + 56 / 9) * MiB * 1.15));
    // One run above the others: the percentile leaves it out, but it lifts the margin (here to 15 %, which
    // covers it: 436 × 1.15 = 501.4 ≥ 480).
    const above = predictPeak(peaks(...Array(9).fill(436), 480)) as number;
    expect(above).toBe(Math.ceil(436 * MiB * 1.15));
    expect(above).toBeGreaterThan(480 * MiB);
  });

  it('spread peaks raise it: the next run may go past the highest by the spread over n − 1', () => {
    // Two: 200 × 1.6 = 320 from the count, (200 + 100) × 1.15 = 345 from the spread.
    expect(predictPeak(peaks(100, 200))).toBe(Math.ceil((200 + 100 / 1) * MiB * 1.15));
    // The heavy Jest fixture's recorded peaks (issue 17: in band, its buffers freed only when the GC runs).
    // Four: 501 × 1.3 = 651.3 from the count beats (501 + 138 / 3) × 1.15 = 629.05.
    expect(predictPeak(peaks(501, 489, 365, 363))).toBe(Math.ceil(501 * MiB * 1.3));
    // Five: (627 + 264 / 4) × 1.15 = 796.95 beats 627 × 1.15 = 721.05.
    expect(predictPeak(peaks(627, 501, 489, 365, 363))).toBe(Math.ceil((627 + 264 / 4) * MiB * 1.15));
    // Ten spread evenly, 100 to 1000: the 90th percentile is 900, plus (900 − 100) / 9, plus 15 %.
    const ten = peaks(...Array.from({ length: 10 }, (_, i) => (i + 1) * 100));
    expect(predictPeak(ten)).toBe(Math.ceil((900 + 800 / 9) * MiB * 1.15));
    // The spread never lowers it: whatever the peaks, at least the percentile plus the count's margin.
    for (const series of [peaks(100, 100), peaks(100, 101), peaks(363, 365, 364)])
      expect(predictPeak(series)).toBe(
        Math.ceil(Math.max(...series.map((r) => r.peakBytes)) * (1 + predictMargin(series.length, 0, 0, 0))),
      );
  });

  it('one run of the Jest fixture at its lowest recorded peak predicts its highest (15 % admitted runs that did not fit)', () => {
    // Recorded peaks of one command, five consecutive runs: 363 to 627 MiB.
    for (const low of [363, 365]) expect(predictPeak(peaks(low))).toBeGreaterThanOrEqual(627 * MiB);
  });

  it.each([
    ['garbage', 'not json {'],
    ['an array', [1, 2]],
    ['another version', { v: 1, fingerprint: 'x', runs: [] }],
    ['a newer version', { v: 3, fingerprint: 'x', runs: [] }],
    ['no runs', { v: 2, fingerprint: fingerprintOf(what) }],
    ['someone else’s fingerprint', { v: 2, fingerprint: '0'.repeat(24), runs: [run(MiB)] }],
  ])('a file that is %s is ignored and reported', (_name, content) => {
    write(content);
    const history = readHistory(dir, fp);
    expect(history.runs).toEqual([]);
    expect(history.problems).toHaveLength(1);
    expect(history.problems[0]).toContain(file());
    expect(predictPeak(history.runs)).toBeNull();
  });

  it('hostile entries (huge, NaN-like, negative, wrong types) are skipped and counted; good ones kept', () => {
    write({
      v: 2,
      fingerprint: fp,
      runs: [
        run(100 * MiB),
        { ...run(1), peakBytes: 1e300 },
        { ...run(1), peakBytes: 'NaN' },
        { ...run(1), peakBytes: null },
        { ...run(1), peakBytes: -5 },
        { ...run(1), peakBytes: 0 },
        { ...run(1), peakBytes: 1.5 },
        { ...run(1), durationMs: -1 },
        { ...run(1), measure: 'vibes' },
        'a string',
        null,
        [1],
        run(200 * MiB),
      ],
    });
    const history = readHistory(dir, fp);
    expect(history.runs.map((r) => r.peakBytes)).toEqual([100 * MiB, 200 * MiB]);
    expect(history.problems).toEqual([`${file()}: 11 invalid run entries ignored`]);
  });

  it('a symlinked history file is never followed, and recording replaces the link, not its target', () => {
    const target = join(dir, 'elsewhere.json');
    writeFileSync(target, JSON.stringify({ v: 2, fingerprint: fp, runs: [run(MiB)] }));
    mkdirSync(join(dir, 'history'), { mode: 0o700 });
    symlinkSync(target, file());
    const history = readHistory(dir, fp);
    expect(history.runs).toEqual([]);
    expect(history.problems[0]).toContain('symbolic link');
    expect(recordRun(dir, what, run(7 * MiB))).toBeUndefined();
    expect(JSON.parse(readFileSync(target, 'utf8')).runs).toHaveLength(1);
    expect(readHistory(dir, fp).runs.map((r) => r.peakBytes)).toEqual([7 * MiB]);
  });

  it('a symlinked, foreign-mode or non-directory history dir is refused for reading and writing', () => {
    const real = join(dir, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(dir, 'history'));
    expect(readHistory(dir, fp).problems[0]).toContain('symbolic link');
    expect(recordRun(dir, what, run(MiB))).toContain('symbolic link');
    rmSync(join(dir, 'history'));
    mkdirSync(join(dir, 'history'), { mode: 0o700 });
    chmodSync(join(dir, 'history'), 0o777);
    expect(readHistory(dir, fp).problems[0]).toContain('world writable');
    expect(recordRun(dir, what, run(MiB))).toContain('world writable');
    rmSync(join(dir, 'history'), { recursive: true });
    writeFileSync(join(dir, 'history'), '');
    expect(readHistory(dir, fp).problems[0]).toContain('not a directory');
  });

  it('a huge file is not read; an invalid run is not recorded', () => {
    write(`{"v":2,"runs":[${'1,'.repeat(200_000)}1]}`);
    expect(readHistory(dir, fp).problems[0]).toContain('larger than');
    expect(recordRun(dir, what, run(Number.NaN))).toContain('not recording an invalid run');
    expect(recordRun(dir, what, run(MiB, { durationMs: -1 }))).toContain('not recording an invalid run');
  });

  it("a dead writer's lock (or a link in its place) is removed; a live writer's is waited for, then the run is skipped", () => {
    const lock = historyLockFile(dir, fp);
    mkdirSync(join(dir, 'history'), { mode: 0o700 });
    // Our pid with another start time: a writer that died and whose pid was reused.
    writeFileSync(lock, `${process.pid}.1.abcdef`, { mode: 0o600 });
    expect(recordRun(dir, what, run(1 * MiB))).toBeUndefined();
    const target = join(dir, 'target');
    writeFileSync(target, 'untouched');
    symlinkSync(target, lock);
    expect(recordRun(dir, what, run(2 * MiB))).toBeUndefined();
    expect(readFileSync(target, 'utf8')).toBe('untouched');
    expect(readHistory(dir, fp).runs.map((r) => r.peakBytes)).toEqual([1 * MiB, 2 * MiB]);
    expect(readdirSync(join(dir, 'history'))).toEqual([`${fp}.json`]);
    // Held by a live writer (this process) past the bound: one line, nothing recorded, the lock left alone.
    const live = createToken(identityOf(process.pid) as ProcessIdentity).value;
    writeFileSync(lock, live, { mode: 0o600 });
    expect(recordRun(dir, what, run(3 * MiB))).toMatch(/is held by .* for over 2000 ms; this run is not recorded/);
    expect(readFileSync(lock, 'utf8')).toBe(live);
    expect(readHistory(dir, fp).runs).toHaveLength(2);
  });

  it('an invalid fingerprint is refused without touching the disk', () => {
    expect(readHistory(dir, '../../etc/passwd').problems[0]).toContain('invalid fingerprint');
  });
});
