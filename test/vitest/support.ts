import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { CLI, REPO, type Started, TestSandbox, waitFor } from '../support/processes.js';
// @ts-expect-error plain JavaScript (also run directly by CI), no type declarations
import { ensureMatrix } from './matrix/install.mjs';

export const EXAMPLE = join(REPO, 'examples', 'vitest');
export const PLUGIN = join(REPO, 'integrations', 'vitest');
export { CLI };

/** One Vitest to test against: its package directory and the Node that runs it. */
export interface VitestInstall {
  name: string;
  version: string;
  vitest: string;
  node: string;
}

/** The repo's own Vitest (4.x, in the root node_modules): needs no fixture install. */
export const REPO_VITEST: VitestInstall = {
  name: '4.1',
  version: JSON.parse(readFileSync(join(REPO, 'node_modules', 'vitest', 'package.json'), 'utf8')).version,
  vitest: join(REPO, 'node_modules', 'vitest'),
  node: process.execPath,
};

let installed: Record<string, VitestInstall> | undefined;

/** Every version of the compatibility matrix, installed on first use (test/vitest/matrix/install.mjs). */
export function matrix(): Record<string, VitestInstall> {
  if (!installed) {
    const result = ensureMatrix() as Record<string, Omit<VitestInstall, 'name'>>;
    installed = Object.fromEntries(Object.entries(result).map(([name, entry]) => [name, { name, ...entry }]));
  }
  return installed;
}

/** A private copy of examples/vitest wired to one Vitest install and to this repo's plugin. */
export interface ExampleProject {
  dir: string;
  stamps: string;
  key: string;
  install: VitestInstall;
}

export function prepareExample(
  sandbox: TestSandbox,
  install: VitestInstall,
  options: { name?: string; files?: Record<string, string> } = {},
): ExampleProject {
  const dir = join(sandbox.dir, options.name ?? 'example');
  mkdirSync(dir, { recursive: true });
  for (const entry of ['package.json', 'vitest.config.ts', 'src', 'tests']) {
    cpSync(join(EXAMPLE, entry), join(dir, entry), { recursive: true });
  }
  mkdirSync(join(dir, 'node_modules', '@seq-test'), { recursive: true });
  symlinkSync(install.vitest, join(dir, 'node_modules', 'vitest'));
  symlinkSync(PLUGIN, join(dir, 'node_modules', '@seq-test', 'vitest'));
  for (const [file, text] of Object.entries(options.files ?? {})) writeFileSync(join(dir, file), text);
  const stamps = join(sandbox.dir, 'stamps');
  mkdirSync(stamps, { recursive: true });
  return { dir, stamps, key: `vitest-e2e-${sandbox.marker}`, install };
}

/** Starts Vitest in the project: `node <vitest>/vitest.mjs <args>` with the sandbox's state dir and a private key. */
export function startVitest(
  sandbox: TestSandbox,
  project: ExampleProject,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; runId?: string } = {},
): Started {
  return sandbox.start([join(project.install.vitest, 'vitest.mjs'), ...args], {
    file: project.install.node,
    cwd: project.dir,
    env: vitestEnv(project, options),
  });
}

export function vitestEnv(project: ExampleProject, options: { env?: NodeJS.ProcessEnv; runId?: string } = {}) {
  // This repo's own tests run inside Vitest: none of its variables (VITEST_WORKER_ID, VITEST_MAX_WORKERS, …)
  // may leak into the Vitest under test.
  const outer = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith('VITEST'))
      .map((k) => [k, undefined]),
  );
  return {
    ...outer,
    SEQ_TEST_KEY: project.key,
    EXAMPLE_STAMP_DIR: project.stamps,
    EXAMPLE_RUN_ID: options.runId ?? 'run',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    ...options.env,
  };
}

/** Starts `seq-test run -- <command>` with the project's key. */
export function startSeqTestRun(
  sandbox: TestSandbox,
  project: ExampleProject,
  command: string[],
  options: { env?: NodeJS.ProcessEnv; args?: string[] } = {},
): Started {
  return sandbox.start(['run', ...(options.args ?? []), '--', ...command], {
    cwd: project.dir,
    env: { SEQ_TEST_KEY: project.key, ...options.env },
  });
}

/**
 * A command for `seq-test run` that holds the lock until told: it writes `<marker>.started`, waits for
 * `<marker>.release` to appear, then writes the time in `<marker>.ended` and exits.
 */
export function holderCommand(marker: string): string[] {
  return [
    process.execPath,
    '-e',
    `const fs = require('fs'); fs.writeFileSync('${marker}.started', '');
     const t = setInterval(() => { if (fs.existsSync('${marker}.release')) { clearInterval(t); fs.writeFileSync('${marker}.ended', String(Date.now())); } }, 25);`,
  ];
}

/** `seq-test run` holding the project's lock (holderCommand(marker)), and a Vitest run queued behind it. */
export async function vitestBehindHolder(
  sandbox: TestSandbox,
  project: ExampleProject,
  marker: string,
): Promise<{ holder: Started; vitest: Started }> {
  const holder = startSeqTestRun(sandbox, project, holderCommand(marker));
  await waitFor(() => existsSync(`${marker}.started`), 30_000, 'seq-test run to hold the lock');
  const vitest = startVitest(sandbox, project, ['run']);
  await waitFor(() => /waiting for the lock/.test(vitest.output.stderr), 60_000, 'vitest to queue');
  return { holder, vitest };
}

export interface Span {
  file: string;
  pid: number;
  start: number;
  end: number;
}

/** When each test file of a run started and ended (written by the example's tests/stamps.ts). */
export function spans(project: ExampleProject, runId = 'run'): Span[] {
  const file = join(project.stamps, `${runId}.stamps`);
  if (!existsSync(file)) return [];
  const byFile = new Map<string, Partial<Span>>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const stamp = JSON.parse(line) as { event: string; file: string; pid: number; t: number };
    const id = `${stamp.file}@${stamp.pid}`;
    const span = byFile.get(id) ?? { file: stamp.file, pid: stamp.pid };
    if (stamp.event === 'start') span.start = stamp.t;
    else span.end = stamp.t;
    byFile.set(id, span);
  }
  return [...byFile.values()].map((s) => ({ ...s, end: s.end ?? Infinity }) as Span).sort((a, b) => a.start - b.start);
}

/** Pairs of test files that ran at the same time (empty when every file ran alone). */
export function overlaps(list: Span[]): [string, string][] {
  const found: [string, string][] = [];
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const a = list[i] as Span;
      const b = list[j] as Span;
      if (b.start < a.end && a.start < b.end) found.push([a.file, b.file]);
    }
  }
  return found;
}

/** The pid of the `sleep 300` the example's background test leaves behind on purpose. */
export function leftoverPid(project: ExampleProject, runId = 'run'): number {
  return Number(readFileSync(join(project.stamps, `${runId}.leftover`), 'utf8'));
}

/** Ticket files in the sandbox's state dir, nested queues included. */
export function tickets(sandbox: TestSandbox): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name);
      if (entry.name === 'tickets') found.push(...readdirSync(path).filter((n) => n.endsWith('.json')));
      else walk(path);
    }
  };
  walk(sandbox.stateDir);
  return found;
}

/** A test file for the copy of the example: holds its run for `ms` after writing `<stamps>/<runId>.holding`, with a child and a detached grandchild running. */
export const HOLD_TEST = `
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'vitest';

test('holds the run', async () => {
  spawn('sleep', ['300'], { stdio: 'ignore' });
  spawn('sleep', ['300'], { stdio: 'ignore', detached: true }).unref();
  writeFileSync(join(process.env.EXAMPLE_STAMP_DIR, (process.env.EXAMPLE_RUN_ID ?? 'run') + '.holding'), String(process.pid));
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.EXAMPLE_HOLD_MS ?? 60000)));
}, 120000);
`;

/** A test file that records the SEQ_TEST_TOKEN its test (and a child of it) sees, one line per run. */
export const TOKEN_TEST = `
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'vitest';

test('records the token', () => {
  const child = execFileSync('sh', ['-c', 'echo "$SEQ_TEST_TOKEN"']).toString().trim();
  appendFileSync(join(process.env.EXAMPLE_STAMP_DIR, 'tokens'), (process.env.SEQ_TEST_TOKEN ?? '') + ' ' + child + '\\n');
});
`;

/** Inline projects with different pools (and one project asking for 3 workers on Vitest 4+). */
export function projectsConfig(projectWorkers: boolean): string {
  return `import { seqTest } from '@seq-test/vitest';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [seqTest()],
  test: {
    setupFiles: ['tests/stamps.ts'],
    testTimeout: 30_000,
    projects: [
      { extends: true, test: { name: 'unit', pool: 'forks', include: ['tests/w*.test.ts'] } },
      { extends: true, test: { name: 'spawn', pool: 'threads', include: ['tests/[rbh]*.test.ts']${projectWorkers ? ', maxWorkers: 3' : ''} } },
    ],
  },
});
`;
}

/** The number of test files in examples/vitest. */
export const EXAMPLE_FILES = 4;

/**
 * Call once at a test file's top level: returns a function that makes a fresh sandbox, and every sandbox made
 * during a test is cleaned up after it (ending by pid what its marker finds).
 */
export function sandboxPerTest(): () => TestSandbox {
  const made: TestSandbox[] = [];
  afterEach(() => {
    for (const s of made.splice(0)) s.cleanup();
  });
  return () => {
    const s = new TestSandbox();
    made.push(s);
    return s;
  };
}
