const { appendFileSync } = require('node:fs');
const { startServer } = require('../src/server');

// The project's own global setup: starts a shared server for the API tests. Under @seq-test/jest it runs
// after the lock is taken (so SEQ_TEST_TOKEN is already set, and the server carries it).
module.exports = async function globalSetup() {
  const server = await startServer('welcome');
  globalThis.__exampleServer = server;
  process.env.EXAMPLE_API_URL = server.url;
  if (process.env.EXAMPLE_STAMPS) {
    const record = {
      hook: 'globalSetup',
      pid: process.pid,
      serverPid: server.pid,
      token: process.env.SEQ_TEST_TOKEN ?? null,
      at: Date.now(),
    };
    appendFileSync(process.env.EXAMPLE_STAMPS, `${JSON.stringify(record)}\n`);
  }
};
