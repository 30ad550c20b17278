import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { processTable, type RunProcess, runProcesses } from '@seq-test/core/internal';

/**
 * The processes of a Vitest run, as core finds a run's processes (runProcesses: whatever carries one of
 * the run's tokens, so setsid and double-forked escapees are found too; the Vitest process itself left
 * out), with Vitest's own machinery told apart: its fork workers (Vitest 3's retitle themselves
 * `node (vitest 1)`) and Vite's esbuild service, all children of the Vitest process running code from
 * Vitest's package; and Vitest 5's `vitest-watchdog`, which is never touched (it ends by itself when Vitest
 * exits).
 */
export interface OwnedQuery {
  tokens: ReadonlySet<string>;
  /** Vitest's dist directory (vitest.distPath): its worker entry files live below it. */
  vitestDist?: string | undefined;
  /** identityKey of processes to leave alone (started by global setup, they live as long as the session). */
  spare?: ReadonlySet<string> | undefined;
}

export interface OwnedProcess extends RunProcess {
  /** One of Vitest's own workers (or Vite's esbuild service), not something the tests started. */
  worker: boolean;
}

export function ownedProcesses(query: OwnedQuery): OwnedProcess[] {
  const vitestRoot = packageRoot(query.vitestDist);
  const found: OwnedProcess[] = [];
  for (const p of runProcesses({ tokens: query.tokens, exclude: query.spare })) {
    const machinery = vitestMachinery(p, vitestRoot);
    if (machinery !== 'watchdog') found.push({ ...p, worker: machinery === 'worker' });
  }
  return found;
}

function vitestMachinery(p: RunProcess, vitestRoot: string | undefined): 'worker' | 'watchdog' | undefined {
  const command = p.command;
  if (processTable().get(p.pid)?.ppid !== process.pid) return undefined;
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
