// A test suite shaped like a real one (issue 15): many small test files of a few quick tests each, a few of
// which spawn executables (a shell pipeline, a node child, a script by its shebang). Generated on demand, in
// the same form for Vitest, Jest and pytest, into a directory the caller names (gitignored places only).
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every SPAWN_EVERY-th file spawns executables; the others compute a little. */
const SPAWN_EVERY = 10;

/**
 * Writes `files` test files for `flavour` ('vitest' | 'jest' | 'pytest') under `dir` (emptied first), plus
 * the executable they spawn (`bin/tool`). Returns the test directory.
 */
export function writeRealSuite(dir, flavour, files = 60) {
  rmSync(dir, { recursive: true, force: true });
  const tests = join(dir, 'tests');
  mkdirSync(tests, { recursive: true });
  mkdirSync(join(dir, 'bin'), { recursive: true });
  const tool = join(dir, 'bin', 'tool');
  writeFileSync(tool, '#!/bin/sh\necho "tool:$1"\n');
  chmodSync(tool, 0o755);
  for (let i = 1; i <= files; i++) {
    const spawns = i % SPAWN_EVERY === 0;
    const name = String(i).padStart(3, '0');
    if (flavour === 'pytest') writeFileSync(join(tests, `test_file_${name}.py`), pytestFile(i, spawns, tool));
    else {
      const ext = flavour === 'vitest' ? 'mjs' : 'js';
      writeFileSync(join(tests, `file-${name}.test.${ext}`), jsFile(flavour, i, spawns, tool));
    }
  }
  return tests;
}

function jsFile(flavour, i, spawns, tool) {
  const head =
    flavour === 'vitest'
      ? "import { execFileSync } from 'node:child_process';\nimport { expect, test } from 'vitest';\n"
      : "const { execFileSync } = require('node:child_process');\n";
  const body = [];
  for (let t = 1; t <= 5; t++) {
    body.push(
      `test('file ${i} case ${t}', () => {\n  const values = Array.from({ length: 2000 }, (_, k) => (k * ${t}) % 97);\n  expect(values.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);\n});\n`,
    );
  }
  if (spawns) {
    body.push(
      `test('file ${i} spawns executables', () => {\n  expect(execFileSync(${JSON.stringify(tool)}, ['x']).toString()).toBe('tool:x\\n');\n  expect(execFileSync('sh', ['-c', 'echo a b | wc -w']).toString().trim()).toBe('2');\n  expect(execFileSync(process.execPath, ['-e', 'console.log(6 * 7)']).toString().trim()).toBe('42');\n});\n`,
    );
  }
  return `${head}\n${body.join('\n')}`;
}

function pytestFile(i, spawns, tool) {
  const lines = ['import subprocess', 'import sys', ''];
  for (let t = 1; t <= 5; t++) {
    lines.push(
      `def test_file_${i}_case_${t}():`,
      `    values = [(k * ${t}) % 97 for k in range(2000)]`,
      '    assert sum(values) > 0',
      '',
    );
  }
  if (spawns) {
    lines.push(
      `def test_file_${i}_spawns_executables():`,
      `    assert subprocess.run([${JSON.stringify(tool)}, "x"], capture_output=True, check=True).stdout == b"tool:x\\n"`,
      '    assert subprocess.run(["sh", "-c", "echo a b | wc -w"], capture_output=True, check=True).stdout.strip() == b"2"',
      '    assert subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, check=True).stdout.strip() == b"42"',
      '',
    );
  }
  return `${lines.join('\n')}\n`;
}
