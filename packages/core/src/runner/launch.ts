import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { outputPipes } from './pipes.js';

/** How every attempt of one run is started. */
export interface Launch {
  file: string;
  resolved: string;
  args: string[];
  /** undefined: ours. */
  cwd: string | undefined;
  /** The command's environment, run token included. */
  env: NodeJS.ProcessEnv;
  helperPath: string | undefined;
  /** stdout/stderr go through us (capture or log) instead of straight to ours. */
  piped: boolean;
}

/** A helper started with --park, waiting for the byte that starts the command. */
export interface ParkedHelper {
  child: ChildProcess;
  /** Whether it ended (or failed to start) while parked: it cannot be used then. */
  readonly gone: boolean;
  /** Settles when it ends (or fails to start). */
  readonly ended: Promise<void>;
  /** Ends it; nothing was started. */
  dismiss(): void;
}

/**
 * Spawns the command in a session of its own: through the subreaper helper when there is one (parked when
 * `park`: it waits for the go byte, see startCommand), else directly. When its output goes through us, it
 * writes to real pipes (see outputPipes), whose read ends become the child's stdout and stderr.
 */
export function spawnChild(launch: Launch, park: boolean): ChildProcess {
  const pipes = launch.piped ? outputPipes() : undefined;
  const output = (index: 0 | 1) => pipes?.[index].write ?? (launch.piped ? 'pipe' : 'inherit');
  const stdio: StdioOptions = ['inherit', output(0), output(1)];
  let child: ChildProcess;
  try {
    child = launch.helperPath
      ? // fd 3 is a socket pair: the helper reports on it, and reads the go byte from it when parked.
        spawn(launch.helperPath, [...(park ? ['--park'] : []), launch.resolved, launch.file, ...launch.args], {
          cwd: launch.cwd,
          env: launch.env,
          detached: true,
          stdio: [...stdio, 'pipe'],
        })
      : spawn(launch.resolved, launch.args, {
          cwd: launch.cwd,
          env: launch.env,
          argv0: launch.file,
          detached: true,
          stdio,
        });
  } catch (error) {
    for (const pipe of pipes ?? []) pipe.read.destroy();
    throw error;
  } finally {
    // The child has its copies of the write ends: ours would keep the pipes from ever ending.
    for (const pipe of pipes ?? []) closeSync(pipe.write);
  }
  if (pipes) {
    child.stdout = pipes[0].read;
    child.stderr = pipes[1].read;
  }
  return child;
}

/** Closes every stream of a child we no longer follow (stdio, and the pipes spawnChild made). */
export function closeStreams(child: ChildProcess): void {
  child.stdout?.destroy();
  child.stderr?.destroy();
  for (const stream of child.stdio) stream?.destroy();
}

/** The helper's control channel (fd 3), if it has one. */
export const controlOf = (child: ChildProcess) => child.stdio[3] as Writable | null | undefined;

/** Tells a parked helper to start the command. */
export function startCommand(child: ChildProcess): void {
  controlOf(child)?.write('g');
}

export function startParked(launch: Launch): ParkedHelper {
  const child = spawnChild(launch, true);
  const control = controlOf(child);
  control?.on('error', () => {}); // its end going away is seen as 'exit'
  // A byte the helper ignores: the first write on a socket is slow (code paths run for the first time),
  // and the one that counts, the go byte, should not be it.
  control?.write('w');
  let gone = false;
  const ended = new Promise<void>((resolve) => {
    const end = () => {
      gone = true;
      resolve();
    };
    child.once('exit', end);
    child.once('error', end);
  });
  return {
    child,
    get gone() {
      return gone;
    },
    ended,
    dismiss() {
      // It has started nothing, and TERM would only wait in its mask (subreaper.c blocks every signal, and a
      // parked helper takes none): KILL. It is still our unreaped child, so its pid is its own.
      if (!gone) child.kill('SIGKILL');
      closeStreams(child);
    },
  };
}
