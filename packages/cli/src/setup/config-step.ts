import { join } from 'node:path';
import { loadProjectConfig, PACKAGE_JSON_FIELD, RC_FILE, validateProjectConfig } from '@seq-test/core/internal';
import type { Detection } from './detect.js';
import { parseJsonFile, setJsonValue } from './json-edit.js';
import type { Finding, StepContext, StepOutcome } from './types.js';

/**
 * Writes project defaults (`--timeout 600 --max-memory 4G` on init) into package.json "seqTest", or into
 * .seqtestrc.json when there is no package.json (Python projects). Values are validated first, with the same
 * messages `seq-test run` would give.
 */
export function planConfig(ctx: StepContext, detection: Detection): StepOutcome {
  const outcome: StepOutcome = { id: 'config', status: 'changed', messages: [], snippets: [] };
  const settings = ctx.settings;
  if (Object.keys(settings).length === 0) return { ...outcome, status: 'skipped', messages: ['no settings given'] };
  const inPackage = Boolean(detection.packageJson);
  const file = inPackage ? 'package.json' : RC_FILE;
  validateProjectConfig(settings, { file, prefix: inPackage ? `${PACKAGE_JSON_FIELD}.` : '' });
  const path = join(ctx.root, file);
  let text = ctx.overlay.read(path) ?? '{}\n';
  const current = parseJsonFile(text, file) as Record<string, unknown>;
  const existing = ((inPackage ? current[PACKAGE_JSON_FIELD] : current) ?? {}) as Record<string, unknown>;
  const changed: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    if (existing[key] === value) continue;
    text = setJsonValue(text, inPackage ? [PACKAGE_JSON_FIELD, key] : [key], value);
    changed.push(`${key}: ${JSON.stringify(value)}`);
  }
  if (changed.length === 0) {
    outcome.status = 'done';
    outcome.messages.push(`${inPackage ? `package.json "${PACKAGE_JSON_FIELD}"` : RC_FILE} already has these settings`);
    return outcome;
  }
  ctx.overlay.write(path, text, 'config');
  outcome.messages.push(`set ${changed.join(', ')} in ${inPackage ? `package.json "${PACKAGE_JSON_FIELD}"` : RC_FILE}`);
  return outcome;
}

export function auditConfig(root: string): Finding[] {
  try {
    const loaded = loadProjectConfig(root);
    if (!loaded) return [];
    return [];
  } catch (error) {
    return [
      {
        severity: 'error',
        check: 'config.invalid',
        message: `${(error as Error).message}: every seq-test run in this project fails`,
        fix: 'correct the setting (see `seq-test run --help` for the flag of the same name)',
      },
    ];
  }
}
