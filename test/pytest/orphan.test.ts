import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writePytestFiles } from '../../packages/cli/src/setup/pytest-files.js';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';
import { describePython } from '../support/python.js';
import { allTickets, PYTHON } from './helpers.js';

// `timeout 60 npx …` kills the wrapper and leaves the runner on its own, holding the lock (issue 15 item 6):
// a pytest whose parent dies ends its session as on SIGTERM — its leftover ended, the lock released.
describe.skipIf(PYTHON === null)('pytest whose parent dies', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  it(PYTHON ? describePython(PYTHON) : 'no pytest', async () => {
    sandbox = new TestSandbox();
    const dir = join(sandbox.dir, 'project');
    mkdirSync(dir);
    const ready = join(sandbox.dir, 'ready');
    writeFileSync(join(dir, 'pytest.ini'), '[pytest]\n');
    writeFileSync(
      join(dir, 'test_hangs.py'),
      [
        'import os, subprocess, time',
        '',
        'def test_hangs():',
        '    subprocess.Popen(["sleep", "300"])',
        `    open(${JSON.stringify(ready)}, "w").write(str(os.getpid()))`,
        '    time.sleep(600)',
        '',
      ].join('\n'),
    );
    expect(writePytestFiles(dir).complete).toBe(true);
    // A parent that only starts pytest and waits (an npx stand-in).
    const parent = sandbox.start(
      [
        '-e',
        "require('node:child_process').spawn(process.argv[1], process.argv.slice(2), { stdio: 'inherit' }); setInterval(() => {}, 1e9);",
        PYTHON!.path,
        '-m',
        'pytest',
        '-p',
        'no:cacheprovider',
      ],
      { file: process.execPath, cwd: dir, env: { PYTHONDONTWRITEBYTECODE: '1', PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1' } },
    );
    const pid = await waitFor(
      () => existsSync(ready) && Number(readFileSync(ready, 'utf8')),
      60_000,
      'the test to run',
    );
    expect(allTickets(sandbox.stateDir)).toHaveLength(1);
    parent.child.kill('SIGKILL');
    await parent.exited;
    await waitFor(() => !isAlive(pid), 60_000, 'the orphaned pytest to end its session');
    await waitFor(() => sandbox.ours().length === 0, 60_000, 'its leftover to be ended');
    expect(allTickets(sandbox.stateDir)).toEqual([]);
    expect(parent.output.stdout + parent.output.stderr).toContain(
      `the process that started pytest (pid ${parent.child.pid}) is gone`,
    );
  }, 180_000);
});
