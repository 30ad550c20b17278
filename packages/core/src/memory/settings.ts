import { SeqTestError } from '../errors.js';
import { parseCount, parseSize } from '../units.js';

/** `--slots`: a whole number ≥ 1, or "auto" (memory-aware admission). */
export function parseSlots(option: string, value: string | number): number | 'auto' {
  if (typeof value === 'string' && value.trim().toLowerCase() === 'auto') return 'auto';
  try {
    return parseCount(option, value, 1);
  } catch {
    throw new SeqTestError(`${option} expects a whole number of at least 1 or "auto", got "${value}"`);
  }
}

export type PressureAction = 'wait' | 'pause';

/** `--on-pressure`: "wait" (stop admitting, the default) or "pause" (also SIGSTOP the youngest holder). */
export function parsePressureAction(option: string, value: string): PressureAction {
  const text = value.trim().toLowerCase();
  if (text === 'wait' || text === 'pause') return text;
  throw new SeqTestError(`${option} expects "wait" or "pause", got "${value}"`);
}

/** `--memory-budget`: a positive size (512M, 2G); negative, zero and unparsable values are errors. */
export function parseBudget(option: string, value: string): number {
  return parseSize(option, value);
}
