import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, type TestSandbox } from '../support/processes.js';
import { Fixture } from './helpers.js';

/**
 * Fixture repositories under test/init/fixtures/<name>/: `repo/` is copied into a sandbox, made a git
 * repository and committed; `case.json` says how init is run. The golden files beside it hold what init and
 * doctor must print: `init.diff` (the whole change as `git diff`, new files included), `doctor-before.txt`
 * and `doctor-after.txt` (one `severity check file` line per finding). SEQ_TEST_UPDATE_GOLDEN=1 rewrites them.
 */
export const FIXTURES = join(REPO, 'test', 'init', 'fixtures');

export interface Case {
  /** What the fixture reproduces (shown as the test's name). */
  title: string;
  /** Arguments of `seq-test init` (default `--yes`). */
  init?: string[];
  /** Shell commands run in the fixture after the commit (`git config core.hooksPath .husky/_`, …). */
  setup?: string[][];
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(FIXTURES, e.name, 'case.json')))
    .map((e) => e.name)
    .sort();
}

export function readCase(name: string): Case {
  return JSON.parse(readFileSync(join(FIXTURES, name, 'case.json'), 'utf8')) as Case;
}

/** The fixture copied into the sandbox as a committed git repository. */
export function checkout(sandbox: TestSandbox, name: string): Fixture {
  const repo = new Fixture(sandbox, join(sandbox.dir, name));
  cpSync(join(FIXTURES, name, 'repo'), repo.dir, { recursive: true });
  repo.initRepo();
  repo.commitAll();
  for (const args of readCase(name).setup ?? []) repo.git(args);
  return repo;
}

/** Everything init changed, as `git diff` shows it (new files included, no index lines: they hold hashes). */
export function worktreeDiff(repo: Fixture): string {
  repo.git(['add', '--intent-to-add', '--all']);
  return repo
    .git(['diff', '--no-color', '--no-ext-diff', '--src-prefix=a/', '--dst-prefix=b/'])
    .replace(/^index [0-9a-f]+\.\.[0-9a-f]+.*\n/gm, '');
}

/** `seq-test doctor --json` as one `severity check file` line per finding, in the order doctor gives them. */
export function doctorLines(stdout: string): string {
  const report = JSON.parse(stdout) as { findings: { severity: string; check: string; file?: string }[] };
  return report.findings
    .filter((f) => !f.check.startsWith('queue.') && !f.check.startsWith('leftovers'))
    .map((f) => `${f.severity} ${f.check}${f.file ? ` ${f.file}` : ''}\n`)
    .join('');
}

/** Compares with the golden file (or writes it when SEQ_TEST_UPDATE_GOLDEN=1); returns the expected text. */
export function golden(name: string, file: string, actual: string): string {
  const path = join(FIXTURES, name, file);
  if (process.env.SEQ_TEST_UPDATE_GOLDEN === '1') writeFileSync(path, actual);
  return existsSync(path) ? readFileSync(path, 'utf8') : `(no golden file ${path}: run with SEQ_TEST_UPDATE_GOLDEN=1)`;
}
