import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { type ProcessInfo, parseChain, processTable, type RunProcess, TOKEN_ENV } from '@seq-test/core';

/**
 * Finding the processes of a Vitest run: everything whose SEQ_TEST_TOKEN chain names one of the run's
 * tokens (so setsid and double-forked escapees are found too), minus the Vitest process itself. Vitest's
 * own machinery is told apart: its fork workers (Vitest 3's retitle themselves `node (vitest 1)`) and Vite's esbuild
 * service, all children of the Vitest process running code from Vitest's package; and Vitest 5's
 * `vitest-watchdog`, which is never touched (it ends by itself when Vitest exits).
 *
 * Limit: a process that clears its environment (`env -i`) loses the token and is not found.
 */
export interface OwnedQuery {
  tokens: ReadonlySet<string>;
  /** Vitest's dist directory (vitest.distPath): its worker entry files live below it. */
  vitestDist?: string | undefined;
  /** "pid.start" of processes to leave alone (started by global setup, they live as long as the session). */
  spare?: ReadonlySet<string>;
}

export interface OwnedProcess extends RunProcess {
  /** One of Vitest's own workers (or Vite's esbuild service), not something the tests started. */
  worker: boolean;
}

export function ownedProcesses(query: OwnedQuery): OwnedProcess[] {
  if (query.tokens.size === 0) return [];
  const table = processTable();
  const vitestRoot = packageRoot(query.vitestDist);
  const found: OwnedProcess[] = [];
  for (const info of table.list()) {
    if (info.pid === process.pid || info.state === 'Z' || info.state === 'X') continue;
    const token = parseChain(table.envValue(info.pid, TOKEN_ENV)).find((t) => query.tokens.has(t.value));
    if (!token) continue;
    if (query.spare?.has(idOf(info))) continue;
    const command = table.commandLine(info.pid);
    const machinery = vitestMachinery(info, command, vitestRoot);
    if (machinery === 'watchdog') continue;
    found.push({
      pid: info.pid,
      start: info.start,
      command,
      rssBytes: info.rssBytes,
      token: token.value,
      worker: machinery === 'worker',
    });
  }
  return found;
}

export function idOf(p: { pid: number; start: number }): string {
  return `${p.pid}.${p.start}`;
}

function vitestMachinery(
  info: ProcessInfo,
  command: string,
  vitestRoot: string | undefined,
): 'worker' | 'watchdog' | undefined {
  if (info.ppid !== process.pid) return undefined;
  if (command.startsWith('vitest-watchdog') || /[\\/]workers[\\/]watchdog\.js\b/.test(command)) return 'watchdog';
  if (vitestRoot && command.includes(vitestRoot)) return 'worker';
  if (/[\\/]node_modules[\\/](?:vitest|tinypool)[\\/]/.test(command)) return 'worker';
  if (/^node \(vitest[ \d]*\)/.test(command)) return 'worker'; // Vitest 3 retitles its fork workers
  if (/[\\/]esbuild\S*\s.*--service=/.test(command)) return 'worker';
  return undefined;
}

const roots = new Map<string, string | undefined>();

function packageRoot(distPath: string | undefined): string | undefined {
  if (!distPath) return undefined;
  if (!roots.has(distPath)) {
    let root = dirname(distPath);
    try {
      root = realpathSync(root);
    } catch {}
    roots.set(distPath, `${root}/`);
  }
  return roots.get(distPath);
}
