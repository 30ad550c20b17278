import { describe, expect, it } from 'vitest';
import { SeqTestError } from '../src/errors.js';
import { formatBytes, formatDuration, parseCount, parseSeconds, parseSize } from '../src/units.js';

describe('parseSeconds', () => {
  it.each([
    ['0', 0],
    ['1', 1000],
    ['0.5', 500],
    ['.25', 250],
    ['2.', 2000],
    [' 3 ', 3000],
    ['0.0004', 0],
    [7, 7000],
  ])('%j is %i ms', (value, ms) => {
    expect(parseSeconds('--timeout', value)).toBe(ms);
  });

  it.each(['', ' ', '-1', 'NaN', 'Infinity', '1e3', '0x10', '1s', 'abc', '1.2.3', '+1'])('rejects %j', (value) => {
    expect(() => parseSeconds('--timeout', value)).toThrow(SeqTestError);
    expect(() => parseSeconds('--timeout', value)).toThrow(
      `--timeout expects a non-negative number of seconds, got "${value}"`,
    );
  });

  it('throws a usage error (exit 125)', () => {
    try {
      parseSeconds('--grace', '-2');
      expect.unreachable();
    } catch (error) {
      expect((error as SeqTestError).exitCode).toBe(125);
    }
  });
});

describe('parseCount', () => {
  it.each([
    ['0', 0],
    ['3', 3],
    [' 12 ', 12],
  ])('%j is %i', (value, count) => {
    expect(parseCount('--retry', value)).toBe(count);
  });

  it.each(['-1', '1.5', '', 'two', '1e2', '99999999999999999999'])('rejects %j', (value) => {
    expect(() => parseCount('--retry', value)).toThrow(`--retry expects a whole number (0 or more), got "${value}"`);
  });

  it('honours a minimum', () => {
    expect(parseCount('--slots', '1', 1)).toBe(1);
    expect(() => parseCount('--slots', '0', 1)).toThrow('--slots expects a whole number of at least 1, got "0"');
  });
});

describe('parseSize', () => {
  it.each([
    ['1048576', 1048576],
    ['512M', 512 * 1024 ** 2],
    ['512m', 512 * 1024 ** 2],
    ['2G', 2 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['100MB', 100 * 1024 ** 2],
    ['100MiB', 100 * 1024 ** 2],
    ['64K', 64 * 1024],
    ['1T', 1024 ** 4],
    ['10B', 10],
    [' 3 M ', 3 * 1024 ** 2],
  ])('%j is %i bytes', (value, bytes) => {
    expect(parseSize('--max-memory', value)).toBe(bytes);
  });

  it.each(['', '0', '0M', '-5M', '12Q', 'M', 'lots', '1.2.3G', '0.0000001'])('rejects %j', (value) => {
    expect(() => parseSize('--max-memory', value)).toThrow(
      `--max-memory expects a size such as 512M or 2G, got "${value}"`,
    );
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [100 * 1024 ** 2, '100 MiB'],
    [1.5 * 1024 ** 3, '1.5 GiB'],
    [3 * 1024 ** 5, '3072 TiB'],
  ])('%i is %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [300, '300 ms'],
    [999.6, '1000 ms'],
    [1000, '1.0 s'],
    [59_949, '59.9 s'],
    [61_000, '1m01s'],
    [3_599_000, '59m59s'],
    [3_600_000, '1h00m'],
    [3_000_000_000, '833h20m'],
  ])('%i ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
