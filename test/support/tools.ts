// Optional tools some default-tier tests drive for real. Without one, those tests skip, and the global
// setup prints one line saying which and how to get the tool; nothing skips silently.
import { spawnSync } from 'node:child_process';

export const OPTIONAL_TOOLS = {
  tmux: {
    tests: 'test/monitor (the monitor in a real terminal), test/exec/hangup* (a terminal hangup)',
    install: 'apt-get install tmux',
  },
  'pre-commit': {
    tests: 'test/init/pre-commit.test.ts (commits through the real pre-commit framework)',
    install: 'apt-get install pre-commit, or pip install pre-commit',
  },
} as const;

/** Whether `command` is on PATH. */
export function available(command: keyof typeof OPTIONAL_TOOLS): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}
