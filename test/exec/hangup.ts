import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, isAlive, type TestSandbox, waitFor } from '../support/processes.js';
import { shellQuote } from '../support/text.js';

/**
 * The terminal seq-test runs in goes away (`tmux kill-server`, a closed terminal window, a dropped ssh
 * session): the kernel hangs the terminal up and sends SIGHUP. A private tmux server (`-L`, never the
 * user's) gives seq-test a real terminal; a small wrapper, which ignores the hangup itself, records how
 * seq-test ended and what it printed on stderr.
 */
export async function hangUp(
  sb: TestSandbox,
  node: string,
  args: string[],
  /** Resolves once seq-test is where the hangup should find it. */
  ready: (screen: () => string) => Promise<unknown>,
): Promise<{ status: string | undefined; stderr: string }> {
  const wrapper = join(sb.dir, 'wrap.mjs');
  const statusFile = join(sb.dir, 'status.txt');
  const stderrFile = join(sb.dir, 'stderr.txt');
  writeFileSync(
    wrapper,
    `import { spawn } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
process.on('SIGHUP', () => {});
const stderr = openSync(${JSON.stringify(stderrFile)}, 'w');
const child = spawn(process.argv[2], process.argv.slice(3), { stdio: ['inherit', 'inherit', stderr] });
child.on('exit', (code, signal) => {
  writeFileSync(${JSON.stringify(statusFile)}, \`\${process.pid} \${code === null ? signal : code}\`);
  process.kill(process.pid, 'SIGKILL'); // the wrapper's own exit must not trip over the hung-up terminal
});
`,
  );
  const socket = `seq-test-hup-${sb.marker.slice(0, 8)}`;
  const env = sb.env();
  delete env.TMUX;
  delete env.TMUX_PANE;
  const tmux = (...rest: string[]) =>
    execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...rest], { env, cwd: sb.dir, encoding: 'utf8' });
  try {
    // Under `sh -c` as in a terminal: the hangup goes to the session leader (sh, which dies of it), and on
    // its death the kernel sends SIGHUP to the foreground process group: the wrapper and seq-test.
    const line = [process.execPath, wrapper, node, CLI, ...args].map(shellQuote);
    tmux('new-session', '-d', '-x', '120', '-y', '30', '-c', sb.dir, 'sh', '-c', line.join(' '));
    await ready(() => tmux('capture-pane', '-p'));
  } finally {
    try {
      tmux('kill-server');
    } catch {}
  }
  const [wrapperPid, status] = (
    await waitFor(() => existsSync(statusFile) && readFileSync(statusFile, 'utf8'), 30_000, 'seq-test to end')
  ).split(' ');
  await waitFor(() => !isAlive(Number(wrapperPid)), 10_000, 'the wrapper to end');
  return { status, stderr: readFileSync(stderrFile, 'utf8') };
}

/** The run, exec and monitor cases, each with what tells that it is running. */
export const HANGUP_CASES: {
  name: string;
  args: string[];
  ready: (sb: TestSandbox, screen: () => string) => Promise<unknown>;
}[] = [
  {
    name: 'run',
    args: ['run', '--', 'sh', '-c', 'echo $$ > main.pid; exec sleep 60'],
    ready: (sb) => waitFor(() => existsSync(join(sb.dir, 'main.pid')), 30_000, 'the command to start'),
  },
  {
    name: 'exec',
    args: ['exec', '--', 'sh', '-c', 'echo $$ > main.pid; exec sleep 60'],
    ready: (sb) => waitFor(() => existsSync(join(sb.dir, 'main.pid')), 30_000, 'the command to start'),
  },
  {
    name: 'monitor',
    args: ['monitor'],
    ready: (_, screen) => waitFor(() => screen().trim() !== '', 30_000, 'the monitor to draw'),
  },
];
