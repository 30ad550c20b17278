import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { endMarked, killPid, MARKER_ENV, waitFor } from '../../../../test/support/processes.js';
import { buildDenySyscalls } from '../fixtures/deny-syscalls.js';

/**
 * The helper's own tests, for any binary seq-test can ship: started the way @seq-test/core starts it, with
 * fd 3 a socket pair, it must report, park, ignore signals and adopt orphans as subreaper.c says. Used by
 * subreaper-helper.test.ts (the from-source build, default tier) and subreaper-platforms.matrix.test.ts
 * (the static platform packages, the arm64 one under qemu-user: they need musl-gcc, a cross compiler and
 * qemu-user).
 */

const CORE = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HELPERS_DIR = join(CORE, '..', 'helpers');
export const SOURCE_BUILD = join(CORE, 'dist', 'seq-test-subreaper');

export interface HelperUnderTest {
  name: string;
  binary: string;
  /** How to start it: [binary] or [emulator, binary]. */
  argv: string[];
  /** Under qemu-user: prctl(PR_SET_CHILD_SUBREAPER) is not emulated (qemu answers EINVAL). */
  emulated: boolean;
}

export function onPath(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

interface Started {
  child: ChildProcess;
  pid: number;
  lines: string[];
  /** Resolves with the first report line that matches. */
  line(pattern: RegExp): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout: () => string;
}

/** In the environment of everything the suite starts, so cleanup ends exactly that (test/support/processes.ts). */
const MARKER = randomUUID();

function startHelper(
  helper: HelperUnderTest,
  args: string[],
  fd3: 'pipe' | number = 'pipe',
  prefix: string[] = [],
): Started {
  const [file, ...rest] = [...prefix, ...helper.argv];
  // detached: a session of its own, as @seq-test/core starts it.
  const child = spawn(file as string, [...rest, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', fd3],
    detached: true,
    env: { ...process.env, [MARKER_ENV]: MARKER },
  });
  if (!child.pid) throw new Error(`cannot start ${file}`);
  const lines: string[] = [];
  const waiting: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let pending = '';
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const report = child.stdio[3] as Readable | null;
  report?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    for (const line of complete) {
      lines.push(line);
      for (const w of waiting.filter((w) => w.pattern.test(line))) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  report?.on('error', () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    pid: child.pid,
    lines,
    line: (pattern) =>
      new Promise((resolve) => {
        const seen = lines.find((l) => pattern.test(l));
        if (seen) resolve(seen);
        else waiting.push({ pattern, resolve });
      }),
    exited,
    stdout: () => stdout,
  };
}

// What a test left running, found by the marker: never a recorded pid or group, which by now may be a
// stranger's (a helper that exited, and the orphan a test already killed, free their pids).
afterEach(() => {
  endMarked(MARKER);
});

/** Resolves once the process sits in read(3, …): a parked helper that has blocked its signals. */
async function parkedInRead(pid: number): Promise<void> {
  // Polling /proc is the only way to see it; 10 ms steps, bounded by the test timeout.
  for (;;) {
    const fields = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ');
    if (fields[0] === readSyscallNumber && fields[1] === '0x3') return;
    await sleep(10);
  }
}
const readSyscallNumber = process.arch === 'arm64' ? '63' : '0';

function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Declares the suite for these binaries; `missing` says how to get one that is absent. */
export function describeHelperSuite(title: string, helpers: HelperUnderTest[], missing: string): void {
  let scratch: string;
  let denySyscalls: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'seq-test-helper-'));
    denySyscalls = buildDenySyscalls(scratch);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  describe.runIf(process.platform === 'linux')(title, () => {
    it('every binary under test is there', () => {
      for (const helper of helpers) expect(existsSync(helper.binary), `${helper.binary} (${missing})`).toBe(true);
    });

    describe.each(helpers)('$name', (helper) => {
      it('answers the handshake', () => {
        const [file, ...rest] = helper.argv;
        const result = spawnSync(file as string, [...rest, '--handshake'], { encoding: 'utf8' });
        if (helper.emulated) {
          // qemu-user does not emulate PR_SET_CHILD_SUBREAPER, and the helper says so instead of pretending.
          expect(result.stdout).toBe('seq-test-subreaper 2 error subreaper 22\n');
          expect(result.status).toBe(125);
        } else {
          expect(result.stdout).toBe('seq-test-subreaper 2 ready\n');
          expect(result.status).toBe(0);
        }
      });

      it('reports the pid, the exit status and the peak, in that order', async () => {
        const run = startHelper(helper, ['/bin/sh', 'sh', '-c', 'exit 3']);
        expect(await run.exited).toEqual({ code: 0, signal: null });
        const kinds = run.lines.filter((l) => !l.startsWith('error subreaper')).map((l) => l.split(' ')[0]);
        expect(kinds).toEqual(['pid', 'exit', 'peak']);
        expect(run.lines.find((l) => l.startsWith('exit'))).toMatch(/^exit 3 \d+$/);
        expect(run.lines.find((l) => l.startsWith('pid'))).toMatch(/^pid [1-9]\d*$/);
      });

      it('gives the command its signals back: a TERM it sends itself kills it', async () => {
        // With the helper's blocked mask leaking into the command, the TERM would stay pending and sh exit 0.
        const run = startHelper(helper, ['/bin/sh', 'sh', '-c', 'kill -TERM $$; exit 0']);
        expect(await run.line(/^(signal|exit) /)).toMatch(/^signal 15 \d+$/);
        await run.exited;
      });

      it('reports a command it cannot execute, then its 127', async () => {
        const run = startHelper(helper, ['/nonexistent/seq-test-command', 'x']);
        await run.exited;
        // The forked child's line can come before or after its parent's "pid" line.
        const lines = run.lines.filter((l) => !l.startsWith('error subreaper'));
        expect(lines.slice(0, 2).sort()).toEqual(['error exec 2', expect.stringMatching(/^pid \d+$/)]);
        expect(lines.slice(2)).toEqual([expect.stringMatching(/^exit 127 \d+$/), expect.stringMatching(/^peak \d+$/)]);
      });

      it('reports bad usage on fd 3 and exits 125', async () => {
        const run = startHelper(helper, ['--park']);
        expect(await run.exited).toEqual({ code: 125, signal: null });
        expect(run.lines).toEqual(['error usage 22']);
      });

      it('parked, it survives INT, TERM, HUP and QUIT, and starts the command on "g"', async () => {
        const run = startHelper(helper, ['--park', '/bin/sh', 'sh', '-c', 'exit 4']);
        await parkedInRead(run.pid);
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.kill(run.pid, signal);
        (run.child.stdio[3] as Writable).write('wg');
        expect(await run.line(/^exit /)).toMatch(/^exit 4 \d+$/);
        expect(await run.exited).toEqual({ code: 0, signal: null });
      });

      it('parked, it exits quietly when fd 3 closes, having started nothing', async () => {
        const run = startHelper(helper, ['--park', '/bin/sh', 'sh', '-c', 'exit 4']);
        await parkedInRead(run.pid);
        (run.child.stdio[3] as Writable).end();
        expect(await run.exited).toEqual({ code: 0, signal: null });
        expect(run.lines.filter((l) => !l.startsWith('error subreaper'))).toEqual([]);
      });

      it('ignores INT, TERM, HUP and QUIT while the command runs', async () => {
        const run = startHelper(helper, ['/bin/sh', 'sh', '-c', 'read line; exit 5']);
        await run.line(/^pid /);
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.kill(run.pid, signal);
        // The command reads our closed stdin: it ends by itself; the helper must still be there to report it.
        expect(await run.line(/^exit /)).toMatch(/^exit 5 \d+$/);
        expect(await run.exited).toEqual({ code: 0, signal: null });
      });

      if (!helper.emulated)
        it('adopts an orphan that left the session, and waits for it before its last report', async () => {
          const run = startHelper(helper, [
            '/bin/sh',
            'sh',
            '-c',
            'setsid sleep 60 </dev/null >/dev/null 2>&1 & echo $!',
          ]);
          await run.line(/^exit 0 /);
          // The pid comes on stdout, another pipe than the report: it may arrive after the exit line.
          const orphan = Number(await waitFor(() => run.stdout().trim(), 30_000, "the orphan's pid on stdout"));
          expect(ppidOf(orphan)).toBe(run.pid);
          expect(run.lines.some((l) => l.startsWith('peak'))).toBe(false);
          killPid(orphan);
          expect(await run.line(/^peak /)).toMatch(/^peak \d+$/);
          expect(await run.exited).toEqual({ code: 0, signal: null });
        });

      if (helper.emulated)
        it('says it is no subreaper where it cannot be one, and still runs the command', async () => {
          const run = startHelper(helper, ['/bin/sh', 'sh', '-c', 'exit 6']);
          await run.exited;
          expect(run.lines[0]).toBe('error subreaper 22');
          expect(run.lines).toContainEqual(expect.stringMatching(/^exit 6 \d+$/));
        });

      it('loses no report line to a reader that is slow to drain fd 3', async () => {
        // fd 3 is a FIFO filled to the brim, so every report blocks in write() until we drain it.
        const fifo = join(scratch, `fifo-${Math.random().toString(16).slice(2)}`);
        execFileSync('mkfifo', [fifo]);
        const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
        const filler = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        const block = Buffer.alloc(4096, 'x');
        let filled = 0;
        for (;;) {
          try {
            filled += writeSync(filler, block);
          } catch {
            break; // EAGAIN: full
          }
        }
        for (;;) {
          try {
            filled += writeSync(filler, block, 0, 1);
          } catch {
            break;
          }
        }
        const writer = openSync(fifo, constants.O_WRONLY); // a description without O_NONBLOCK, for the helper
        const run = startHelper(helper, ['/bin/sh', 'sh', '-c', 'exit 7'], writer);
        closeSync(writer);
        closeSync(filler);
        // Long enough for anything periodic in the helper to interrupt the blocked write (the old helper had
        // a 1 s SIGALRM tick that did, and lost the line); unavoidable: "nothing lost" has no event to wait on.
        await sleep(2500);
        const chunk = Buffer.alloc(65536);
        let text = '';
        let drained = 0;
        for (;;) {
          let got = 0;
          try {
            got = readSync(reader, chunk);
          } catch {
            await sleep(20); // EAGAIN: the helper has not written the next line yet
            continue;
          }
          if (got === 0) break; // EOF: the helper has exited
          const skip = Math.max(0, Math.min(got, filled - drained));
          drained += got;
          text += chunk.subarray(skip, got).toString();
        }
        closeSync(reader);
        await run.exited;
        const kinds = text
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('error subreaper'))
          .map((l) => l.split(' ')[0]);
        expect(kinds).toEqual(['pid', 'exit', 'peak']);
      });

      if (!helper.emulated)
        it('reports a failed prctl(PR_SET_CHILD_SUBREAPER) and still runs the command', async () => {
          const run = startHelper(helper, ['/bin/sh', 'sh', '-c', 'exit 8'], 'pipe', [denySyscalls, 'subreaper']);
          await run.exited;
          expect(run.lines[0]).toBe('error subreaper 1');
          expect(run.lines).toContainEqual(expect.stringMatching(/^exit 8 \d+$/));
        });

      if (!helper.emulated)
        it('reports a failed fork and exits 125, having started nothing', async () => {
          const run = startHelper(helper, ['/bin/sh', 'sh', '-c', 'exit 9'], 'pipe', [denySyscalls, 'fork']);
          expect(await run.exited).toEqual({ code: 125, signal: null });
          expect(run.lines).toEqual(['error fork 11']);
        });
    });
  });
}
