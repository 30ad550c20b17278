import { SeqTestError } from './errors.js';

/** Parses a non-negative number of seconds ("1", "0.5", "2.25") into milliseconds. */
export function parseSeconds(option: string, value: string | number): number {
  const text = String(value).trim();
  const seconds = Number(text);
  if (text === '' || !/^\d*\.?\d+$|^\d+\.$/.test(text) || !Number.isFinite(seconds) || seconds < 0) {
    throw new SeqTestError(`${option} expects a non-negative number of seconds, got "${value}"`);
  }
  return Math.round(seconds * 1000);
}

/** Parses a non-negative integer ("0", "3"). */
export function parseCount(option: string, value: string | number, min = 0): number {
  const text = String(value).trim();
  const count = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(count) || count < min) {
    throw new SeqTestError(
      `${option} expects a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}, got "${value}"`,
    );
  }
  return count;
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Parses a memory size such as "512M", "2G", "1.5G" or "1048576" (bytes); units are powers of 1024. */
export function parseSize(option: string, value: string): number {
  const match = /^(\d*\.?\d+)\s*([KMGT]?)(?:i?B)?$/i.exec(value.trim());
  const unit = match ? SIZE_UNITS[(match[2] ?? '').toUpperCase()] : undefined;
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : Number.NaN;
  if (!Number.isFinite(bytes) || bytes <= 0) {
    throw new SeqTestError(`${option} expects a size such as 512M or 2G, got "${value}"`);
  }
  return bytes;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
