const { appendFileSync } = require('node:fs');
const { basename } = require('node:path');

// Instrumentation for seq-test's own end-to-end tests: with EXAMPLE_STAMPS set, every test file appends
// when it started and ended, and in which process, so overlapping test files would show.
const file = process.env.EXAMPLE_STAMPS;
if (file) {
  let start = 0;
  beforeAll(() => {
    start = Date.now();
  });
  afterAll(() => {
    const record = { file: basename(expect.getState().testPath), pid: process.pid, start, end: Date.now() };
    appendFileSync(file, `${JSON.stringify(record)}\n`);
  });
}
