const { spawn } = require('node:child_process');
const { join } = require('node:path');

/**
 * Starts the greeting server (src/greeting-server.js) as a child process on a free port and resolves once
 * it listens. `stop()` ends it and resolves when it has exited.
 */
function startServer(greeting = 'hello') {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(__dirname, 'greeting-server.js'), greeting], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.on('error', reject);
    child.stdout.once('data', (chunk) => {
      const port = Number(/listening (\d+)/.exec(String(chunk))?.[1]);
      if (!port) return reject(new Error(`unexpected server output: ${chunk}`));
      resolve({
        url: `http://127.0.0.1:${port}`,
        pid: child.pid,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

module.exports = { startServer };
