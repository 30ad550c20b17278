import { SAY_PREFIX as PREFIX, SeqTestError } from '@seq-test/core';

export { FORWARDED_SIGNALS } from '@seq-test/core';

export function say(line: string): void {
  process.stderr.write(`${PREFIX} ${line}\n`);
}

export function sayError(message: string): void {
  process.stderr.write(`${PREFIX} error: ${message}\n`);
}

/** One line, and the documented exit code for anything we throw; a bug still gets its stack. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof SeqTestError) {
    sayError(error.message);
    return error.exitCode;
  }
  process.stderr.write(
    `${PREFIX} internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  return 125;
}
