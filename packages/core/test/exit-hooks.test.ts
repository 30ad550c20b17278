import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isGone, processTable } from '../src/proc/index.js';

// The built package (`npm run build`): its ESM and CommonJS bundles are two copies of the module.
const ESM = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const CJS = fileURLToPath(new URL('../dist/index.cjs', import.meta.url));

/** Runs an ES module script in a fresh Node: exit hooks only run when a process exits. */
function run(script: string): { stdout: string; status: number | null } {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, SEQ_TEST_NO_SUBREAPER: '1', SEQ_TEST_TOKEN: '' },
  });
  return { stdout: result.stdout, status: result.status };
}

describe('exit hooks', () => {
  it('every reap hook runs before any release hook, whatever the order they were added in', () => {
    const { stdout, status } = run(`
      const { onProcessExit } = await import(${JSON.stringify(ESM)});
      onProcessExit('release', () => console.log('release 1'));
      onProcessExit('reap', () => { throw new Error('a failing hook does not stop the others'); });
      onProcessExit('reap', () => console.log('reap 1'));
      const forget = onProcessExit('release', () => console.log('removed'));
      onProcessExit('reap', () => console.log('reap 2'));
      forget();
      // Like Vitest 3: a listener that calls process.exit() from inside 'exit' skips the ones after it.
      process.on('exit', () => process.exit(7));
      process.exit(3);
    `);
    expect(stdout.trim().split('\n')).toEqual(['reap 1', 'reap 2', 'release 1']);
    expect(status).toBe(7);
  });

  it('two copies of the module (as Jest loads our bundles) share one registry and one order', () => {
    const { stdout } = run(`
      const a = await import(${JSON.stringify(ESM)});
      const b = (await import('node:module')).createRequire(import.meta.url)(${JSON.stringify(CJS)});
      a.onProcessExit('release', () => console.log('release'));
      b.onProcessExit('reap', () => console.log('reap'));
    `);
    expect(stdout.trim().split('\n')).toEqual(['reap', 'release']);
  });
});

describe('a run interrupted by process.exit', () => {
  it('its tree is ended before the process exits (no helper: nothing else would end it)', () => {
    const pidFile = join(mkdtempSync(join(tmpdir(), 'seq-test-exit-')), 'pid');
    const { status } = run(`
      import { existsSync, readFileSync } from 'node:fs';
      const { execTree } = await import(${JSON.stringify(ESM)});
      void execTree({ command: ['sh', '-c', 'trap "" TERM; echo $$ > ${pidFile}; exec sleep 300'], echoStdout: false });
      const timer = setInterval(() => {
        if (existsSync(${JSON.stringify(pidFile)}) && readFileSync(${JSON.stringify(pidFile)}, 'utf8').trim()) {
          clearInterval(timer);
          setTimeout(() => process.exit(3), 200); // past the first sample, which knows the tree
        }
      }, 20);
    `);
    expect(status).toBe(3);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const alive = !isGone(processTable().get(pid));
    if (alive) process.kill(pid, 'SIGKILL');
    expect(alive).toBe(false);
  });
});
