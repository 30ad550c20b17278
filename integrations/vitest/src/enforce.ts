import { type ConfigLike, majorOf, type ProjectLike, type VitestLike } from './vitest-shapes.js';

/**
 * Forces one test file at a time on Vitest's *resolved* configuration, the root's and every project's.
 * The `config` hook alone is not enough: CLI flags (Vitest 3/4), VITEST_MAX_WORKERS (4/5) and a project's
 * own maxWorkers (4/5) are applied after it, and Vitest 5 copies the root test config into inline projects
 * before plugins run. So this runs again on the resolved objects, before every run, and is idempotent.
 *
 * Returns what it changed among values that were set (defaults are changed silently); where they came
 * from is told by requests.ts.
 */
export function enforceOneWorker(vitest: VitestLike, projects: ProjectLike[]): string[] {
  const major = majorOf(vitest);
  const changes: string[] = [];
  const root = vitest.config;
  const rootBefore = limitConfig(root, major, changes, '');
  for (const project of projects) {
    if (project.config === root) continue;
    const label = project.name ? `project "${project.name}": ` : 'project: ';
    const before = limitConfig(project.config, major, [], label);
    // A project that merely inherited the root's value is covered by the root's line.
    if (before.maxWorkers !== undefined && before.maxWorkers !== rootBefore.maxWorkers) {
      changes.push(`${label}maxWorkers ${before.maxWorkers} → 1`);
    }
  }
  if (major === 3) changes.push(...separatePools(projects));
  return changes;
}

const POOL_KEYS: Record<string, [max: string, min: string]> = {
  threads: ['maxThreads', 'minThreads'],
  vmThreads: ['maxThreads', 'minThreads'],
  forks: ['maxForks', 'minForks'],
  vmForks: ['maxForks', 'minForks'],
};

function limitConfig(
  config: ConfigLike,
  major: number,
  changes: string[],
  label: string,
): { maxWorkers: string | undefined } {
  const current = config.maxWorkers;
  // Vitest 5 always resolves a number and says whether it was given; 3 and 4 leave it undefined unless given.
  const given = config.providedOptions ? config.providedOptions.maxWorkers === true : current != null;
  const before = given && current != null && String(current) !== '1' ? String(current) : undefined;
  if (before !== undefined) changes.push(`${label}maxWorkers ${before} → 1`);
  config.maxWorkers = 1;
  if (major === 3) config.minWorkers = 1;
  config.fileParallelism = false;

  // Vitest 3 sizes each pool from poolOptions first (maxForks/maxThreads win over maxWorkers).
  if (config.poolOptions && typeof config.poolOptions === 'object') {
    for (const [pool, [maxKey, minKey]] of Object.entries(POOL_KEYS)) {
      const options = config.poolOptions[pool] ?? {};
      config.poolOptions[pool] = options;
      const max = options[maxKey];
      if (max != null && String(max) !== '1') changes.push(`${label}poolOptions.${pool}.${maxKey} ${String(max)} → 1`);
      options[maxKey] = 1;
      options[minKey] = 1;
    }
  }
  if (config.browser && typeof config.browser === 'object') config.browser.fileParallelism = false;
  return { maxWorkers: before };
}

/**
 * Vitest 3 runs the specs of one `sequence.groupOrder` in all their pools at once (a forks project and a
 * threads project side by side, each pool with its own worker). Giving every (groupOrder, pool) pair its
 * own group makes the groups run one after another, in the order Vitest 3 would have started them.
 * Vitest 3 sorts group numbers as strings, so the new numbers all have the same number of digits.
 */
function separatePools(projects: ProjectLike[]): string[] {
  const poolOf = (p: ProjectLike) => (p.config.browser?.enabled ? 'browser' : (p.config.pool ?? 'forks'));
  const groups = new Map<number, Map<string, ProjectLike[]>>();
  for (const project of projects) {
    const order = project.config.sequence?.groupOrder ?? 0;
    const byPool = groups.get(order) ?? new Map<string, ProjectLike[]>();
    groups.set(order, byPool);
    const pool = poolOf(project);
    byPool.set(pool, [...(byPool.get(pool) ?? []), project]);
  }
  if (![...groups.values()].some((byPool) => byPool.size > 1)) return [];
  const poolOrder = ['forks', 'threads', 'vmThreads', 'vmForks', 'typescript'];
  const rank = (pool: string) => (poolOrder.includes(pool) ? poolOrder.indexOf(pool) : poolOrder.length);
  const changed: string[] = [];
  let next = SEPARATE_BASE;
  for (const order of [...groups.keys()].sort()) {
    const byPool = groups.get(order) as Map<string, ProjectLike[]>;
    for (const pool of [...byPool.keys()].sort((a, b) => rank(a) - rank(b))) {
      const group = next++;
      for (const project of byPool.get(pool) ?? []) {
        project.config.sequence ??= {};
        if (order !== 0) changed.push(`project "${project.name}": sequence.groupOrder ${order} → ${group}`);
        project.config.sequence.groupOrder = group;
      }
    }
  }
  return changed;
}

const SEPARATE_BASE = 100_000;
