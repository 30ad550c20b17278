import { assertSupportedPlatform } from '../errors.js';
import { DarwinProcessTable } from './darwin.js';
import { LinuxProcessTable } from './linux.js';
import type { ProcessTable } from './types.js';

export type { EnvRead, PidCounter, ProcessInfo, ProcessTable } from './types.js';
export { isGone } from './types.js';

let table: ProcessTable | undefined;

/** The process table of this platform; throws the "not supported" error on Windows. */
export function processTable(): ProcessTable {
  if (!table) {
    assertSupportedPlatform();
    table = process.platform === 'linux' ? new LinuxProcessTable() : new DarwinProcessTable();
  }
  return table;
}
