/**
 * Exit codes seq-test itself produces. Everything else is the command's own status
 * (or 128+N when the command died by signal N), following GNU timeout(1) where it overlaps.
 */
export const EXIT = {
  /** `--max-memory` was exceeded and the tree was ended. */
  MEMORY_EXCEEDED: 121,
  /** `--wait-timeout` expired before our turn came. */
  WAIT_TIMEOUT: 122,
  /** `--no-wait` and the lock was busy. */
  LOCK_BUSY: 123,
  /** `--timeout` expired and the tree was ended. */
  TIMEOUT: 124,
  /** seq-test's own error, bad usage included. */
  USAGE: 125,
  /** The command exists but cannot be executed. */
  NOT_EXECUTABLE: 126,
  /** The command was not found. */
  NOT_FOUND: 127,
} as const;

/** An error that seq-test reports as one line and turns into a documented exit code. */
export class SeqTestError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.USAGE) {
    super(message);
    this.name = 'SeqTestError';
    this.exitCode = exitCode;
  }
}

export function assertSupportedPlatform(platform: NodeJS.Platform = process.platform): void {
  if (platform !== 'linux' && platform !== 'darwin') {
    throw new SeqTestError(
      `${platform} is not supported: seq-test runs on Linux (and macOS, best effort); use WSL on Windows`,
    );
  }
}
