import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  expectedWaitMs,
  HAND_OVER_FROM_MS,
  NODE_WAITERS_AT_MOST,
  PACE_FILE,
  readPace,
  recordHold,
  worthHandingOver,
} from '../src/lock/pace.js';
import type { QueueEntry } from '../src/lock/queue.js';

const writer = `${process.pid}.1.abcdef`;

/** A live entry ahead: holding since `startedAt`, or waiting (null). */
const entry = (startedAt: number | null): QueueEntry =>
  ({
    name: 'x',
    file: 'x',
    number: 1,
    token: 't',
    owner: { pid: 1, start: 1 },
    alive: true,
    ticket: { startedAt },
  }) as unknown as QueueEntry;

describe('the pace of a queue (recent hold times)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'seq-test-pace-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('records the most recent eight holds, whole files only (no temp file left)', () => {
    for (let ms = 1; ms <= 10; ms++) recordHold(dir, writer, ms * 100);
    expect(readPace(dir)).toEqual([300, 400, 500, 600, 700, 800, 900, 1000]);
    expect(JSON.parse(readFileSync(join(dir, PACE_FILE), 'utf8'))).toEqual({
      v: 1,
      holdsMs: [300, 400, 500, 600, 700, 800, 900, 1000],
    });
    expect(execFileSync('ls', ['-A', dir], { encoding: 'utf8' }).trim()).toBe(PACE_FILE);
  });

  it('ignores what is not a pace: garbage, another version, wrong types, absurd figures', () => {
    const cases: [string, number[]][] = [
      ['not json', []],
      ['{"v":2,"holdsMs":[1,2,3]}', []],
      ['{"v":1,"holdsMs":"1,2,3"}', []],
      ['{"v":1,"holdsMs":[1,"2",null,-5,1e300,3]}', [1, 3]],
      ['[1,2,3]', []],
      ['null', []],
    ];
    for (const [text, expected] of cases) {
      writeFileSync(join(dir, PACE_FILE), text);
      expect(readPace(dir)).toEqual(expected);
    }
    writeFileSync(join(dir, PACE_FILE), '{"v":1,"holdsMs":[1,3]}');
    recordHold(dir, writer, Number.NaN);
    recordHold(dir, writer, -1);
    expect(readPace(dir)).toEqual([1, 3]);
  });

  it('never follows a symbolic link nor reads a directory or a FIFO', () => {
    const elsewhere = join(dir, 'elsewhere');
    writeFileSync(elsewhere, '{"v":1,"holdsMs":[1,2,3]}');
    symlinkSync(elsewhere, join(dir, PACE_FILE));
    expect(readPace(dir)).toEqual([]);
    rmSync(join(dir, PACE_FILE));
    mkdirSync(join(dir, PACE_FILE));
    expect(readPace(dir)).toEqual([]);
    recordHold(dir, writer, 100); // cannot replace a directory: best effort, no throw
    rmSync(join(dir, PACE_FILE), { recursive: true });
    execFileSync('mkfifo', [join(dir, PACE_FILE)]);
    expect(readPace(dir)).toEqual([]);
  });

  it('expects a wait from the median hold: waiters ahead count it whole, a holder what is left of it', () => {
    const now = 1_000_000;
    const holds = [100, 200, 300, 400, 10_000];
    expect(expectedWaitMs(holds.slice(0, 2), [entry(null)], 1, now)).toBeUndefined();
    expect(expectedWaitMs(holds, [entry(null), entry(null)], 1, now)).toBe(600);
    // A holder that has held 100 ms of a usual 300: 200 left.
    expect(expectedWaitMs(holds, [entry(now - 100), entry(null)], 1, now)).toBe(500);
    // A holder already far past the usual hold is likely a long one: as long again as it has held.
    expect(expectedWaitMs(holds, [entry(now - 8000), entry(null)], 1, now)).toBe(8300);
    // Two slots share the work ahead.
    expect(expectedWaitMs(holds, [entry(null), entry(null)], 2, now)).toBe(300);
  });

  it('hands a far wait over unless the pace says it is short, and always beyond the cap', () => {
    const ahead = (n: number) => Array.from({ length: n }, () => entry(null));
    expect(worthHandingOver(dir, ahead(4), 1)).toBe(true); // nothing known
    for (const ms of [100, 100, 100]) recordHold(dir, writer, ms);
    expect(worthHandingOver(dir, ahead(4), 1)).toBe(false);
    expect(worthHandingOver(dir, ahead(Math.ceil(HAND_OVER_FROM_MS / 100)), 1)).toBe(true);
    for (const ms of [1, 1, 1, 1, 1, 1, 1, 1]) recordHold(dir, writer, ms);
    expect(worthHandingOver(dir, ahead(NODE_WAITERS_AT_MOST), 1)).toBe(false);
    expect(worthHandingOver(dir, ahead(NODE_WAITERS_AT_MOST + 1), 1)).toBe(true);
  });
});
