import { join } from 'node:path';
import { isMap, isScalar, isSeq, type Pair, parseDocument, type YAMLMap } from 'yaml';
import type { Detection } from './detect.js';
import { PRE_COMMIT_CONFIG } from './detect.js';
import type { Finding, StepContext, StepOutcome } from './types.js';

/**
 * Hooks of the pre-commit framework that run a test suite or a type checker: these get `require_serial: true`,
 * so that pre-commit runs one process over all files instead of one per CPU over slices of the file list.
 * (Formatters and linters are fast and stay parallel.)
 */
const HEAVY =
  /(^|[\s/_.:-])(pytest|py\.test|tox|nox|unittest|vitest|jest|mocha|ava|mypy|dmypy|pyright|basedpyright|pytype|pyre|tsc|vue-tsc|svelte-check|flow|typecheck|type-check)([\s_.:-]|$)|\b(npm|yarn|pnpm|bun)\s+(run\s+)?(test|typecheck|type-check)\b|\bcargo\s+(test|check|clippy)\b|\bgo\s+test\b|\bmake\s+(test|check)\b|\bseq-test\s+run\b/i;

/**
 * Settings that hook repositories' own manifests (.pre-commit-hooks.yaml) give their hooks, for repositories
 * whose hooks look heavy. pre-commit merges these under the user's settings; doctor cannot fetch a manifest
 * (it works offline), so it knows these from this table, copied from each repository's manifest.
 */
const KNOWN_MANIFESTS: Record<string, Record<string, { require_serial?: boolean; pass_filenames?: boolean }>> = {
  'github.com/pre-commit/mirrors-mypy': { mypy: { require_serial: true } },
  'github.com/robertcraigie/pyright-python': { pyright: { require_serial: true } },
};

function manifestDefaults(
  repo: string,
  id: string,
): { require_serial?: boolean; pass_filenames?: boolean } | undefined {
  const key = repo
    .toLowerCase()
    .replace(/^(https?:\/\/|git@|ssh:\/\/git@)/, '')
    .replace(/^github\.com:/, 'github.com/')
    .replace(/\.git$/, '')
    .replace(/\/$/, '');
  return KNOWN_MANIFESTS[key]?.[id];
}

export interface HookInfo {
  id: string;
  /** Runs a test suite or a type checker (by its id, name or entry). */
  heavy: boolean;
  /** require_serial as it takes effect: the user's value, else the hook manifest's (when known), else false. */
  requireSerial: boolean;
  /** The user's own require_serial, if set. */
  ownRequireSerial: boolean | undefined;
  /** pass_filenames as it takes effect (default true). With false, pre-commit makes exactly one invocation. */
  passFilenames: boolean;
  /** A hook from a remote repository whose manifest defaults are not in the table above. */
  manifestUnknown: boolean;
  map: YAMLMap;
}

/** Whether require_serial changes what runs: only a heavy hook that pre-commit would split over processes. */
function needsSerial(hook: HookInfo): boolean {
  return hook.heavy && !hook.requireSerial && hook.passFilenames;
}

function hooksOf(text: string): { hooks: HookInfo[]; error?: string } {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) return { hooks: [], error: doc.errors[0]?.message ?? 'YAML error' };
  const hooks: HookInfo[] = [];
  const repos = isMap(doc.contents) ? doc.contents.get('repos') : undefined;
  if (!isSeq(repos)) return { hooks };
  for (const repo of repos.items) {
    if (!isMap(repo)) continue;
    const url = String(repo.get('repo') ?? '');
    const list = repo.get('hooks');
    if (!isSeq(list)) continue;
    for (const hook of list.items) {
      if (!isMap(hook)) continue;
      const field = (name: string) => {
        const value = hook.get(name);
        return typeof value === 'string' ? value : '';
      };
      const flag = (name: string) => {
        const value = hook.get(name);
        return typeof value === 'boolean' ? value : undefined;
      };
      const id = field('id');
      const heavy = [field('id'), field('name'), field('entry')].some((v) => v !== '' && HEAVY.test(v));
      const remote = url !== 'local' && url !== 'meta';
      const manifest = remote ? manifestDefaults(url, id) : undefined;
      const own = flag('require_serial');
      hooks.push({
        id,
        heavy,
        requireSerial: own ?? manifest?.require_serial ?? false,
        ownRequireSerial: own,
        passFilenames: flag('pass_filenames') ?? manifest?.pass_filenames ?? true,
        manifestUnknown: remote && manifest === undefined,
        map: hook,
      });
    }
  }
  return { hooks };
}

/**
 * Adds `require_serial: true` to heavy hooks as text, at positions the YAML parser gives: the rest of the file
 * (comments, quoting, indentation) stays byte for byte, and the result is parsed again and compared.
 */
export function addRequireSerial(text: string): { text: string; changed: string[]; error?: string } {
  const { hooks, error } = hooksOf(text);
  if (error) return { text, changed: [], error };
  const edits: { at: number; remove: number; insert: string }[] = [];
  const changed: string[] = [];
  for (const hook of hooks) {
    if (!needsSerial(hook)) continue;
    const map = hook.map;
    const range = map.range;
    if (!range) return { text, changed: [], error: `no position for hook ${hook.id}` };
    const existing = map.items.find((p) => isScalar(p.key) && p.key.value === 'require_serial') as
      | Pair<unknown, unknown>
      | undefined;
    if (existing) {
      const value = existing.value;
      if (!isScalar(value) || !value.range)
        return { text, changed: [], error: `cannot edit require_serial of ${hook.id}` };
      edits.push({ at: value.range[0], remove: value.range[1] - value.range[0], insert: 'true' });
    } else if (map.flow) {
      let at = text.lastIndexOf('}', range[1]);
      if (at < range[0]) return { text, changed: [], error: `cannot find the end of hook ${hook.id}` };
      while (at > range[0] && /[ \t]/.test(text[at - 1] ?? '')) at--;
      edits.push({ at, remove: 0, insert: ', require_serial: true' });
    } else {
      const firstKey = map.items[0]?.key;
      if (!isScalar(firstKey) || !firstKey.range) return { text, changed: [], error: `cannot edit hook ${hook.id}` };
      const keyStart = firstKey.range[0];
      const column = keyStart - (text.lastIndexOf('\n', keyStart - 1) + 1);
      // After the last line of the map's content (range[1] ends its last value, before a trailing comment).
      let at = text.indexOf('\n', Math.max(range[1] - 1, keyStart));
      let prefix = '';
      if (at === -1) {
        at = text.length;
        prefix = '\n';
      } else {
        at += 1;
      }
      edits.push({ at, remove: 0, insert: `${prefix}${' '.repeat(column)}require_serial: true\n` });
    }
    changed.push(hook.id);
  }
  if (edits.length === 0) return { text, changed };
  let next = text;
  for (const edit of edits.sort((a, b) => b.at - a.at)) {
    next = next.slice(0, edit.at) + edit.insert + next.slice(edit.at + edit.remove);
  }
  // Verify: the same document, except require_serial: true on exactly those hooks.
  const before = parseDocument(text).toJS() as Record<string, unknown>;
  const after = parseDocument(next);
  if (after.errors.length > 0) return { text, changed: [], error: 'the edit did not parse' };
  const expected = structuredClone(before) as { repos?: { hooks?: Record<string, unknown>[] }[] };
  for (const repo of expected.repos ?? []) {
    for (const hook of repo.hooks ?? []) {
      const info = hooks.find((h) => h.id === hook.id && needsSerial(h));
      if (info) hook.require_serial = true;
    }
  }
  if (JSON.stringify(sortKeys(after.toJS())) !== JSON.stringify(sortKeys(expected))) {
    return { text, changed: [], error: 'the edit did not verify' };
  }
  return { text: next, changed };
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export function planPreCommit(ctx: StepContext, detection: Detection): StepOutcome {
  const outcome: StepOutcome = { id: 'pre-commit', status: 'changed', messages: [], snippets: [] };
  if (!detection.preCommitConfig) return { ...outcome, status: 'skipped', messages: [`no ${PRE_COMMIT_CONFIG}`] };
  const path = join(ctx.root, PRE_COMMIT_CONFIG);
  const text = ctx.overlay.read(path) ?? '';
  const result = addRequireSerial(text);
  if (result.error) {
    return {
      ...outcome,
      status: 'manual',
      messages: [
        `cannot edit ${PRE_COMMIT_CONFIG} safely (${result.error}); add require_serial: true by hand to hooks that run tests or type checkers`,
      ],
    };
  }
  if (result.changed.length === 0) {
    outcome.status = 'done';
    outcome.messages.push('every hook that runs tests or a type checker has require_serial: true');
    return outcome;
  }
  ctx.overlay.write(path, result.text, 'pre-commit');
  outcome.messages.push(`add require_serial: true to ${result.changed.join(', ')} in ${PRE_COMMIT_CONFIG}`);
  return outcome;
}

export function auditPreCommit(detection: Detection, read: (file: string) => string | undefined): Finding[] {
  if (!detection.preCommitConfig) return [];
  const text = read(PRE_COMMIT_CONFIG) ?? '';
  const { hooks, error } = hooksOf(text);
  if (error) {
    return [
      {
        severity: 'warning',
        check: 'pre-commit.parse',
        file: PRE_COMMIT_CONFIG,
        message: `${PRE_COMMIT_CONFIG} does not parse: ${error}`,
      },
    ];
  }
  return hooks.filter(needsSerial).map((h) => ({
    severity: 'warning' as const,
    check: 'pre-commit.require-serial',
    file: PRE_COMMIT_CONFIG,
    message: `hook "${h.id}" runs tests or a type checker over the staged files without require_serial: true: pre-commit starts one process per CPU, each over a slice of the files${h.manifestUnknown ? " (unless its repository's own hook manifest sets require_serial, which doctor cannot read offline)" : ''}`,
    fix: `seq-test init --pre-commit (adds require_serial: true to "${h.id}")`,
  }));
}
