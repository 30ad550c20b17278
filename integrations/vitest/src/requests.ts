/**
 * What the user asked for that would run test files in parallel, by source, so the plugin can say what it
 * overrides: `--maxWorkers 4 → 1`. The resolved config no longer tells where a value came from (and the
 * plugin's own `config` hook may already have replaced it), so the sources are read directly.
 */
export interface RawTestConfig {
  maxWorkers?: unknown;
  fileParallelism?: unknown;
  poolOptions?: Record<string, Record<string, unknown> | undefined>;
  projects?: unknown;
  name?: unknown;
}

export function parallelRequests(
  config: RawTestConfig | undefined,
  argv: string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const asked: string[] = [];
  const cliWorkers = flagValue(argv, ['--maxWorkers', '--max-workers']);
  if (cliWorkers !== undefined && cliWorkers !== '1') asked.push(`--maxWorkers ${cliWorkers} → 1`);
  const cliParallel = flagValue(argv, ['--fileParallelism', '--file-parallelism'], true) === 'true';
  if (cliParallel) asked.push('--fileParallelism → off');
  for (const name of ['VITEST_MAX_WORKERS', 'VITEST_MAX_THREADS', 'VITEST_MAX_FORKS']) {
    const value = env[name];
    if (value && value.trim() !== '1') asked.push(`${name}=${value.trim()} → 1`);
  }
  if (config) {
    // Vitest 5 has merged the CLI value into the config by the time plugins see it.
    const fromCli = cliWorkers !== undefined && String(config.maxWorkers) === cliWorkers;
    if (isMany(config.maxWorkers) && !fromCli) asked.push(`maxWorkers: ${String(config.maxWorkers)} in the config → 1`);
    if (config.fileParallelism === true && !cliParallel) asked.push('fileParallelism: true in the config → false');
    for (const [pool, options] of Object.entries(config.poolOptions ?? {})) {
      for (const key of ['maxThreads', 'maxForks']) {
        if (isMany(options?.[key])) asked.push(`poolOptions.${pool}.${key}: ${String(options?.[key])} → 1`);
      }
    }
    if (Array.isArray(config.projects)) {
      for (const entry of config.projects) {
        const test = (entry as { test?: RawTestConfig } | undefined)?.test;
        if (test && isMany(test.maxWorkers)) {
          const name = typeof test.name === 'string' ? ` "${test.name}"` : '';
          asked.push(`project${name} maxWorkers: ${String(test.maxWorkers)} → 1`);
        }
      }
    }
  }
  return asked;
}

function isMany(value: unknown): boolean {
  return (
    (typeof value === 'number' && value > 1) ||
    (typeof value === 'string' && value.trim() !== '' && value.trim() !== '1')
  );
}

/** `--name value`, `--name=value`, or `--name` alone ("true"); the last occurrence wins, as in cac. */
function flagValue(argv: string[], names: string[], boolean = false): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    for (const name of names) {
      if (arg === name) {
        const next = argv[i + 1];
        value = !boolean && next !== undefined && !next.startsWith('-') ? next : 'true';
      } else if (arg.startsWith(`${name}=`)) {
        value = arg.slice(name.length + 1);
      }
    }
  }
  return value;
}
