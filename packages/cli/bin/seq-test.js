#!/usr/bin/env node
// The committed entry point of the `seq-test` command. It exists before any build, so that `npm ci` in a
// checkout links node_modules/.bin/seq-test at once; it loads the built CLI, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/bin.js', import.meta.url);
if (existsSync(fileURLToPath(built))) {
  await import(built.href);
} else {
  process.stderr.write(
    `seq-test: error: the CLI is not built yet (${fileURLToPath(built)} is missing); run npm run build in the seq-test checkout\n`,
  );
  process.exitCode = 125;
}
