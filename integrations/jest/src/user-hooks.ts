import { normalize, resolve } from 'node:path';
import { interopDefault, jestRequire } from './jest-modules.js';
import type { JestGlobalConfig, JestProjectConfig } from './types.js';

type Hook = (globalConfig: JestGlobalConfig, projectConfig: JestProjectConfig) => unknown;

interface ScriptTransformer {
  requireAndTranspileModule<T>(modulePath: string, callback: (module: T) => void | Promise<void>): Promise<T>;
}

/**
 * Runs the project's own globalSetup/globalTeardown exactly as Jest would have: resolved from the config's
 * rootDir (`<rootDir>`, relative paths, package names, the configured resolver), transpiled with the
 * project's transform (a TypeScript setup file keeps working), called with (globalConfig, projectConfig).
 */
export async function runUserHook(
  kind: 'globalSetup' | 'globalTeardown',
  raw: string,
  globalConfig: JestGlobalConfig,
  projectConfig: JestProjectConfig,
): Promise<void> {
  const modulePath = resolveHook(kind, raw, globalConfig.rootDir, projectConfig.resolver);
  const { createScriptTransformer } = jestRequire('@jest/transform') as {
    createScriptTransformer(config: JestProjectConfig): Promise<ScriptTransformer>;
  };
  const transformer = await createScriptTransformer(projectConfig);
  try {
    await transformer.requireAndTranspileModule<Hook>(modulePath, async (hook) => {
      if (typeof hook !== 'function') throw new TypeError(`${kind} file must export a function at ${modulePath}`);
      await hook(globalConfig, projectConfig);
    });
  } catch (error) {
    // Jest names our module in its message; name the user's, which is where the problem is.
    if (error instanceof Error) error.message = `(your ${kind}, ${modulePath}) ${error.message}`;
    throw error;
  }
}

function resolveHook(kind: string, raw: string, rootDir: string, resolver: string | null | undefined): string {
  const path = raw.startsWith('<rootDir>') ? resolve(rootDir, normalize(`./${raw.slice('<rootDir>'.length)}`)) : raw;
  const Resolver = interopDefault<{
    findNodeModule(path: string, options: { basedir: string; resolver?: string }): string | null;
  }>(jestRequire('jest-resolve'));
  const found = Resolver.findNodeModule(path, { basedir: rootDir, resolver: resolver ?? undefined });
  if (!found) throw new Error(`Module ${raw} in the ${kind} option was not found. <rootDir> is: ${rootDir}`);
  return found;
}
