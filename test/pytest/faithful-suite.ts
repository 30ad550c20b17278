import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { writePytestFiles } from '../../packages/cli/src/setup/pytest-files.js';
import type { TestSandbox } from '../support/processes.js';
import type { Python } from '../support/python.js';
import { allTickets, FIXTURES } from './helpers.js';

// A suite in the style of test/jest/fixtures/faithful (issue 15): a parser that exits on an unknown option,
// a program that exits, environment and working-directory changes, spawned executables. Under the plugin
// every test must end as under plain pytest — with pytest-xdist's -n 2 where the interpreter has it, which
// the plugin turns off.

/** "file::test" → outcome, from a JUnit XML report. */
function outcomes(report: string): Record<string, string> {
  const found: Record<string, string> = {};
  if (!existsSync(report)) return found;
  const xml = readFileSync(report, 'utf8');
  for (const match of xml.matchAll(
    /<testcase classname="([^"]*)" name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g,
  )) {
    const body = match[4] ?? '';
    const outcome = /<(failure|error)/.test(body) ? 'failed' : /<skipped/.test(body) ? 'skipped' : 'passed';
    found[`${match[1]}::${match[2]}`] = outcome;
  }
  return found;
}

export async function faithfulPytest(sandbox: TestSandbox, python: Python): Promise<void> {
  const plainDir = join(sandbox.dir, 'plain');
  const pluginDir = join(sandbox.dir, 'plugin');
  for (const dir of [plainDir, pluginDir]) cpSync(join(FIXTURES, 'faithful'), dir, { recursive: true });
  expect(writePytestFiles(pluginDir).complete).toBe(true);
  const xdist = python.xdist ? ['-p', 'xdist', '-n', '2'] : [];
  const run = async (dir: string, name: string) => {
    const report = join(sandbox.dir, `${name}.xml`);
    const finished = await sandbox.run(['-m', 'pytest', '-p', 'no:cacheprovider', ...xdist, `--junitxml=${report}`], {
      file: python.path,
      cwd: dir,
      env: {
        PYTHONDONTWRITEBYTECODE: '1',
        PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1',
        SEQ_TEST_KEY: `faithful-${sandbox.marker}`,
      },
    });
    return { code: finished.code, output: finished.stdout + finished.stderr, outcomes: outcomes(report) };
  };
  const plain = await run(plainDir, 'plain');
  expect(plain.code, plain.output).toBe(0);
  expect(Object.keys(plain.outcomes)).toHaveLength(14);
  const plugin = await run(pluginDir, 'plugin');
  expect(plugin.code, plugin.output).toBe(plain.code);
  expect(plugin.outcomes).toEqual(plain.outcomes);
  if (xdist.length > 0) expect(plugin.output).toContain('pytest-xdist parallelism turned off (-n 2 ignored)');
  expect(allTickets(sandbox.stateDir)).toEqual([]);
}
