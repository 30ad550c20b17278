import { join } from 'node:path';
import type { Detection } from './detect.js';
import { setJsonValue } from './json-edit.js';
import type { StepContext } from './types.js';

/**
 * Declares packages in devDependencies of the package.json in `dir` (the root by default: the package whose
 * config imports them, so that strict layouts such as pnpm's resolve them) unless it lists them already;
 * returns those added.
 */
export function addDevDependencies(
  ctx: StepContext,
  detection: Detection,
  names: string[],
  step: string,
  dir = '',
): string[] {
  if (dir === '' && !detection.packageJson) return [];
  const path = join(ctx.root, dir, 'package.json');
  let text = ctx.overlay.read(path);
  if (text === null) return [];
  const data = JSON.parse(text) as Record<string, Record<string, string> | undefined>;
  const declared = { ...data.dependencies, ...data.devDependencies, ...data.peerDependencies };
  const added: string[] = [];
  for (const name of names) {
    if (name in declared) continue;
    text = setJsonValue(text, ['devDependencies', name], ctx.versionRange, { sorted: true });
    added.push(name);
  }
  if (added.length > 0) ctx.overlay.write(path, text, step);
  return added;
}
