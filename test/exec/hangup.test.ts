import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { available } from '../support/tools.js';
import { HANGUP_CASES, hangUp } from './hangup.js';

// A terminal hangup ends run, exec and monitor with the documented 129 (128 + SIGHUP), and no abort: on
// Node 20, a process with a SIGHUP handler used to die in node::ResetStdio() (exit -6, SIGABRT) when it
// restored the terminal that was gone. Other Nodes: hangup.matrix.test.ts.

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

describe.runIf(available('tmux'))(`a terminal hangup (Node ${process.versions.node})`, () => {
  for (const { name, args, ready } of HANGUP_CASES)
    it(`${name} exits 129 and leaves nothing running`, async () => {
      const { status, stderr } = await hangUp(sb, process.execPath, args, (screen) => ready(sb, screen));
      expect(stderr).not.toContain('Assertion failed');
      expect(status, stderr).toBe('129');
      expect(sb.ours()).toEqual([]);
    });
});
