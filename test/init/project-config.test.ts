import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { Fixture } from './helpers.js';

let sandbox: TestSandbox | undefined;
afterEach(() => {
  expect(sandbox?.cleanup()).toBe(0);
  sandbox = undefined;
});

/** A git repository with these files, in this test's sandbox (one sandbox per test, several repos in it). */
function fixture(files: Record<string, string>, name = 'repo'): Fixture {
  sandbox ??= new TestSandbox();
  const repo = new Fixture(sandbox, join(sandbox.dir, name)).initRepo();
  repo.write(files);
  return repo;
}

describe('project defaults (package.json "seqTest", .seqtestrc.json)', () => {
  it('run and exec take timeout from package.json "seqTest"; a flag wins over it', async () => {
    const repo = fixture({ 'package.json': '{\n  "name": "p",\n  "seqTest": { "timeout": 0.5, "grace": 0.2 }\n}\n' });
    // `sleep 300` never ends by itself within the test, so 124 can only be the configured timeout (no
    // wall-clock bound needed, which a loaded machine could break).
    const run = await repo.cli(['run', '--', 'sleep', '300']);
    expect(run.code).toBe(124);
    const exec = await repo.cli(['exec', '--', 'sleep', '300']);
    expect(exec.code).toBe(124);
    const flag = await repo.cli(['exec', '--timeout', '0', '--', 'sleep', '0.8']);
    expect(flag.code, flag.stderr).toBe(0);
    // in a subdirectory too: the nearest settings up to the git top-level apply
    repo.write({ 'sub/dir/.keep': '' });
    const nested = await repo.cli(['exec', '--', 'sleep', '300'], { cwd: join(repo.dir, 'sub', 'dir') });
    expect(nested.code).toBe(124);
  });

  it('outside a git repository only the current directory counts (never a stray package.json above it)', async () => {
    sandbox = new TestSandbox();
    const outside = new Fixture(sandbox, join(sandbox.dir, 'plain'));
    outside.write({ 'package.json': '{ "seqTest": { "timeout": 0.3 } }\n', 'child/.keep': '' });
    expect((await outside.cli(['exec', '--', 'sleep', '5'])).code).toBe(124);
    const child = await outside.cli(['exec', '--', 'sleep', '0.6'], { cwd: join(outside.dir, 'child') });
    expect(child.code, child.stderr).toBe(0);
  });

  it('.seqtestrc.json wins over package.json in the same directory; key: flag > $SEQ_TEST_KEY > file > git top-level', async () => {
    const repo = fixture({
      'package.json': '{\n  "name": "p",\n  "seqTest": { "key": "from-package-json" }\n}\n',
      '.seqtestrc.json': '{ "key": "from-rc" }\n',
    });
    const keyOf = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const r = await repo.cli(['run', '--json', ...args, '--', 'true'], { env });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout).lock.key as string;
    };
    expect(await keyOf([])).toBe('from-rc');
    expect(await keyOf([], { SEQ_TEST_KEY: 'from-env' })).toBe('from-env');
    expect(await keyOf(['--key', 'from-flag'], { SEQ_TEST_KEY: 'from-env' })).toBe('from-flag');
    repo.write({ '.seqtestrc.json': '{ "timeout": 30 }\n' });
    expect(await keyOf([])).toBe(repo.dir);
  });

  it('bad settings: one line naming the file and the field, exit 125, no ticket left', async () => {
    const cases: [string, string, string][] = [
      [
        'package.json',
        '{ "seqTest": { "slots": "x" } }',
        'package.json "seqTest.slots" must be a whole number ≥ 1 or "auto", got "x"',
      ],
      [
        'package.json',
        '{ "seqTest": { "slots": 0 } }',
        'package.json "seqTest.slots" must be a whole number ≥ 1 or "auto", got 0',
      ],
      [
        'package.json',
        '{ "seqTest": { "timout": 5 } }',
        'package.json "seqTest.timout" is not a seq-test setting (known: key, slots, maxSlots, memoryBudget, timeout, grace, linger, maxMemory, killSignal)',
      ],
      [
        '.seqtestrc.json',
        '{ "timeout": "soon" }',
        '.seqtestrc.json "timeout" must be a number of seconds ≥ 0 (such as 600 or 0.5), got "soon"',
      ],
      [
        '.seqtestrc.json',
        '{ "maxMemory": "lots" }',
        '.seqtestrc.json "maxMemory" must be a size such as "512M" or "2G" (or a number of bytes), got "lots"',
      ],
      [
        '.seqtestrc.json',
        '{ "killSignal": "SIGNOPE" }',
        '.seqtestrc.json "killSignal" must be a signal name such as "SIGTERM", got "SIGNOPE"',
      ],
      ['.seqtestrc.json', '{ "key": "" }', '.seqtestrc.json "key" must be a non-empty string, got ""'],
      [
        '.seqtestrc.json',
        '{ "slots": "auto", "memoryBudget": "-1G" }',
        '.seqtestrc.json "memoryBudget" must be a size such as "512M" or "2G" (or a number of bytes), got "-1G"',
      ],
      [
        '.seqtestrc.json',
        '{ "slots": "auto", "maxSlots": 0 }',
        '.seqtestrc.json "maxSlots" must be a whole number ≥ 1, got 0',
      ],
      [
        '.seqtestrc.json',
        '{ "slots": 2, "maxSlots": 3 }',
        '.seqtestrc.json "maxSlots" only applies with "slots": "auto"',
      ],
      ['.seqtestrc.json', '[1]', '.seqtestrc.json must be a JSON object, got an array'],
      ['package.json', '{ "seqTest": 5 }', 'package.json "seqTest" must be a JSON object, got 5'],
    ];
    // The cases share nothing but the sandbox (each its own repository, so its own key): checked
    // concurrently, as most of the time is Node starting the CLI.
    await Promise.all(
      cases.map(async ([file, content, message], n) => {
        const repo = fixture({ [file]: content }, `bad-${n}`);
        for (const command of ['run', 'exec']) {
          const result = await repo.cli([command, '--', 'true']);
          expect(result.code, `${file} ${content}`).toBe(125);
          expect(result.stderr).toBe(`seq-test: error: ${message}\n`);
        }
        const status = await repo.cli(['status', '--json']);
        expect(JSON.parse(status.stdout).queues[0].tickets).toEqual([]);
        const doctor = await repo.cli(['doctor', '--json']);
        expect(doctor.code).toBe(1);
        expect(JSON.parse(doctor.stdout).findings[0]).toMatchObject({ severity: 'error', check: 'config.invalid' });
      }),
    );
    const broken = fixture({ '.seqtestrc.json': '{ "timeout": ' }, 'broken');
    const result = await broken.cli(['run', '--', 'true']);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/^seq-test: error: \.seqtestrc\.json is not valid JSON: /);
  });
});
