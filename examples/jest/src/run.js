const { spawn } = require('node:child_process');

/** Runs a command to completion and resolves with its exit code and output. */
function run(command, args = [], options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs `count` node processes at once, each computing `script`; resolves with their outputs in order. */
async function runMany(count, script) {
  const runs = Array.from({ length: count }, (_, i) => run(process.execPath, ['-e', script, String(i)]));
  return (await Promise.all(runs)).map((r) => r.stdout.trim());
}

module.exports = { run, runMany };
