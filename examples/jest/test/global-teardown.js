const { appendFileSync } = require('node:fs');

// The project's own global teardown: stops the shared server gracefully. Under @seq-test/jest it runs
// before leftovers are reaped, so the server is not reported as one.
module.exports = async function globalTeardown() {
  const server = globalThis.__exampleServer;
  if (server) await server.stop();
  if (process.env.EXAMPLE_STAMPS) {
    const record = { hook: 'globalTeardown', pid: process.pid, serverPid: server?.pid ?? null, at: Date.now() };
    appendFileSync(process.env.EXAMPLE_STAMPS, `${JSON.stringify(record)}\n`);
  }
};
