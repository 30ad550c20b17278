import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `seq-test doctor` says which subreaper helper runs use and why, in text and in --json.
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'seq-test.js');
const HELPER = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'helpers',
  `linux-${process.arch}`,
  'seq-test-subreaper',
);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'seq-test-doctor-helper-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function doctor(env: NodeJS.ProcessEnv, json: boolean) {
  const result = spawnSync(process.execPath, [CLI, 'doctor', ...(json ? ['--json'] : [])], {
    cwd: dir,
    env: { ...process.env, SEQ_TEST_STATE_DIR: join(dir, 'state'), ...env },
    encoding: 'utf8',
  });
  return { ...result, report: json ? JSON.parse(result.stdout) : undefined };
}

describe.runIf(process.platform === 'linux')('seq-test doctor and the subreaper helper', () => {
  it('names the helper in use and why', () => {
    const { report } = doctor({ SEQ_TEST_SUBREAPER: HELPER }, true);
    expect(report.helper).toMatchObject({ path: HELPER, source: 'override', reason: 'SEQ_TEST_SUBREAPER names it' });
    expect(doctor({ SEQ_TEST_SUBREAPER: HELPER }, false).stdout).toContain(`subreaper helper: ${HELPER}`);
  });

  it('says when runs go without it, on purpose', () => {
    const { report } = doctor({ SEQ_TEST_NO_SUBREAPER: '1' }, true);
    expect(report.helper).toMatchObject({ path: null, reason: 'disabled by SEQ_TEST_NO_SUBREAPER=1' });
  });

  it('reports an unusable SEQ_TEST_SUBREAPER as an error with the fix', () => {
    const fake = join(dir, 'fake-helper');
    writeFileSync(fake, '#!/bin/sh\necho hello\n');
    chmodSync(fake, 0o755);
    const { report, status } = doctor({ SEQ_TEST_SUBREAPER: fake }, true);
    expect(status).toBe(1);
    expect(report.findings).toContainEqual(
      expect.objectContaining({
        severity: 'error',
        check: 'helper.override',
        message: expect.stringMatching(/^SEQ_TEST_SUBREAPER=.*did not answer the handshake/),
        fix: expect.stringMatching(/or unset it$/),
      }),
    );
  });
});
