import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { identityOf, type ProcessIdentity } from '../src/identity.js';
import { runProcesses } from '../src/ownership.js';
import { type EnvRead, processTable } from '../src/proc/index.js';
import { execTree } from '../src/runner.js';
import { subreaperPath } from '../src/subreaper.js';
import { createToken, TOKEN_ENV } from '../src/token.js';

/** Live pids whose command line is exactly `command` (the test's own marker): ours to end. */
function pidsRunning(command: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').join(' ').trim() === command)
        found.push(Number(name));
    } catch {}
  }
  return found;
}

describe.runIf(process.platform === 'linux')('the end of an attempt without the helper', () => {
  const table = processTable();
  const realReadEnv = table.readEnv;
  const started: string[] = [];
  afterEach(() => {
    table.readEnv = realReadEnv;
    for (const command of started.splice(0)) {
      for (const pid of pidsRunning(command)) process.kill(pid, 'SIGKILL');
    }
  });

  // `sh -c '…; job &'`: sh forks the job and exits at once, and is reaped before the next look, so the job
  // (re-parented, no witness of its process group left) is found by its token only, and a read inside execve
  // shows no environment at all. Here every process's first environment read comes back empty, as it can for
  // real: one such look must not end the wait (issue 11; seq_subprocess had the same fault, f715071). The
  // `sleep 0.5` first keeps the job out of the samples taken while sh runs (one every 100 ms or more).
  it('a leftover whose first environment read was empty is still waited for, and ended after --linger', async () => {
    const seen = new Set<number>();
    table.readEnv = (pid: number, name: string): EnvRead => {
      if (seen.has(pid)) return realReadEnv?.call(table, pid, name) ?? { value: undefined, empty: false };
      seen.add(pid);
      return { value: undefined, empty: true };
    };
    // Three runs: a sample can still fall between the fork and sh's exit (the job is then found through
    // sh), which would hide the fault in one run, not in three.
    for (let run = 0; run < 3; run++) {
      const leftover = `sleep 300.${randomInt(1e9)}`;
      started.push(leftover);
      const result = await execTree({
        command: ['sh', '-c', `sleep 0.5; ${leftover} &`],
        env: { ...process.env, SEQ_TEST_NO_SUBREAPER: '1', SEQ_TEST_TOKEN: '' },
        lingerMs: 300,
        graceMs: 2000,
      });
      expect(result.exitCode).toBe(0);
      expect(result.attempts[0]?.reaped.map((p) => [p.command, p.signal, p.reason])).toEqual([
        [leftover, 'SIGTERM', 'linger'],
      ]);
      expect(pidsRunning(leftover)).toEqual([]);
    }
  }, 60_000);
});

describe.runIf(process.platform === 'linux')(
  'runProcesses (what Jest, Vitest and status ask at the end of a run)',
  () => {
    const table = processTable();
    const realReadEnv = table.readEnv;
    afterEach(() => {
      table.readEnv = realReadEnv;
    });

    // The same fault in the one-shot query: a token carrier caught inside execve reads empty once.
    it('finds a token carrier whose first environment read was empty', async () => {
      const token = createToken(identityOf(process.pid) as ProcessIdentity);
      const child = spawn('sleep', ['300'], { env: { ...process.env, [TOKEN_ENV]: token.value }, stdio: 'ignore' });
      try {
        await new Promise((resolve) => child.once('spawn', resolve));
        const seen = new Set<number>();
        table.readEnv = (pid: number, name: string): EnvRead => {
          if (seen.has(pid)) return realReadEnv?.call(table, pid, name) ?? { value: undefined, empty: false };
          seen.add(pid);
          return { value: undefined, empty: true };
        };
        expect(runProcesses({ tokens: [token.value] }).map((p) => p.pid)).toEqual([child.pid]);
      } finally {
        child.kill('SIGKILL');
      }
    });
  },
);

/** The subreaper helper runs use here (undefined: none, every run goes without). */
const helperPath = subreaperPath(process.env, () => {});

/**
 * Live pids whose command line contains `marker` (a random one each test makes up), seq-test's own
 * subreaper helper excepted: ours to end. The helper is not a process of the command but this process's
 * child, and its argv carries the command line, marker included. The run ends on its last report, written
 * once wait4() found it no child left (every process of the command reaped), not on its exit a moment
 * later (docs/process-tree.md): so it can still be seen, exiting, just after execTree returns. (A strict
 * loop of the EOF test below under load, 2026-12-06, saw a live process carrying the marker after 92 of 754
 * runs: the helper every time, running or a zombie, parent this process; never a process of the command.)
 */
function pidsCarrying(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0');
      if (!argv.join(' ').includes(marker)) continue;
      if (helperPath && argv[0] === helperPath) {
        const helper = processTable().get(Number(name));
        if (!helper || helper.ppid === process.pid) continue; // ours (or gone meanwhile)
      }
      found.push(Number(name));
    } catch {}
  }
  return found;
}

/**
 * Leftovers that sat idle for the whole --linger before the main command ended are ended after a short
 * settle, not after the full linger; busy or young ones, and ones that wake on their parent's EOF, are not.
 * Real processes and real CPU times; the bounds are wide (a loaded machine): a short wait is checked
 * against a linger many times as long, a full wait only from below.
 */
describe.runIf(process.platform === 'linux')('idle leftovers', () => {
  const markers: string[] = [];
  afterEach(() => {
    for (const marker of markers.splice(0)) {
      for (const pid of pidsCarrying(marker)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
  });

  /** Runs the command; how long the wait after the main command took, and what was narrated. */
  async function run(command: string, options: { lingerMs: number; env?: NodeJS.ProcessEnv; lingerIdle?: boolean }) {
    const lines: string[] = [];
    let mainEndedAt: number | undefined;
    const result = await execTree({
      command: ['bash', '-c', command],
      env: { ...process.env, ...options.env },
      lingerMs: options.lingerMs,
      ...(options.lingerIdle ? { lingerIdle: true } : {}),
      graceMs: 5000,
      onNarrate: (line) => {
        lines.push(line);
        if (line.startsWith('main process ended')) mainEndedAt = performance.now();
      },
    });
    expect(mainEndedAt, lines.join('\n')).toBeDefined();
    const afterMainMs = performance.now() - (mainEndedAt as number);
    const narration = lines.join('\n');
    return { result, afterMainMs, narration };
  }

  const marker = () => {
    const value = `idle-${randomInt(1e9)}`;
    markers.push(value);
    return value;
  };

  it.each([
    ['with the helper', {}],
    ['without the helper', { SEQ_TEST_NO_SUBREAPER: '1' }],
  ])(
    'a leftover idle for the whole linger is ended at once, reason linger, exit status the command’s (%s)',
    async (_how, env) => {
      const leftover = `sleep 300.${randomInt(1e9)}`;
      markers.push(leftover);
      // The leftover sleeps from the start, ~6 s before the main command ends: idle for twice the linger.
      const { result, afterMainMs, narration } = await run(`${leftover} & sleep 6; exit 3`, { lingerMs: 3000, env });
      expect(result.exitCode).toBe(3);
      expect(result.attempts[0]?.reaped.map((p) => [p.command, p.signal, p.reason])).toEqual([
        [leftover, 'SIGTERM', 'linger'],
      ]);
      expect(narration).toMatch(/1 process still running after the main one, idle for \d+(\.\d)? s: ending it/);
      expect(narration).not.toContain('giving them');
      // Ended after the settle (~200 ms); the full linger would have been 3 s.
      expect(afterMainMs, narration).toBeLessThan(3000);
      expect(pidsCarrying(leftover)).toEqual([]);
    },
    60_000,
  );

  it('a busy leftover gets the full linger', async () => {
    const tag = marker();
    // Works 30 ms of every 200 ms: several clock ticks of CPU in any second.
    const busy = `${process.execPath} -e 'setInterval(() => { const t = Date.now(); while (Date.now() - t < 30); }, 200)' ${tag}`;
    const { result, afterMainMs, narration } = await run(`${busy} & sleep 5`, { lingerMs: 2000 });
    expect(result.exitCode).toBe(0);
    expect(result.attempts[0]?.reaped.map((p) => p.reason)).toEqual(['linger']);
    expect(narration).toContain('1 process still running after the main one: giving them 2.0 s');
    expect(narration).not.toContain('idle for');
    expect(afterMainMs, narration).toBeGreaterThanOrEqual(2000);
  }, 60_000);

  it('a young leftover gets the full linger, even an idle one', async () => {
    const leftover = `sleep 300.${randomInt(1e9)}`;
    markers.push(leftover);
    // Started just before the main command ends: it has not been idle for the linger.
    const { result, afterMainMs, narration } = await run(`sleep 3; ${leftover} &`, { lingerMs: 2000 });
    expect(result.attempts[0]?.reaped.map((p) => [p.command, p.reason])).toEqual([[leftover, 'linger']]);
    expect(narration).toContain('giving them 2.0 s');
    expect(narration).not.toContain('idle for');
    expect(afterMainMs, narration).toBeGreaterThanOrEqual(2000);
  }, 60_000);

  it('with lingerIdle an idle leftover gets the full linger (the old behaviour)', async () => {
    const leftover = `sleep 300.${randomInt(1e9)}`;
    markers.push(leftover);
    const { result, afterMainMs, narration } = await run(`${leftover} & sleep 4`, {
      lingerMs: 1500,
      lingerIdle: true,
    });
    expect(result.attempts[0]?.reaped.map((p) => [p.command, p.reason])).toEqual([[leftover, 'linger']]);
    expect(narration).toContain('giving them 1.5 s');
    expect(afterMainMs, narration).toBeGreaterThanOrEqual(1500);
  }, 60_000);

  // A reader of a pipe from the main command (`exec 3> >(reader)`) sits idle from the start and ends on the
  // main command's EOF by itself: ended by nobody, reported as nothing.
  it('a leftover that exits on its parent’s EOF within the settle is not ended', async () => {
    const tag = marker();
    const reader = `python3 -c 'import sys, time; sys.stdin.read(); time.sleep(0.02)' ${tag}`;
    const { result, narration } = await run(`exec 3> >(${reader}); sleep 4`, { lingerMs: 2000 });
    expect(result.exitCode).toBe(0);
    expect(result.attempts[0]?.reaped, narration).toEqual([]);
    // Gone by itself, and already at the instant execTree returns: the run waits for every process of the
    // command. (Twice in CI a process carrying the tag was seen then: the helper, see pidsCarrying.)
    expect(pidsCarrying(tag)).toEqual([]);
  }, 60_000);

  // The same reader, but EOF sets it to work for a while, 100 ms later (typically after the first look
  // found it idle, within the settle): it stops being idle (CPU used, or running when looked at), so it gets
  // the full linger and finishes its work instead of being ended after the settle.
  it('a leftover that starts working when the main command ends gets the full linger', async () => {
    const tag = marker();
    const dir = mkdtempSync(join(tmpdir(), 'seq-test-idle-'));
    try {
      const done = join(dir, 'done');
      // Idle for ~6 s before the main command ends (twice the linger); half a second of work after it.
      const reader = `python3 -c 'import sys, time; sys.stdin.read(); time.sleep(0.1); t = time.monotonic()
while time.monotonic() - t < 0.5: pass
open(sys.argv[1], "w").close()' ${done} ${tag}`;
      const { result, narration } = await run(`exec 3> >(${reader}); sleep 6`, { lingerMs: 3000 });
      expect(result.attempts[0]?.reaped, narration).toEqual([]);
      expect(existsSync(done), narration).toBe(true);
      expect(narration).toMatch(/giving them 3\.0 s/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
