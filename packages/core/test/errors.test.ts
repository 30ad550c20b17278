import { describe, expect, it } from 'vitest';
import { assertSupportedPlatform, EXIT, SeqTestError } from '../src/errors.js';

describe('errors', () => {
  it('documented exit codes', () => {
    expect(EXIT).toMatchObject({ MEMORY_EXCEEDED: 121, TIMEOUT: 124, USAGE: 125, NOT_EXECUTABLE: 126, NOT_FOUND: 127 });
  });

  it('SeqTestError defaults to a usage error', () => {
    expect(new SeqTestError('bad').exitCode).toBe(125);
    expect(new SeqTestError('gone', EXIT.NOT_FOUND).exitCode).toBe(127);
  });

  it('only Linux and macOS are supported', () => {
    expect(() => assertSupportedPlatform('linux')).not.toThrow();
    expect(() => assertSupportedPlatform('darwin')).not.toThrow();
    expect(() => assertSupportedPlatform('win32')).toThrow(/win32 is not supported.*WSL/);
  });
});
