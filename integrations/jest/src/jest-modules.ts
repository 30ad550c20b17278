import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';

/**
 * Loads a module of the Jest that is running this process (jest-runner, @jest/reporters, @jest/transform,
 * jest-resolve), never one that merely happens to be resolvable from this package: a project may run
 * Jest 29 while another copy sits higher in node_modules, and pnpm does not hoist Jest's internals at all.
 *
 * Our global hooks, runner and reporter are only ever loaded by Jest's main process, where @jest/core is
 * already in the require cache; every module we need is a direct dependency of @jest/core. Outside Jest (a
 * tool that loads the config, a test of this package) we fall back to resolving `jest` from the binary
 * being run and from the working directory.
 */
export function jestRequire(name: string): unknown {
  const errors: string[] = [];
  for (const base of jestCoreBases()) {
    try {
      return createRequire(base)(name);
    } catch (error) {
      errors.push(`${base}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    `@seq-test/jest: cannot load ${name} from the running Jest (is jest >= 29 installed?)\n  ${errors.join('\n  ')}`,
  );
}

let cachedBases: string[] | undefined;

function jestCoreBases(): string[] {
  if (cachedBases) return cachedBases;
  const bases: string[] = [];
  const marker = `${sep}@jest${sep}core${sep}`;
  for (const file of Object.keys(require.cache)) {
    const at = file.lastIndexOf(marker);
    if (at >= 0) {
      bases.push(join(file.slice(0, at + marker.length), 'package.json'));
      break;
    }
  }
  for (const start of [process.argv[1], join(process.cwd(), 'package.json')]) {
    if (!start) continue;
    try {
      const jest = createRequire(start).resolve('jest/package.json');
      const core = createRequire(jest).resolve('@jest/core/package.json');
      bases.push(core);
    } catch {}
  }
  bases.push(join(dirname(__filename), 'package.json'));
  cachedBases = [...new Set(bases)];
  return cachedBases;
}

/** The default export of a CJS module compiled from ESM (`exports.default`), or the module itself. */
export function interopDefault<T>(module: unknown): T {
  const m = module as { __esModule?: boolean; default?: unknown };
  return (m?.__esModule && 'default' in m ? m.default : m) as T;
}
