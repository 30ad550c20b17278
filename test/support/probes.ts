/** A command (for `seq-test run`) that prints "alive" if pid `pid` runs (zombies count as gone), else "gone". */
export function aliveProbe(pid: number): string[] {
  return [
    process.execPath,
    '-e',
    `let s = ''; try { s = require('fs').readFileSync('/proc/${pid}/stat', 'latin1'); } catch {}
     const state = s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
     console.log(s && state !== 'Z' ? 'alive' : 'gone');`,
  ];
}
