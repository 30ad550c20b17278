import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Finished, REPO, type Started, type TestSandbox, waitFor } from '../support/processes.js';

/** The compiled subreaper helper; the suite requires it (the build makes it on Linux). */
export const HELPER = join(REPO, 'packages', 'core', 'dist', 'seq-test-subreaper');
export const helperBuilt = () => existsSync(HELPER);

/** Waits until `name` in the sandbox holds a pid (written as "<pid>\n") and returns it. */
export function pidFile(sandbox: TestSandbox, name: string, timeoutMs = 10_000): Promise<number> {
  const path = join(sandbox.dir, name);
  return waitFor(
    () => {
      if (!existsSync(path)) return undefined;
      const text = readFileSync(path, 'utf8');
      return text.endsWith('\n') ? Number(text.trim()) : undefined;
    },
    timeoutMs,
    `pid in ${name}`,
  );
}

/** Resolves once `text` appears in what seq-test printed so far on the given stream. */
export function seen(started: Started, text: string, stream: 'stdout' | 'stderr' = 'stdout', timeoutMs = 15_000) {
  return waitFor(() => started.output[stream].includes(text), timeoutMs, `"${text}" on ${stream}`);
}

/** Fields of /proc/PID/stat we check escapees against. */
export function statOf(pid: number): { ppid: number; pgid: number; sid: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), pgid: Number(fields[2]), sid: Number(fields[3]) };
}

export function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
}

/**
 * A shell fragment that starts the chosen escapees from inside the command, each writing its pid to
 * <kind>.pid in the current directory before it becomes `sleep 300`:
 * - setsid: leaves the session and process group (keeps the token);
 * - double: double fork, re-parented away from the tree (keeps the token);
 * - envi:   `env -i` (no token; the test marker is put back by hand so cleanup still finds it), then setsid
 *           and a double fork: only the subreaper helper can still see it.
 * It returns once every pid file is written.
 */
export type Escapee = 'setsid' | 'double' | 'envi';

export function escapeFragment(kinds: Escapee[]): string {
  const lines: string[] = [];
  if (kinds.includes('setsid')) lines.push(`setsid sh -c 'echo $$ > setsid.pid; exec sleep 300' &`);
  if (kinds.includes('double')) lines.push(`(sh -c 'echo $$ > double.pid; exec sleep 300' &)`);
  if (kinds.includes('envi'))
    lines.push(
      `env -i SEQ_TEST_TEST_MARKER="$SEQ_TEST_TEST_MARKER" PATH="$PATH" setsid sh -c '(sh -c "echo \\$\\$ > envi.pid; exec sleep 300" &)' &`,
    );
  const waits = kinds.map((k) => `[ ! -s ${k}.pid ]`).join(' || ');
  lines.push(`while ${waits}; do sleep 0.02; done`);
  return lines.join('\n');
}

/**
 * Waits for seq-test to finish, at most `timeoutMs` (a generous bound: the machine may be loaded); a run
 * that hangs is killed by pid and fails the test with what it printed.
 */
export async function finishWithin(started: Started, timeoutMs: number): Promise<Finished> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      started.child.kill('SIGKILL');
      reject(new Error(`seq-test did not exit within ${timeoutMs} ms; stderr: ${started.output.stderr}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([started.finished, hung]);
  } finally {
    clearTimeout(timer);
  }
}
