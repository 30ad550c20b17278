import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertSupportedPlatform, EXIT, SeqTestError } from '../src/errors.js';

/** The README's "Exit codes" table: numeric code → its meaning. */
function documentedExitCodes(): Map<number, string> {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Exit codes'));
  const table = section.slice(0, section.indexOf('\n## '));
  const codes = new Map<number, string>();
  for (const [, code, meaning] of table.matchAll(/^\| (\d+) +\| (.+?) +\|$/gm)) codes.set(Number(code), meaning!);
  return codes;
}

describe('errors', () => {
  // The codes are a contract users script against: the README's table and EXIT must be the same set, and
  // each meaning must name the option or situation the constant is about.
  it('EXIT is exactly the README’s table of seq-test’s own exit codes', () => {
    const documented = documentedExitCodes();
    expect([...documented.keys()].sort()).toEqual(Object.values(EXIT).sort());
    const about: Record<keyof typeof EXIT, RegExp> = {
      MEMORY_EXCEEDED: /--max-memory/,
      WAIT_TIMEOUT: /--wait-timeout/,
      LOCK_BUSY: /--no-wait/,
      TIMEOUT: /`--timeout`/,
      USAGE: /bad usage/,
      NOT_EXECUTABLE: /not executable/,
      NOT_FOUND: /not found/,
    };
    for (const [name, code] of Object.entries(EXIT)) {
      expect(documented.get(code), `${name} = ${code}`).toMatch(about[name as keyof typeof EXIT]);
    }
  });

  it('SeqTestError defaults to a usage error', () => {
    expect(new SeqTestError('bad').exitCode).toBe(EXIT.USAGE);
    expect(new SeqTestError('gone', EXIT.NOT_FOUND).exitCode).toBe(EXIT.NOT_FOUND);
  });

  it('only Linux and macOS are supported', () => {
    expect(() => assertSupportedPlatform('linux')).not.toThrow();
    expect(() => assertSupportedPlatform('darwin')).not.toThrow();
    expect(() => assertSupportedPlatform('win32')).toThrow(/win32 is not supported.*WSL/);
  });
});
