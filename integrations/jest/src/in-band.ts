import type { JestGlobalConfig } from './types.js';

/**
 * In band only on the user's word: `--runInBand`/`-i` (Jest 30 keeps it in the global config; Jest 29 only
 * turns it into maxWorkers 1, so its command line is read), or `--detectOpenHandles` (Jest runs in band for it).
 */
export function askedInBand(globalConfig: JestGlobalConfig, argv: readonly string[] = process.argv.slice(2)): boolean {
  if (globalConfig.runInBand === true || globalConfig.detectOpenHandles === true) return true;
  for (const arg of argv) {
    if (arg === '--') break;
    if (arg === '-i' || arg === '--runInBand' || arg === '--run-in-band') return true;
    if (/^--(runInBand|run-in-band)=(true|1)$/.test(arg)) return true;
  }
  return false;
}
