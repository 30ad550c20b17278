#!/usr/bin/env node
import { closeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { main } from './main.js';

// A reader that went away (`seq-test exec -- cmd | head`) or a terminal that hung up must not crash us with
// an unhandled EPIPE/EIO while we still own a process tree: we stop writing and go on reaping.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

// At exit, Node restores the terminal settings it found at start-up on every stdio fd that was a terminal
// (node::ResetStdio), and Node 20 aborts (SIGABRT, "Assertion failed") when that fails because the
// terminal hung up. An fd that was a terminal at start and is none now is such a hung-up one (a terminal
// stays a terminal): it is closed, and Node skips what it cannot restore.
const terminals = [0, 1, 2].filter((fd) => isatty(fd));
if (terminals.length > 0)
  process.on('exit', () => {
    for (const fd of terminals) {
      if (isatty(fd)) continue;
      try {
        closeSync(fd);
      } catch {}
    }
  });

process.exitCode = await main(process.argv);
