import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Finished, isAlive, TestSandbox, waitFor } from '../support/processes.js';
import { regexLiteral, shellQuote } from '../support/text.js';
import { escapeFragment, pidFile, seen } from './helpers.js';

// Signals: the grace period before SIGKILL, --kill-signal, and SIGINT/SIGTERM/SIGHUP sent to seq-test itself.

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

/** The recorder's command line, as seq-test prints it in "ended leftover process <pid> (<command line>)". */
const RECORDER = `${process.execPath} recorder.cjs`;

/**
 * A Node process that records every SIGTERM/SIGINT it gets in signals.txt; it exits on `exitOn`. (Node, not
 * Python: the default tier must pass on a machine with Node alone.)
 */
function recorder(exitOn: 'SIGINT' | 'none'): string {
  writeFileSync(
    join(sb.dir, 'recorder.cjs'),
    `const fs = require('node:fs');
for (const name of ['SIGTERM', 'SIGINT'])
  process.on(name, () => {
    fs.appendFileSync('signals.txt', name + '\\n');
    if (name === '${exitOn}') process.exit(0);
  });
fs.writeFileSync('recorder.pid', process.pid + '\\n');
setInterval(() => {}, 1000);
`,
  );
  // The main command starts it in the background and exits once it is ready: the recorder is a leftover.
  return `${shellQuote(process.execPath)} recorder.cjs & while [ ! -s recorder.pid ]; do sleep 0.02; done`;
}

function signalsReceived(): string[] {
  try {
    return readFileSync(join(sb.dir, 'signals.txt'), 'utf8').trim().split('\n');
  } catch {
    return [];
  }
}

/** Bounds a wait that must end by itself long before the test timeout; says what hung if not. */
function within(finished: Promise<Finished>, ms: number, what: string): Promise<Finished> {
  return Promise.race([
    finished,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms`)), ms)),
  ]);
}

describe('ending a process that resists', () => {
  it('a process that traps SIGTERM gets SIGKILL after --grace', async () => {
    const result = await sb.run([
      'exec',
      '--json',
      '--linger',
      '0.2',
      '--grace',
      '1',
      '--',
      'sh',
      '-c',
      recorder('none'),
    ]);
    expect(result.code, result.stderr).toBe(0);
    const pid = await pidFile(sb, 'recorder.pid', 0);
    expect(signalsReceived()).toEqual(['SIGTERM']);
    expect(isAlive(pid)).toBe(false);
    const json = JSON.parse(result.stdout);
    // The report names the last signal it took: SIGKILL.
    expect(json.reaped).toEqual([expect.objectContaining({ pid, signal: 'SIGKILL', reason: 'linger' })]);
    expect(result.stderr).toMatch(
      new RegExp(`seq-test: ended leftover process ${pid} \\(${regexLiteral(RECORDER)}\\) with SIGKILL`),
    );
    expect(sb.ours()).toEqual([]);
  });

  it('--kill-signal INT is what the tree gets first', async () => {
    const result = await sb.run([
      'exec',
      '--linger',
      '0.2',
      '--kill-signal',
      'INT',
      '--',
      'sh',
      '-c',
      recorder('SIGINT'),
    ]);
    expect(result.code, result.stderr).toBe(0);
    const pid = await pidFile(sb, 'recorder.pid', 0);
    expect(signalsReceived()).toEqual(['SIGINT']);
    expect(result.stderr).toMatch(
      new RegExp(`seq-test: ended leftover process ${pid} \\(${regexLiteral(RECORDER)}\\) with SIGINT`),
    );
    expect(sb.ours()).toEqual([]);
  });

  it.each([
    ['with the helper', '0'],
    ['without the helper', '1'],
  ])('on --timeout the main command gets the first signal once, %s', async (_how, noHelper) => {
    // The recorder is the main command here and does not exit on SIGTERM: it must see exactly one
    // SIGTERM during the grace period, then SIGKILL (a repeated SIGINT reads as "force quit" to runners).
    recorder('none');
    const result = await sb.run(['exec', '--timeout', '1', '--grace', '1', '--', process.execPath, 'recorder.cjs'], {
      env: { SEQ_TEST_NO_SUBREAPER: noHelper },
    });
    expect(result.code, result.stderr).toBe(124);
    expect(signalsReceived()).toEqual(['SIGTERM']);
    expect(sb.ours()).toEqual([]);
  });

  it('on --timeout, a main command that ignores SIGTERM is killed after --grace', async () => {
    // `trap '' TERM` is inherited across exec: the shell and its sleep both ignore SIGTERM.
    const result = await sb.run([
      'exec',
      '--json',
      '--timeout',
      '1',
      '--grace',
      '0.5',
      '--',
      'sh',
      '-c',
      "trap '' TERM; sleep 300",
    ]);
    expect(result.code).toBe(124);
    const json = JSON.parse(result.stdout);
    expect(json).toMatchObject({ exitCode: 124, timedOut: true, signal: 'SIGKILL' });
    expect(sb.ours()).toEqual([]);
  });
});

describe('signals sent to seq-test', () => {
  const TREE = `${escapeFragment(['setsid', 'double'])}\nsleep 300 & echo $! > bg.pid\necho ready\nwait`;

  it.for([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s: the whole tree is ended, escapees included, exit %i', async ([signal, code]) => {
    // --grace 1: a non-interactive shell's background jobs ignore SIGINT, so they wait out the grace period.
    const started = sb.start(['exec', '--grace', '1', '--', 'sh', '-c', TREE]);
    await seen(started, 'ready');
    const pids = await Promise.all(['setsid.pid', 'double.pid', 'bg.pid'].map((f) => pidFile(sb, f)));
    started.child.kill(signal);
    const result = await within(started.finished, 20_000, `seq-test after ${signal}`);
    expect(result.code).toBe(code);
    for (const pid of pids) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    expect(sb.ours()).toEqual([]);
  });

  it('SIGKILL: seq-test cannot react, but its helper sees it die and kills the whole tree', async () => {
    const tree = `${escapeFragment(['setsid', 'double', 'envi'])}\nsleep 300 & echo $! > bg.pid\necho ready\nwait`;
    const started = sb.start(['exec', '--verbose', '--', 'sh', '-c', tree]);
    await seen(started, 'ready');
    expect(started.output.stderr, 'this run must use the helper').toContain(', subreaper helper)');
    const pids = await Promise.all(['setsid.pid', 'double.pid', 'envi.pid', 'bg.pid'].map((f) => pidFile(sb, f)));
    const exited = new Promise((resolve) => started.child.once('exit', (_code, signal) => resolve(signal)));
    started.child.kill('SIGKILL');
    // (not `finished`: that waits for our stdout pipe, which the tree, if it survived, would hold open)
    expect(await exited).toBe('SIGKILL');
    await waitFor(() => pids.every((pid) => !isAlive(pid)), 10_000, 'the tree to be killed by the helper');
    await waitFor(() => sb.ours().length === 0, 10_000, 'nothing of ours left');
  });

  it('a second SIGINT escalates to SIGKILL when the child traps SIGINT', async () => {
    // --grace 60: without the escalation this run would last a minute, far past the bound below.
    const started = sb.start(['exec', '--grace', '60', '--', 'sh', '-c', `${recorder('none')}; echo ready; wait`]);
    await seen(started, 'ready');
    const pid = await pidFile(sb, 'recorder.pid');
    started.child.kill('SIGINT');
    await waitFor(() => signalsReceived().includes('SIGINT') || undefined, 15_000, 'the recorder to get SIGINT');
    expect(isAlive(pid)).toBe(true);
    started.child.kill('SIGINT');
    const result = await within(started.finished, 20_000, 'seq-test after the second SIGINT');
    expect(result.code).toBe(130);
    expect(signalsReceived()).toEqual(['SIGINT']); // the second one was SIGKILL, which cannot be recorded
    expect(isAlive(pid)).toBe(false);
    expect(sb.ours()).toEqual([]);
  });

  it('SIGINT between two attempts (during --retry-delay) stops the run at once with 130', async () => {
    const started = sb.start([
      'exec',
      '--retry',
      '3',
      '--retry-delay',
      '300',
      '--',
      'sh',
      '-c',
      'echo run >> runs.txt; exit 1',
    ]);
    await waitFor(() => {
      try {
        return readFileSync(join(sb.dir, 'runs.txt'), 'utf8') === 'run\n';
      } catch {
        return false;
      }
    });
    // Let seq-test get into the delay (it has no visible sign); an early signal is fine too.
    await new Promise((resolve) => setTimeout(resolve, 300));
    started.child.kill('SIGINT');
    const result = await within(started.finished, 20_000, 'seq-test interrupted in the retry delay');
    expect(result.code).toBe(130);
    expect(readFileSync(join(sb.dir, 'runs.txt'), 'utf8')).toBe('run\n');
    expect(sb.ours()).toEqual([]);
  });
});
