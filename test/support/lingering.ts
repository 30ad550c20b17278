import { type CommandIdentity, recordRun } from '@seq-test/core/internal';

/**
 * For the `--slots auto` tests of a holder that lingers: a command that logs "S/E <ticket> <ns>" around its
 * life to ./stamps.log, allocates (and touches) 150 MiB, leaves a process behind that runs until ./release
 * exists (the dev server a test forgot, gated so that the test decides when it ends), and exits after
 * 1.5 s. Run it with a long `--linger` and its holder keeps its place until the gate opens.
 */
export const LEAVE_BEHIND = `const fs = require('node:fs');
const { spawn } = require('node:child_process');
const log = (k) => fs.appendFileSync('stamps.log', k + ' ' + process.env.SEQ_TEST_TICKET + ' ' + process.hrtime.bigint() + '\\n');
log('S');
const data = Buffer.alloc(150 * 1024 * 1024, 1);
spawn('/bin/sh', ['-c', 'while [ ! -e release ]; do sleep 0.05; done'], { stdio: 'ignore' }).unref();
setTimeout(() => { log('E'); process.exit(data[0] === 1 ? 0 : 1); }, 1500);
`;

/**
 * Writes a known peak into the memory history of a key's queue dir (which must exist), as five past runs
 * would: with five known the prediction is that peak plus the usual 15 % (fewer known get a wider margin).
 */
export function seedPeak(queueDir: string, what: CommandIdentity, peakBytes: number): void {
  for (let i = 0; i < 5; i++) {
    const problem = recordRun(queueDir, what, { peakBytes, durationMs: 1500, endedAt: Date.now(), measure: 'pss' });
    if (problem) throw new Error(problem);
  }
}
