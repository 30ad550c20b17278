import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { fingerprintOf, readHistory } from '../src/memory/history.js';

/**
 * Runs that end together append to one history: each holds the history lock for its read-append-rename,
 * so no run's entry is dropped by another's rename (a lost update, issue 17). Real processes through the
 * built package, released at once by a gate (a line on every stdin) round after round.
 */

const INTERNAL = fileURLToPath(new URL('../dist/internal.js', import.meta.url));
const WRITERS = 8;
const ROUNDS = 12;

// Waits for a round number on stdin, appends one run (peak = its writer number) to that round's history.
const WRITER = `
import { recordRun } from ${JSON.stringify(INTERNAL)};
import { createInterface } from 'node:readline';
const [dir, index] = process.argv.slice(1);
process.stdout.write('ready\\n');
for await (const round of createInterface({ input: process.stdin })) {
  const problem = recordRun(dir, { argv: ['round', round], cwd: '/' }, {
    peakBytes: Number(index) + 1, durationMs: 1, endedAt: Number(round), measure: 'rss' });
  process.stdout.write((problem ?? 'ok') + '\\n');
}
`;

let dir: string;
const writers: ChildProcess[] = [];
afterEach(() => {
  for (const child of writers.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

it('eight runs ending at once, round after round: every run is recorded', async () => {
  dir = mkdtempSync(join(tmpdir(), 'seq-test-history-writers-'));
  const lines: AsyncIterator<string>[] = [];
  for (let index = 0; index < WRITERS; index++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, dir, String(index)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    writers.push(child);
    lines.push(createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]());
  }
  const answers = () => Promise.all(lines.map(async (line) => (await line.next()).value));
  expect(await answers()).toEqual(Array(WRITERS).fill('ready'));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const child of writers) child.stdin?.write(`${round}\n`);
    expect(await answers()).toEqual(Array(WRITERS).fill('ok'));
    const history = readHistory(dir, fingerprintOf({ argv: ['round', String(round)], cwd: '/' }));
    expect(history.problems).toEqual([]);
    expect(history.runs.map((run) => run.peakBytes).sort((a, b) => a - b)).toEqual(
      Array.from({ length: WRITERS }, (_, i) => i + 1),
    );
  }
  // Nothing left behind but the histories: no lock, no temp file.
  expect(readdirSync(join(dir, 'history')).filter((name) => !name.endsWith('.json'))).toEqual([]);
});
