import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { EXIT, SeqTestError } from './errors.js';

/**
 * Finds the executable the way a shell would, so "not found" (127) and "not executable" (126) are
 * reported before anything is spawned and before any lock is taken. `which` cannot tell the two apart.
 */
export function resolveCommand(command: string, cwd: string, path = process.env.PATH ?? ''): string {
  if (command === '') throw new SeqTestError('the command is empty: give one after --', EXIT.USAGE);
  if (command.includes('/')) {
    const file = isAbsolute(command) ? command : resolve(cwd, command);
    const state = executableState(file);
    if (state === 'ok') return file;
    if (state === 'missing') throw new SeqTestError(`command not found: ${command}`, EXIT.NOT_FOUND);
    throw new SeqTestError(`command is not executable: ${command} (${state})`, EXIT.NOT_EXECUTABLE);
  }
  let blocked: string | undefined;
  for (const dir of path.split(delimiter)) {
    const file = join(dir === '' ? cwd : resolve(cwd, dir), command);
    const state = executableState(file);
    if (state === 'ok') return file;
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
