import { describe, expect, it, type TestContext } from 'vitest';
import { TestSandbox } from '../support/processes.js';

// Every bad invocation: one line on stderr starting "seq-test: error:", exit 125, nothing on stdout, and
// nothing started (the command would be `sleep 300`, so a late validation would leave it running).

function sandbox(context: TestContext): TestSandbox {
  const created = new TestSandbox();
  context.onTestFinished(() => {
    created.cleanup();
  });
  return created;
}

const BAD: [string, string[], RegExp][] = [
  ['an unknown flag', ['exec', '--bogus', '--', 'sleep', '300'], /unknown option '--bogus'/],
  ['no command', ['exec'], /missing required argument 'command'/],
  ['no command after --', ['exec', '--timeout', '5', '--'], /missing required argument 'command'/],
  ['an empty command', ['exec', '--', ''], /the command is empty/],
  ['a negative timeout', ['exec', '--timeout', '-1', '--', 'sleep', '300'], /--timeout expects .* got "-1"/],
  ['a NaN timeout', ['exec', '--timeout', 'NaN', '--', 'sleep', '300'], /--timeout expects .* got "NaN"/],
  ['a word as timeout', ['exec', '--timeout', 'soon', '--', 'sleep', '300'], /--timeout expects .* got "soon"/],
  ['an empty timeout', ['exec', '--timeout', '', '--', 'sleep', '300'], /--timeout expects .* got ""/],
  ['an empty --timeout=', ['exec', '--timeout=', '--', 'sleep', '300'], /--timeout expects .* got ""/],
  ['a timeout without its value', ['exec', '--timeout'], /option '--timeout <sec>' argument missing/],
  ['a negative grace', ['exec', '--grace', '-2', '--', 'sleep', '300'], /--grace expects .* got "-2"/],
  ['a bad linger', ['exec', '--linger', '1s', '--', 'sleep', '300'], /--linger expects .* got "1s"/],
  ['an unknown signal name', ['exec', '--kill-signal', 'FOO', '--', 'sleep', '300'], /--kill-signal .* got "FOO"/],
  ['an unknown signal number', ['exec', '--kill-signal', '99', '--', 'sleep', '300'], /--kill-signal .* got "99"/],
  ['a bad size', ['exec', '--max-memory', '12Q', '--', 'sleep', '300'], /--max-memory expects a size .* got "12Q"/],
  ['a zero size', ['exec', '--max-memory', '0', '--', 'sleep', '300'], /--max-memory expects a size .* got "0"/],
  ['--retry -1', ['exec', '--retry', '-1', '--', 'sleep', '300'], /--retry expects a whole number .* got "-1"/],
  ['--retry 1.5', ['exec', '--retry', '1.5', '--', 'sleep', '300'], /--retry expects a whole number .* got "1.5"/],
  ['an unwritable --log', ['exec', '--log', '/proc/seq-test.log', '--', 'sleep', '300'], /--log cannot write/],
  ['an unknown subcommand', ['bogus', '--', 'sleep', '300'], /unknown command 'bogus'/],
];

describe.concurrent('seq-test exec rejects bad input', () => {
  it.for(BAD)('%s', async ([, args, message], context) => {
    const sb = sandbox(context);
    const result = await sb.run(args);
    expect(result.code).toBe(125);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^seq-test: error: [^\n]+\n$/);
    expect(result.stderr).toMatch(message);
    expect(sb.ours()).toEqual([]);
  });
});
