import { cpSync, existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { prepareExample, startVitest, tickets, type VitestInstall } from './support.js';

// A suite shaped like the real ones issue 15 was about (the same style as test/jest/fixtures/faithful):
// tests that read process.argv through a commander-style parser that exits on an unknown option, stub
// process.exit, change process.env and the working directory, and spawn executables. Under the plugin every
// test must end as it does under plain Vitest, whatever flags Vitest is given.

const FIXTURE = join(import.meta.dirname, 'fixtures', 'faithful');

/** test file → status and "file › test" → status, from Vitest's JSON report. */
function results(report: string): Record<string, string> {
  const found: Record<string, string> = {};
  if (!existsSync(report)) return found;
  const json = JSON.parse(readFileSync(report, 'utf8')) as {
    testResults: Array<{ name: string; status: string; assertionResults: Array<{ fullName: string; status: string }> }>;
  };
  for (const file of json.testResults) {
    found[basename(file.name)] = file.status;
    for (const t of file.assertionResults) found[`${basename(file.name)} › ${t.fullName}`] = t.status;
  }
  return found;
}

export function faithfulCases(install: () => VitestInstall): void {
  const sandboxes: TestSandbox[] = [];
  afterEach(() => {
    for (const s of sandboxes.splice(0)) s.cleanup();
  });

  test('the faithful suite: identical results to plain Vitest under --maxWorkers 4, --config file and a path', async () => {
    const box = new TestSandbox();
    sandboxes.push(box);
    const project = prepareExample(box, install());
    cpSync(FIXTURE, join(project.dir, 'faithful'), { recursive: true });
    cpSync(join(FIXTURE, 'vitest.config.ts'), join(project.dir, 'vitest.faithful.config.ts'));
    cpSync(join(FIXTURE, 'vitest.plain.config.ts'), join(project.dir, 'vitest.faithful-plain.config.ts'));
    const run = async (name: string, args: string[]) => {
      const report = join(box.dir, `${name}.json`);
      const finished = await startVitest(box, project, ['run', ...args, '--reporter=json', `--outputFile=${report}`])
        .finished;
      return { code: finished.code, output: finished.stdout + finished.stderr, results: results(report) };
    };
    const plain = await run('plain', ['--config', 'vitest.faithful-plain.config.ts', '--maxWorkers', '4']);
    expect(plain.code, plain.output).toBe(0);
    expect(Object.keys(plain.results)).toHaveLength(8 + 13);
    for (const [name, args] of [
      ['workers', ['--config', 'vitest.faithful.config.ts', '--maxWorkers', '4']],
      ['config', ['-c', 'vitest.faithful.config.ts']],
      ['path', ['--config', 'vitest.faithful.config.ts', 'faithful/tests']],
    ] as const) {
      const wrapped = await run(name, [...args]);
      expect(wrapped.code, `${name}: ${wrapped.output}`).toBe(plain.code);
      expect(wrapped.results, name).toEqual(plain.results);
    }
    expect(tickets(box)).toEqual([]);
  });
}
