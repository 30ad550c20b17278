/**
 * The parts of Vitest 3, 4 and 5 the plugin touches, typed structurally: the plugin never imports vitest
 * at run time, so one build serves every major version. Each field is optional where a version lacks it.
 */

export interface PoolLimits {
  maxThreads?: number;
  minThreads?: number;
  maxForks?: number;
  minForks?: number;
  [option: string]: unknown;
}

export interface ConfigLike {
  root?: string;
  name?: string;
  watch?: boolean;
  standalone?: boolean;
  pool?: string;
  maxWorkers?: number | string;
  /** Vitest 3 only. */
  minWorkers?: number | string;
  fileParallelism?: boolean;
  /** Vitest 3 only (removed in 4). */
  poolOptions?: Record<string, PoolLimits | undefined>;
  sequence?: { groupOrder?: number };
  browser?: { enabled?: boolean; fileParallelism?: boolean };
  /** Vitest 5: which options the user gave (config, CLI or env) rather than defaults. */
  providedOptions?: Record<string, boolean | undefined>;
  globalSetup?: string | string[];
}

export interface ProjectLike {
  name: string;
  config: ConfigLike;
  vitest: VitestLike;
}

export interface ReporterLike {
  onTestRunStart?: (...args: unknown[]) => unknown;
  onTestRunEnd?: (...args: unknown[]) => unknown;
  onTestModuleQueued?: (...args: unknown[]) => unknown;
  onCollected?: (...args: unknown[]) => unknown;
  [hook: string]: unknown;
}

export interface VitestLike {
  version?: string;
  distPath?: string;
  config: ConfigLike;
  projects?: ProjectLike[];
  reporters?: ReporterLike[];
  /** Vitest 3: the pool object, created lazily by the first run and reused by later ones. */
  pool?: { close?: () => Promise<void> | void } | undefined;
  getRootProject?: () => ProjectLike;
  onAfterSetServer?: (fn: () => unknown) => void;
}

export function majorOf(vitest: VitestLike): number {
  const major = Number.parseInt(vitest.version ?? '', 10);
  return Number.isFinite(major) ? major : 0;
}
