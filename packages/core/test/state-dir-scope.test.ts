import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inStateDirScope, stateDirScope } from '../src/lock/state-dir.js';

// Which runs a sweep that names no run (`reap`, `status`) answers for: those of its own state dir
// (docs/PROTOCOL.md, "Leftovers and state dirs"). The processes themselves are tested in test/lock/reap-scope.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'seq-test-scope-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** An environment whose default state dir is inside `dir` (nothing from the developer's). */
const defaults = () => ({ XDG_RUNTIME_DIR: '', TMPDIR: dir });

describe('state dir scope', () => {
  it('a process that names no state dir belongs to the default one, and only to it', () => {
    const byDefault = stateDirScope(defaults());
    expect(byDefault.isDefault).toBe(true);
    expect(inStateDirScope(byDefault, undefined)).toBe(true);
    expect(inStateDirScope(byDefault, '')).toBe(true);
    const sandbox = stateDirScope({ ...defaults(), SEQ_TEST_STATE_DIR: join(dir, 'sandbox') });
    expect(sandbox.isDefault).toBe(false);
    expect(inStateDirScope(sandbox, undefined)).toBe(false);
    expect(inStateDirScope(sandbox, join(dir, 'sandbox'))).toBe(true);
    expect(inStateDirScope(sandbox, join(dir, 'other'))).toBe(false);
    expect(inStateDirScope(byDefault, join(dir, 'sandbox'))).toBe(false);
  });

  it('the default state dir named explicitly is still the default one', () => {
    const named = stateDirScope({ ...defaults(), SEQ_TEST_STATE_DIR: join(dir, `seq-test-${process.getuid?.()}`) });
    expect(named.isDefault).toBe(true);
    expect(inStateDirScope(named, undefined)).toBe(true);
  });

  it('one directory named two ways (a symlinked parent, a trailing slash, a relative name) is one state dir', () => {
    mkdirSync(join(dir, 'real', 'state'), { recursive: true });
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    const scope = stateDirScope({ ...defaults(), SEQ_TEST_STATE_DIR: join(dir, 'real', 'state') });
    expect(inStateDirScope(scope, join(dir, 'link', 'state'))).toBe(true);
    expect(inStateDirScope(scope, `${join(dir, 'real', 'state')}/`)).toBe(true);
    expect(inStateDirScope(scope, 'state', () => join(dir, 'real'))).toBe(true);
    expect(inStateDirScope(scope, 'state', () => dir)).toBe(false);
    // A relative name whose working directory is unknown belongs to no scope a sweep can name.
    expect(inStateDirScope(scope, 'state')).toBe(false);
  });
});
