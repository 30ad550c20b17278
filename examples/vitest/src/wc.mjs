#!/usr/bin/env node
// A tiny command-line tool the tests run as a child process: counts the words of its arguments or stdin.
// Exit 2 on an unknown option, like most CLIs.
const args = process.argv.slice(2);
const bad = args.find((a) => a.startsWith('-') && a !== '-');
if (bad) {
  process.stderr.write(`wc.mjs: unknown option ${bad}\n`);
  process.exit(2);
}
const count = (text) => text.split(/\s+/).filter(Boolean).length;
if (args.length > 0 && !args.includes('-')) {
  process.stdout.write(`${count(args.join(' '))}\n`);
} else {
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    input += chunk;
  });
  process.stdin.on('end', () => process.stdout.write(`${count(input)}\n`));
}
