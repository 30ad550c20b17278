/**
 * `node -e WAITING_PARENT <file> <args…>`: a parent that starts `node <file> <args…>` on the same output and
 * then only waits, as npx does. SIGKILLing it alone re-parents the child: `timeout 60 npx jest` in issue 15.
 */
export const WAITING_PARENT =
  "require('node:child_process').spawn(process.execPath, process.argv.slice(1), { stdio: 'inherit' }); setInterval(() => {}, 1e9);";
