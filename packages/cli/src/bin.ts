#!/usr/bin/env node
import { main } from './main.js';

// A reader that went away (`seq-test exec -- cmd | head`) or a terminal that hung up must not crash us with
// an unhandled EPIPE/EIO while we still own a process tree: we stop writing and go on reaping.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

process.exitCode = await main(process.argv);
