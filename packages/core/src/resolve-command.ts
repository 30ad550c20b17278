import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { EXIT, SeqTestError } from './errors.js';

/**
 * Finds the executable the way a shell would, so "not found" (127) and "not executable" (126) are
 * reported before anything is spawned and before any lock is taken. `which` cannot tell the two apart.
 * A script whose `#!` interpreter is missing or not executable is found but cannot run: 126, like shells.
 *
 * `cwd` undefined means our own working directory, which is then left to the kernel: a relative command
 * stays relative (our cwd as a string can be wrong: Node decodes a path that is not UTF-8 lossily).
 */
export function resolveCommand(command: string, cwd?: string, path = process.env.PATH ?? ''): string {
  if (command === '') throw new SeqTestError('the command is empty: give one after --', EXIT.USAGE);
  const under = (dir: string) => (cwd === undefined ? dir : resolve(cwd, dir));
  if (command.includes('/')) {
    const file = isAbsolute(command) ? command : cwd === undefined ? command : resolve(cwd, command);
    const state = executableState(file);
    if (state === 'ok') return checkInterpreter(command, file, cwd);
    if (state === 'missing') throw new SeqTestError(`command not found: ${command}`, EXIT.NOT_FOUND);
    throw new SeqTestError(`command is not executable: ${command} (${state})`, EXIT.NOT_EXECUTABLE);
  }
  let blocked: string | undefined;
  for (const dir of path.split(delimiter)) {
    const file = join(dir === '' ? under('.') : under(dir), command);
    const state = executableState(file);
    if (state === 'ok') return checkInterpreter(command, file, cwd);
    if (state !== 'missing' && blocked === undefined) blocked = `${file} (${state})`;
  }
  if (blocked) throw new SeqTestError(`command is not executable: ${blocked}`, EXIT.NOT_EXECUTABLE);
  throw new SeqTestError(`command not found: ${command} (searched PATH)`, EXIT.NOT_FOUND);
}

function executableState(file: string): 'ok' | 'missing' | string {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(file);
  } catch {
    return 'missing';
  }
  if (stats.isDirectory()) return 'a directory';
  try {
    accessSync(file, constants.X_OK);
    return 'ok';
  } catch {
    return 'permission denied';
  }
}

/** The `#!` line's interpreter of a script; undefined for anything else or what cannot be read. */
function interpreterOf(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(256);
    const length = readSync(fd, head, 0, head.length, 0);
    if (length < 2 || head[0] !== 0x23 || head[1] !== 0x21) return undefined; // "#!"
    return /^[ \t]*([^ \t\n]+)/.exec(head.subarray(2, length).toString('latin1'))?.[1];
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function checkInterpreter(command: string, file: string, cwd: string | undefined): string {
  const interpreter = interpreterOf(file);
  if (interpreter === undefined) return file;
  const state = executableState(isAbsolute(interpreter) || cwd === undefined ? interpreter : resolve(cwd, interpreter));
  if (state === 'ok') return file;
  const why = state === 'missing' ? 'does not exist' : `is not executable (${state})`;
  throw new SeqTestError(`cannot run ${command}: its interpreter ${interpreter} ${why}`, EXIT.NOT_EXECUTABLE);
}
