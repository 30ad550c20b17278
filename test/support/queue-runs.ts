import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ticketsIn } from '../conformance/helpers.js';
import { type Started, TestSandbox, waitFor } from './processes.js';

/** A sandbox with its own lock key, a log the jobs append to, and a gate file that releases gated jobs. */
export function queueSandbox(name: string) {
  const sandbox = new TestSandbox();
  const key = `${name}-${sandbox.marker}`;
  return { sandbox, key, env: { SEQ_TEST_KEY: key }, log: join(sandbox.dir, 'log'), gate: join(sandbox.dir, 'gate') };
}

/** A command that appends its name to `log` once it runs (after the gate file exists, when given). */
export const loggingJob = (log: string, name: string, gate?: string) => [
  'sh',
  '-c',
  `${gate ? `while [ ! -e ${gate} ]; do sleep 0.02; done; ` : ''}echo ${name} >> ${log}`,
];

export const logLines = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

/** Starts one run per name (`start` starts it), each once the previous one has its ticket in `key`'s queue. */
export async function queueRuns(
  stateDir: string,
  key: string,
  names: string[],
  start: (name: string) => Started,
): Promise<Started[]> {
  const started: Started[] = [];
  for (const name of names) {
    const before = ticketsIn(stateDir, key).length;
    started.push(start(name));
    await waitFor(() => ticketsIn(stateDir, key).length > before, 60_000, `the ticket of ${name}`);
  }
  return started;
}

/** A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), as tickets record it. */
export function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/**
 * The per-test state of a queue test: `setup(name)` makes a fresh sandbox (ended by `cleanup()` in
 * afterEach), `run` starts `seq-test run` (`file`: the npm bin; else `node dist/bin.js`), `queue` starts
 * one logging run per name, each once the previous one has its ticket.
 */
export class QueueHarness {
  sandbox!: TestSandbox;
  constructor(private readonly file?: string) {}

  setup = (name: string) => {
    const made = queueSandbox(name);
    this.sandbox = made.sandbox;
    return made;
  };

  run = (args: string[], env: NodeJS.ProcessEnv): Started =>
    this.sandbox.start(['run', ...args], this.file ? { file: this.file, env } : { env });

  queue = (key: string, env: NodeJS.ProcessEnv, log: string, names: string[]) =>
    queueRuns(this.sandbox.stateDir, key, names, (name) => this.run(['--quiet', '--', ...loggingJob(log, name)], env));
}
