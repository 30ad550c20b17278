import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// @ts-expect-error plain ES module shared with the matrix's install step, no types
import { ensureNode } from '../support/node-versions.mjs';
import { TestSandbox } from '../support/processes.js';
import { available } from '../support/tools.js';
import { HANGUP_CASES, hangUp } from './hangup.js';

// hangup.test.ts on the other Nodes seq-test supports (fetched once by test/support/node-versions.mjs).

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

describe.runIf(available('tmux'))('a terminal hangup on Node 22 and 24', () => {
  for (const major of [22, 24])
    for (const { name, args, ready } of HANGUP_CASES)
      it(`Node ${major}: ${name} exits 129 and leaves nothing running`, async () => {
        const node = ensureNode(major) as string;
        const { status, stderr } = await hangUp(sb, node, args, (screen) => ready(sb, screen));
        expect(stderr).not.toContain('Assertion failed');
        expect(status, stderr).toBe('129');
        expect(sb.ours()).toEqual([]);
      });
});
