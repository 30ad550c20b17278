/** One process as seen in one sweep of the process table. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /**
   * Start time in a platform unit (Linux: clock ticks since boot, field 22 of /proc/PID/stat;
   * macOS: seconds since the epoch). Together with pid it names one process for its lifetime.
   */
  start: number;
  /** Single-letter state; "Z" (zombie) and "X" (dead) count as gone. */
  state: string;
  rssBytes: number;
  /**
   * CPU time used so far, user + system, in clock ticks (Linux: fields 14 and 15 of /proc/PID/stat, whole
   * ticks of usually 10 ms); undefined where the table does not read it (macOS).
   */
  cpuTicks?: number;
  /** Short name of the executable. */
  comm: string;
}

/** One read of one variable of a process's environment (ProcessTable.readEnv). */
export interface EnvRead {
  value: string | undefined;
  /** The environment read empty (no variable at all), as it does inside execve. */
  empty: boolean;
}

export interface PidCounter {
  last: number;
  max: number;
}

/** Reads the process table; one implementation per platform, same interface. */
export interface ProcessTable {
  /** Every process visible to us; with `only`, just the pids it accepts (checked before any read). */
  list(only?: (pid: number) => boolean): ProcessInfo[];
  /**
   * The pid most recently handed out and the pid limit (pids are handed out in increasing order and wrap
   * around at the limit), or undefined where the platform does not tell. Linux: /proc/loadavg.
   */
  pidCounter?(): PidCounter | undefined;
  /** One process, zombies included (isGone tells: a zombie still holds its ids), or undefined when it is gone. */
  get(pid: number): ProcessInfo | undefined;
  /**
   * The value of an environment variable of a process, or undefined when the process is gone,
   * lacks it, or its environment is unreadable (another user's, non-dumpable): unreadable is never ours.
   */
  envValue(pid: number, name: string): string | undefined;
  /**
   * envValue, and whether that read found no environment at all: a process inside execve shows none for a
   * moment, so a value missing from an empty read may still come. Where absent, reads count as not empty.
   */
  readEnv?(pid: number, name: string): EnvRead;
  /** The full command line, for reports; falls back to the short name. */
  commandLine(pid: number): string;
  /** Identifies this boot, so persisted (pid, start) pairs from before a reboot read as dead. */
  bootId(): string;
  /**
   * The current children of a process (of all its threads), or undefined when the process is gone or the
   * platform cannot list children directly (then only list() finds them). Linux: /proc/PID/task/TID/children.
   */
  children?(pid: number): number[] | undefined;
}

export function isGone(info: ProcessInfo | undefined): boolean {
  return info === undefined || info.state === 'Z' || info.state === 'X';
}
