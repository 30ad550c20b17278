import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, TestSandbox } from '../support/processes.js';
import { finishWithin } from './helpers.js';

// Inputs that used to end in a stack trace or a wrong answer: a script whose #! interpreter is missing, a
// working directory whose path is not valid UTF-8, a reader that goes away while seq-test relays the
// output (--log), and more output than --json can hold.

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

describe('a script with a bad #! interpreter', () => {
  for (const command of ['exec', 'run'])
    it(`${command}: one error line and 126, as shells say for a command found but not executable`, async () => {
      writeFileSync(join(sb.dir, 'bad.sh'), '#!/nonexistent/interpreter\necho ran\n');
      chmodSync(join(sb.dir, 'bad.sh'), 0o755);
      const result = await finishWithin(sb.start([command, '--', './bad.sh']), 30_000);
      expect(result.code, result.stderr).toBe(126);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(
        /^seq-test: error: cannot run \.\/bad\.sh: its interpreter \/nonexistent\/interpreter does not exist\n$/,
      );
      // Refused before joining the queue: no ticket left behind.
      const left = existsSync(sb.stateDir) ? readdirSync(sb.stateDir, { recursive: true }).map(String) : [];
      expect(left.filter((name) => name.endsWith('.json'))).toEqual([]);
    });
});

describe('a working directory whose path is not valid UTF-8', () => {
  it('exec runs the command there', async () => {
    // The name's bytes: "bad", 0xff, "dir". Node decodes our cwd lossily (U+FFFD), so that string names
    // no directory; the command must start in the real one.
    const dir = Buffer.concat([Buffer.from(`${sb.dir}/bad`), Buffer.from([0xff]), Buffer.from('dir')]);
    mkdirSync(dir);
    writeFileSync(Buffer.concat([dir, Buffer.from('/here.txt')]), 'yes\n');
    const started = sb.start(
      [
        '-c',
        `cd "$(printf '%s/bad\\377dir' "$0")" && exec "$1" "$2" exec -- cat here.txt`,
        sb.dir,
        process.execPath,
        CLI,
      ],
      {
        file: 'sh',
      },
    );
    const result = await finishWithin(started, 30_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('yes\n');
  });
});

describe('--log keeps the pipe semantics of the command', () => {
  it('`seq-test exec --log f -- yes | head -1`: yes dies by SIGPIPE (141), as without seq-test', async () => {
    const child = spawn(process.execPath, [CLI, 'exec', '--log', join(sb.dir, 'run.log'), '--', 'yes'], {
      cwd: sb.dir,
      env: sb.env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // `head -1`: read the first line, then go away.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
    expect(code, stderr).toBe(141);
    expect(stderr).not.toContain('Connection reset');
    expect(sb.ours()).toEqual([]);
  });
});

describe('--json with more output than it keeps', () => {
  it('keeps the last 16 MiB of each stream, says how much it dropped, and keeps the status', async () => {
    const total = 40 * 1024 * 1024;
    const script = `head -c ${total - 4} /dev/zero | tr '\\0' a; echo end; exit 3`;
    const result = await finishWithin(sb.start(['exec', '--json', '--', 'sh', '-c', script]), 120_000);
    expect(result.code, result.stderr.slice(0, 2000)).toBe(3);
    const json = JSON.parse(result.stdout);
    expect(json.exitCode).toBe(3);
    expect(json.stdout.length).toBe(16 * 1024 * 1024);
    expect(json.stdout.endsWith('aaaend\n')).toBe(true);
    expect(json.stdoutDroppedBytes).toBe(total - 16 * 1024 * 1024);
    expect(json.attempts[0].stdoutDroppedBytes).toBe(total - 16 * 1024 * 1024);
    expect(json.stderrDroppedBytes).toBe(0);
  });
});
