import { writeSync } from 'node:fs';
import { CANCEL_GRACE_MS, cancelRunByToken, readStatus, signalNumber } from '@seq-test/core/internal';
import { render } from 'ink';
import React from 'react';
import { MonitorApp, type Snapshot } from './app.js';
import { sampleSystem } from './system.js';

/** Alternate screen on, cursor home, clear; and back: cursor visible, alternate screen off. */
const ENTER = '\x1b[?1049h\x1b[H\x1b[2J';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface MonitorOptions {
  key: string | undefined;
  allKeys: boolean;
  intervalMs: number;
}

/**
 * Runs the full-screen monitor until q / Ctrl-C (exit 0) or a signal (128+N). The terminal is restored on
 * every way out: Ink gives back cooked mode and the cursor when it unmounts, we leave the alternate screen,
 * and an `exit` hook does both again synchronously in case something throws past us.
 */
export async function runMonitor(options: MonitorOptions): Promise<number> {
  const take = (previous?: Snapshot): Snapshot => {
    try {
      const report = readStatus({ key: options.key, allKeys: options.allKeys });
      return { report, system: sampleSystem(), at: Date.now(), error: null };
    } catch (error) {
      if (!previous) throw error;
      const message = error instanceof Error ? error.message : String(error);
      return { ...previous, system: sampleSystem(), at: Date.now(), error: message };
    }
  };
  // Read once before touching the terminal, so a bad key or state dir is a plain one-line error.
  const initial = take();
  const scope = options.allKeys ? 'all keys' : (initial.report.queues[0]?.key ?? '');

  const stdout = process.stdout;
  const stdin = process.stdin;
  let onAlternateScreen = false;
  const restore = () => {
    // Best effort: after a hang-up the terminal is gone and both may fail.
    try {
      if (stdin.isTTY && stdin.isRaw) stdin.setRawMode(false);
    } catch {}
    if (!onAlternateScreen) return;
    onAlternateScreen = false;
    try {
      writeSync(stdout.fd, LEAVE);
    } catch {}
  };
  process.on('exit', restore);
  stdout.write(ENTER);
  onAlternateScreen = true;
  // Raw mode at once, not when Ink's input hook mounts a moment later: a key pressed in between (Ctrl-C
  // above all, which the terminal would turn into SIGINT for the whole foreground group) waits for us instead.
  if (stdin.isTTY) stdin.setRawMode(true);

  let exitCode = 0;
  const instance = render(
    React.createElement(MonitorApp, {
      initial,
      load: take,
      cancel: (token: string) => cancelRunByToken(initial.report.stateDir, token, { graceMs: CANCEL_GRACE_MS }),
      graceMs: CANCEL_GRACE_MS,
      intervalMs: options.intervalMs,
      scope,
    }),
    { exitOnCtrlC: false, patchConsole: false },
  );
  // A signal (kill, a closed terminal) ends the monitor like q does, with the signal's exit status.
  const onSignal = (signal: NodeJS.Signals) => {
    exitCode = 128 + signalNumber(signal);
    instance.unmount();
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  try {
    await instance.waitUntilExit();
  } finally {
    for (const signal of SIGNALS) process.off(signal, onSignal);
    restore();
    process.off('exit', restore);
  }
  return exitCode;
}
