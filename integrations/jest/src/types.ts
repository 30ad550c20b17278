/**
 * The few parts of Jest's own types this package reads. Declared here rather than imported from
 * `@jest/types`, so that the package carries no Jest dependency of its own: every Jest module it uses at
 * run time is the one of the Jest that is running (see jest-modules.ts), 29 or 30.
 */

/** Jest's normalized global config (`Config.GlobalConfig`), as passed to global hooks, runners and reporters. */
export interface JestGlobalConfig {
  rootDir: string;
  maxWorkers: number;
  bail: number;
  forceExit?: boolean;
  watch?: boolean;
  watchAll?: boolean;
  [key: string]: unknown;
}

/** Jest's normalized project config (`Config.ProjectConfig`). */
export interface JestProjectConfig {
  rootDir: string;
  globals?: Record<string, unknown>;
  runner?: string;
  resolver?: string | null;
  displayName?: { name: string } | string;
  [key: string]: unknown;
}

/** A user's config object (`Config.InitialOptions`), only as far as we rewrite it. */
export interface JestConfig {
  globalSetup?: string | null;
  globalTeardown?: string | null;
  runner?: string;
  maxWorkers?: number | string;
  reporters?: Array<string | [string, Record<string, unknown>]>;
  globals?: Record<string, unknown>;
  projects?: Array<string | JestConfig>;
  [key: string]: unknown;
}

/** Jest's `Test`: a test file and its context; the runner passes these through. */
export interface JestTest {
  path: string;
  context: { config: JestProjectConfig };
}
