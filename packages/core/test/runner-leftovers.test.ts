import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { identityOf, type ProcessIdentity } from '../src/identity.js';
import { runProcesses } from '../src/ownership.js';
import { type EnvRead, processTable } from '../src/proc/index.js';
import { execTree } from '../src/runner.js';
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
