import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readStatus, type TicketStatus } from '@seq-test/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, isAlive, type Started, TestSandbox, waitFor } from '../support/processes.js';
import { available } from '../support/tools.js';
import { WAITING_PARENT } from '../support/waiting-parent.js';
import { HOLD_TEST, prepareExample, REPO_VITEST, vitestEnv } from '../vitest/support.js';

/**
 * `seq-test monitor` driven for real in a tmux pane: a private tmux server per test (`-L <socket>`, killed
 * with kill-server; never the user's sessions), a private state dir and key, real `seq-test run` holder and
 * waiter. The monitor runs under `sh -c 'monitor; echo $?; stty -a; read'` so that after it quits the pane shows the
 * shell's view of the terminal: the exit status, whether cooked mode (icanon, echo) came back, and (while the
 * shell waits in `read`) whether the alternate screen was left and the cursor shown again.
 */

let sandbox: TestSandbox | undefined;
let socket: string | undefined;

afterEach(() => {
  if (socket) {
    try {
      execFileSync('tmux', ['-L', socket, 'kill-server'], { stdio: 'ignore' });
    } catch {}
    socket = undefined;
  }
  sandbox?.cleanup();
  sandbox = undefined;
});

function setup() {
  const box = new TestSandbox();
  sandbox = box;
  const key = `monitor-test-${box.marker}`;
  const env = box.env({ SEQ_TEST_KEY: key });
  delete env.TMUX;
  delete env.TMUX_PANE;
  socket = `seq-test-monitor-${box.marker.slice(0, 8)}`;
  const name = socket;
  // remain-on-exit keeps a pane (and its last screen) if its shell line ends early, for the failure message.
  const conf = join(box.dir, 'tmux.conf');
  writeFileSync(conf, 'set -g remain-on-exit on\n');
  const tmux = (...args: string[]) =>
    execFileSync('tmux', ['-L', name, '-f', conf, ...args], { env, encoding: 'utf8', cwd: box.dir });
  const screen = (target: string) => tmux('capture-pane', '-p', '-t', target);
  const format = (target: string, fmt: string) => tmux('display-message', '-p', '-t', target, fmt).trim();
  /** Starts the monitor in its own window; the shell line reports its exit status and the tty mode after. */
  const startMonitor = (window: string, args: string[] = []) => {
    const command = `${process.execPath} ${CLI} monitor ${args.join(' ')}; echo "monitor exited $?"; stty -a; echo "shell is back"; read _`;
    const create =
      window === 'first' ? ['new-session', '-d', '-s', 'mon', '-x', '160', '-y', '40'] : ['new-window', '-t', 'mon'];
    tmux(...create, '-n', window, 'sh', '-c', command);
    return `mon:${window}`;
  };
  /** Waits until the shell line after the monitor has printed everything (it then waits in `read`). */
  const waitShell = (target: string) =>
    waitFor(
      () => {
        const text = tmux('capture-pane', '-p', '-S', '-', '-t', target);
        return text.includes('shell is back') ? text : undefined;
      },
      10_000,
      `the shell after the monitor in ${target}`,
    );
  const waitScreen = (target: string, test: (text: string) => boolean, what: string) =>
    waitFor(
      () => {
        const text = screen(target);
        return test(text) ? text : undefined;
      },
      10_000,
      what,
    );
  const tickets = (): TicketStatus[] => readStatus({ key, env, withLeftovers: false }).queues.flatMap((q) => q.tickets);
  return { box, key, env, tmux, screen, format, startMonitor, waitScreen, waitShell, tickets };
}

async function holderAndWaiter(s: ReturnType<typeof setup>): Promise<{ holder: Started; waiter: Started }> {
  const holder = s.box.start(['run', '--', 'sleep', '30'], { env: { SEQ_TEST_KEY: s.key } });
  await waitFor(() => s.tickets().some((t) => t.state === 'holding'), 10_000, 'the holder to hold');
  const waiter = s.box.start(['run', '--', 'true'], { env: { SEQ_TEST_KEY: s.key } });
  await waitFor(() => s.tickets().some((t) => t.state === 'waiting'), 10_000, 'the waiter to queue');
  return { holder, waiter };
}

const TMUX = available('tmux');

describe('seq-test monitor', () => {
  // Without tmux these two skip; the global setup has printed one line saying so.
  it.skipIf(!TMUX)(
    'shows holder and waiter, cancels only the selected run after y, and restores the terminal on q',
    async () => {
      const s = setup();
      const { holder, waiter } = await holderAndWaiter(s);
      const holderPid = holder.child.pid as number;
      const waiterPid = waiter.child.pid as number;

      const pane = s.startMonitor('first');
      const first = await s.waitScreen(
        pane,
        (t) => t.includes(`pid ${waiterPid}`) || new RegExp(`waiting\\s+#2\\s+${waiterPid}`).test(t),
        'the monitor to show the waiter',
      );
      expect(s.format(pane, '#{alternate_on}')).toBe('1');
      expect(first).toContain('seq-test monitor');
      expect(first).toContain(`KEY ${s.key}`);
      expect(first).toMatch(new RegExp(`holding\\s+#1\\s+${holderPid}\\s.*sleep 30`));
      expect(first).toMatch(new RegExp(`waiting\\s+#2\\s+${waiterPid}\\s.*\\btrue\\b`));
      expect(first).toMatch(/STATE\s+POS\s+PID\s+WAITED\s+HELD\s+MEMORY\s+PROCS\s+COMMAND\s+CWD/);
      expect(first).toContain('q or Ctrl-C quit');

      // The holder is selected first: cancelling it asks too, and "n" leaves it alone.
      expect(first).toMatch(new RegExp(`▶ holding\\s+#1\\s+${holderPid}`));
      s.tmux('send-keys', '-t', pane, 'c');
      await s.waitScreen(
        pane,
        (t) => t.includes(`Cancel holding run pid ${holderPid}`),
        'the confirmation for a holder',
      );
      s.tmux('send-keys', '-t', pane, 'n');
      await s.waitScreen(pane, (t) => t.includes(`pid ${holderPid} not cancelled`), 'the "no" answer for the holder');

      // Select the waiter; "n" leaves it alone.
      s.tmux('send-keys', '-t', pane, 'j');
      await s.waitScreen(pane, (t) => new RegExp(`▶ waiting\\s+#2\\s+${waiterPid}`).test(t), 'the waiter selected');
      s.tmux('send-keys', '-t', pane, 'c');
      await s.waitScreen(pane, (t) => t.includes(`Cancel waiting run pid ${waiterPid}`), 'the confirmation');
      s.tmux('send-keys', '-t', pane, 'n');
      await s.waitScreen(pane, (t) => t.includes(`pid ${waiterPid} not cancelled`), 'the "no" answer');
      expect(isAlive(waiterPid)).toBe(true);

      // "y" cancels: the waiter withdraws its ticket and exits 143, the holder is untouched.
      s.tmux('send-keys', '-t', pane, 'c');
      await s.waitScreen(pane, (t) => t.includes(`Cancel waiting run pid ${waiterPid}`), 'the confirmation');
      s.tmux('send-keys', '-t', pane, 'y');
      const ended = await waiter.finished;
      expect(ended.code).toBe(143);
      expect(ended.stderr).toContain('interrupted by SIGTERM while waiting');
      const left = s.tickets();
      expect(left.map((t) => [t.pid, t.state])).toEqual([[holderPid, 'holding']]);
      expect(isAlive(holderPid)).toBe(true);
      expect(holder.child.exitCode).toBeNull();
      const after = await s.waitScreen(
        pane,
        (t) => t.includes(`cancelled pid ${waiterPid} (waiting: true): ended by SIGTERM; its ticket is gone`),
        'the monitor to report the cancel',
      );
      expect(after).not.toMatch(new RegExp(`waiting\\s+#2\\s+${waiterPid}`));
      expect(after).toMatch(new RegExp(`holding\\s+#1\\s+${holderPid}`));

      // q quits with 0, leaves the alternate screen and gives back cooked mode.
      s.tmux('send-keys', '-t', pane, 'q');
      const shell = await s.waitShell(pane);
      expect(shell).toContain('monitor exited 0');
      expect(shell).not.toContain('seq-test monitor');
      expect(shell).toMatch(/(^|\s)icanon(\s|$)/m);
      expect(shell).toMatch(/(^|\s)echo(\s|$)/m);
      expect(s.format(pane, '#{alternate_on}')).toBe('0');
      expect(s.format(pane, '#{cursor_flag}')).toBe('1');
      expect(isAlive(holderPid)).toBe(true);
    },
  );

  it.skipIf(!TMUX)(
    'marks a re-parented Vitest that holds the lock, and cancels it: it ends, its leftovers too, the next run starts',
    async () => {
      const s = setup();
      const project = prepareExample(s.box, REPO_VITEST, { files: { 'tests/hold.test.ts': HOLD_TEST } });
      // Started by a parent that is then SIGKILLed (`timeout 60 npx vitest`); SEQ_TEST_ORPHAN=keep keeps
      // Vitest's own parent watch off, standing in for a run too hung to notice.
      const parent = s.box.start(
        ['-e', WAITING_PARENT, join(project.install.vitest, 'vitest.mjs'), 'run', 'tests/hold.test.ts'],
        {
          file: project.install.node,
          cwd: project.dir,
          env: vitestEnv(project, { env: { SEQ_TEST_KEY: s.key, EXAMPLE_HOLD_MS: '600000', SEQ_TEST_ORPHAN: 'keep' } }),
        },
      );
      await waitFor(() => existsSync(join(project.stamps, 'run.holding')), 60_000, 'the hold test to start');
      const vitestPid = (s.tickets().find((t) => t.state === 'holding') as TicketStatus).pid;
      parent.child.kill('SIGKILL');
      await parent.exited;
      const next = s.box.start(['run', '--', 'true'], { env: { SEQ_TEST_KEY: s.key } });
      await waitFor(() => s.tickets().some((t) => t.state === 'waiting'), 10_000, 'the next run to queue');
      // Vitest, its worker and the test's two sleeps (one detached): taken before tmux starts (its server and
      // panes carry the sandbox's marker too).
      const run = s.box.ours().filter((pid) => pid !== next.child.pid);
      expect(run.length).toBeGreaterThanOrEqual(3);

      const pane = s.startMonitor('first');
      const shown = await s.waitScreen(
        pane,
        (t) => new RegExp(`▶ holding\\s+#1\\s+${vitestPid}\\s.*\\[re-parented\\] vitest run`).test(t),
        'the monitor to mark Vitest re-parented',
      );
      expect(shown).toContain(`re-parented: its parent ${parent.child.pid} (node) is gone`);
      s.tmux('send-keys', '-t', pane, 'c');
      await s.waitScreen(pane, (t) => t.includes(`Cancel holding run pid ${vitestPid}`), 'the confirmation');
      s.tmux('send-keys', '-t', pane, 'y');
      const done = await s.waitScreen(
        pane,
        (t) => t.includes(`cancelled pid ${vitestPid} (holding: vitest run tests/hold.test.ts): ended by SIG`),
        'the monitor to report the cancel',
      );
      expect(done).toContain('its ticket is gone');
      expect(isAlive(vitestPid)).toBe(false);
      expect((await next.finished).code).toBe(0);
      s.tmux('send-keys', '-t', pane, 'q');
      expect(await s.waitShell(pane)).toContain('monitor exited 0');
      await waitFor(() => run.every((pid) => !isAlive(pid)), 10_000, 'nothing of the run left');
      expect(s.tickets()).toEqual([]);
    },
  );

  it.skipIf(!TMUX)('quits on Ctrl-C with 0 and on SIGTERM with 143, restoring the terminal both times', async () => {
    const s = setup();
    const ctrlC = s.startMonitor('first', ['--interval', '1']);
    await s.waitScreen(ctrlC, (t) => t.includes('idle: nobody holds or waits'), 'the idle monitor');
    expect(s.format(ctrlC, '#{alternate_on}')).toBe('1');
    s.tmux('send-keys', '-t', ctrlC, 'C-c');
    const afterCtrlC = await s.waitShell(ctrlC);
    expect(afterCtrlC).toContain('monitor exited 0');
    expect(afterCtrlC).toMatch(/(^|\s)icanon(\s|$)/m);
    expect(s.format(ctrlC, '#{alternate_on}')).toBe('0');

    const term = s.startMonitor('second', ['--interval', '0.2']);
    await s.waitScreen(term, (t) => t.includes('every 0.2 s'), 'the second monitor');
    const pid = await waitFor(() => monitorPid(s.box), 10_000, 'the monitor pid');
    process.kill(pid, 'SIGTERM');
    const afterTerm = await s.waitShell(term);
    expect(afterTerm).toContain('monitor exited 143');
    expect(afterTerm).toMatch(/(^|\s)icanon(\s|$)/m);
    expect(s.format(term, '#{alternate_on}')).toBe('0');
    expect(s.format(term, '#{cursor_flag}')).toBe('1');
  });

  it('refuses to run without a terminal, and a bad --interval, with one line and exit 125', async () => {
    const box = new TestSandbox();
    sandbox = box;
    const piped = await box.run(['monitor']);
    expect(piped.code).toBe(125);
    expect(piped.stdout).toBe('');
    expect(piped.stderr.trim().split('\n')).toHaveLength(1);
    expect(piped.stderr).toMatch(/^seq-test: error: monitor needs a terminal .*seq-test status/);
    for (const value of ['2', '0', 'soon']) {
      const bad = await box.run(['monitor', '--interval', value]);
      expect(bad.code).toBe(125);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toContain('--interval');
    }
  });
});

/** The pid of the `seq-test monitor` process this sandbox started (found by its marker, never by name alone). */
function monitorPid(box: TestSandbox): number | undefined {
  return box.ours().find((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[1] === CLI && argv[2] === 'monitor';
    } catch {
      return false;
    }
  });
}
