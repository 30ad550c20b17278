import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SeqTestError } from '../src/errors.js';
import { resolveCommand } from '../src/resolve-command.js';

const dir = mkdtempSync(join(tmpdir(), 'seq-test-resolve-'));
const bin = join(dir, 'bin');
const other = join(dir, 'other');
mkdirSync(bin);
mkdirSync(other);
writeFileSync(join(bin, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
writeFileSync(join(other, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
writeFileSync(join(other, 'plain'), 'data\n', { mode: 0o644 });
writeFileSync(join(bin, 'both'), 'data\n', { mode: 0o644 });
writeFileSync(join(other, 'both'), '#!/bin/sh\n', { mode: 0o755 });
mkdirSync(join(bin, 'adir'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function failure(fn: () => unknown): SeqTestError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SeqTestError) return error;
    throw error;
  }
  throw new Error('expected a SeqTestError');
}

const PATH = `${bin}:${other}`;

describe('resolveCommand', () => {
  it('searches PATH in order', () => {
    expect(resolveCommand('tool', dir, PATH)).toBe(join(bin, 'tool'));
    expect(resolveCommand('tool', dir, `${other}:${bin}`)).toBe(join(other, 'tool'));
  });

  it('skips a non-executable match when a later one is executable, as a shell does', () => {
    expect(resolveCommand('both', dir, PATH)).toBe(join(other, 'both'));
  });

  it('resolves paths with a slash against cwd, without searching PATH', () => {
    expect(resolveCommand('./bin/tool', dir, '')).toBe(join(bin, 'tool'));
    expect(resolveCommand(join(bin, 'tool'), '/', '')).toBe(join(bin, 'tool'));
  });

  it('an empty PATH entry means the current directory', () => {
    expect(resolveCommand('tool', bin, `:${other}`)).toBe(join(bin, 'tool'));
  });

  it('not found is 127 with the name', () => {
    const error = failure(() => resolveCommand('no-such-tool', dir, PATH));
    expect(error.exitCode).toBe(127);
    expect(error.message).toBe('command not found: no-such-tool (searched PATH)');
    expect(failure(() => resolveCommand('./missing', dir, PATH)).exitCode).toBe(127);
  });

  it('a directory is 126', () => {
    const error = failure(() => resolveCommand('./bin/adir', dir, PATH));
    expect(error.exitCode).toBe(126);
    expect(error.message).toContain('(a directory)');
  });

  it('a file without any execute bit is 126 (even for root), found on PATH or by path', () => {
    const error = failure(() => resolveCommand('plain', dir, PATH));
    expect(error.exitCode).toBe(126);
    expect(error.message).toBe(`command is not executable: ${join(other, 'plain')} (permission denied)`);
    expect(failure(() => resolveCommand('./other/plain', dir, PATH)).exitCode).toBe(126);
  });

  it('an empty command is a usage error', () => {
    expect(failure(() => resolveCommand('', dir, PATH)).exitCode).toBe(125);
  });
});
