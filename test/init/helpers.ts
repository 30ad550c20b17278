import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { CLI, type Finished, REPO, type TestSandbox } from '../support/processes.js';

/**
 * Fixture repositories for `seq-test init` / `doctor`: real git repositories in the sandbox, real hooks run by
 * real `git commit`s. Git never reads the user's config (HOME and the system config are the sandbox's), and a
 * `seq-test` on PATH runs the CLI built in this repository.
 */
export class Fixture {
  readonly bin: string;
  readonly home: string;

  constructor(
    readonly sandbox: TestSandbox,
    readonly dir: string,
  ) {
    this.bin = join(sandbox.dir, 'bin');
    this.home = join(sandbox.dir, 'home');
    mkdirSync(this.bin, { recursive: true });
    mkdirSync(this.home, { recursive: true });
    mkdirSync(dir, { recursive: true });
    const shim = join(this.bin, 'seq-test');
    if (!existsSync(shim)) {
      writeFileSync(shim, `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
      chmodSync(shim, 0o755);
    }
  }

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      HOME: this.home,
      XDG_CONFIG_HOME: join(this.home, '.config'),
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Fixture',
      GIT_AUTHOR_EMAIL: 'fixture@example.invalid',
      GIT_COMMITTER_NAME: 'Fixture',
      GIT_COMMITTER_EMAIL: 'fixture@example.invalid',
      PATH: `${this.bin}:${process.env.PATH}`,
      CI: '',
      ...extra,
    };
  }

  /** Writes files (relative paths), creating directories; `mode` applies to every file written by this call. */
  write(files: Record<string, string>, mode?: number): void {
    for (const [name, content] of Object.entries(files)) {
      const path = join(this.dir, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
      if (mode !== undefined) chmodSync(path, mode);
    }
  }

  read(name: string): string {
    return readFileSync(join(this.dir, name), 'utf8');
  }

  exists(name: string): boolean {
    return existsSync(join(this.dir, name));
  }

  /** Runs git synchronously in the fixture (or `cwd`); throws with git's output when it fails. */
  git(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
    const result = spawnSync('git', args, {
      cwd: options.cwd ?? this.dir,
      env: this.sandbox.env(this.env(options.env)),
      encoding: 'utf8',
    });
    if (result.status !== 0)
      throw new Error(`git ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`);
    return result.stdout;
  }

  initRepo(): this {
    this.git(['init', '-q', '-b', 'main', '.']);
    return this;
  }

  commitAll(message = 'fixture'): void {
    this.git(['add', '-A']);
    this.git(['commit', '-q', '--no-verify', '--allow-empty', '-m', message]);
  }

  /** `seq-test <args>` in the fixture, stdin closed (not a terminal). */
  cli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
    return this.sandbox.run(args, { cwd: options.cwd ?? this.dir, env: this.env(options.env) });
  }

  /** Every file under the fixture (and its .git/hooks) with its content and mode, to compare before/after. */
  snapshot(): Map<string, string> {
    const files = new Map<string, string>();
    const visit = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        const rel = relative(this.dir, path);
        if (entry.isDirectory()) {
          if (rel === '.git') {
            visit(join(path, 'hooks'));
            continue;
          }
          if (entry.name === 'node_modules') continue;
          visit(path);
        } else if (entry.isFile()) {
          files.set(rel, `${(statSync(path).mode & 0o777).toString(8)} ${readFileSync(path, 'utf8')}`);
        }
      }
    };
    visit(this.dir);
    return files;
  }
}

/** The built integration packages, when they are there (they are built by other packages of this repo). */
export function integrationAvailable(name: '@seq-test/vitest' | '@seq-test/jest'): boolean {
  try {
    const require = createRequire(join(REPO, 'packages', 'cli', 'package.json'));
    const pkgFile = require.resolve(`${name}/package.json`);
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports?: { '.'?: unknown }; main?: string };
    const entry = JSON.stringify(pkg.exports?.['.'] ?? pkg.main ?? '').match(/"(\.\/[^"]+\.m?js)"/)?.[1];
    return entry !== undefined && existsSync(join(dirname(pkgFile), entry));
  } catch {
    return false;
  }
}

/** The lines of a stamp file written by hooks: `<event> <ms> <token>` (empty when absent). */
export function stamps(path: string): { event: string; at: number; token: string }[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [event, at, token] = line.split(' ');
      return { event: event ?? '', at: Number(at), token: token ?? '' };
    });
}

/** The shell line a test hook uses to record an event with a millisecond timestamp and the run's token. */
export function stampLine(file: string, event: string): string {
  return `echo "${event} $(date +%s%3N) \${SEQ_TEST_TOKEN:-none}" >> '${file}'`;
}

/** `seq-test doctor --json` findings that are not notes (errors and warnings). */
export function problems(stdout: string): { severity: string; check: string; message: string }[] {
  const report = JSON.parse(stdout) as { findings: { severity: string; check: string; message: string }[] };
  return report.findings.filter((f) => f.severity !== 'info');
}
