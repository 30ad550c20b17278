import { delimiter, join } from 'node:path';
import { isMap, isSeq, parseDocument, type YAMLMap } from 'yaml';
import type { Detection } from './detect.js';
import { PRE_COMMIT_CONFIG, readText } from './detect.js';
import { isExecutable } from './git-hooks.js';
import { seqTestCommand } from './hook-managers.js';
import { addDevDependencies } from './package-json.js';
import { hasGuard } from './templates.js';
import type { Finding, StepContext, StepId, StepOutcome } from './types.js';
import { appendPairs, applyEdits, replaceScalar, type TextEdit, yamlScalar } from './yaml-edit.js';

/**
 * The pre-commit framework's source of truth is .pre-commit-config.yaml: `pre-commit install` rewrites
 * .git/hooks/pre-commit, `pre-commit autoupdate` rewrites only `rev:` lines. So init queues a heavy hook (tests,
 * type checkers) by its `entry`: `seq-test run -- <entry>`. How pre-commit runs an entry (its languages/*.py,
 * lang_base.hook_cmd and run_xargs): shlex-split, the hook's args and file names appended, the first word looked
 * up on PATH, inside the hook's environment. That environment prefixes PATH with its own bin directory
 * (python's virtualenv, node's nodeenv, …) and keeps the user's PATH behind it, so `seq-test` (or `npx`) is
 * found where the user has it and the command after `--` still resolves to the environment's tool (mypy from
 * the hook's virtualenv). docker hooks run their entry inside the container, script hooks take it as a path in
 * the hook's repository: those are wrapped differently (script, when local) or not at all (see docs/init.md).
 */

/**
 * Hooks that run a test suite or a type checker: these are queued, and get `require_serial: true` where
 * pre-commit would otherwise split the file list over one process per CPU. (Formatters and linters are fast
 * and stay parallel, outside the queue.)
 */
const HEAVY =
  /(^|[\s/_.:-])(pytest|py\.test|tox|nox|unittest|vitest|jest|mocha|ava|mypy|dmypy|pyright|basedpyright|pytype|pyre|tsc|vue-tsc|svelte-check|flow|typecheck|type-check)([\s_.:-]|$)|\b(npm|yarn|pnpm|bun)\s+(run\s+)?(test|typecheck|type-check)\b|\bcargo\s+(test|check|clippy)\b|\bgo\s+test\b|\bmake\s+(test|check)\b|\bseq-test\s+run\b/i;

/** An entry that already goes through the queue. */
const QUEUED = /(^|[\s/])seq-test\s+run\b/;

/**
 * Languages whose entry pre-commit looks up on PATH (lang_base.basic_run_hook; `system` is called
 * `unsupported` since pre-commit 4.4, `python_venv` was an old alias of python).
 */
const PATH_LANGUAGES = new Set([
  'system',
  'unsupported',
  'python',
  'python_venv',
  'node',
  'golang',
  'rust',
  'ruby',
  'conda',
  'coursier',
  'dart',
  'dotnet',
  'haskell',
  'lua',
  'perl',
  'swift',
]);

/**
 * Languages whose entry is a path inside the hook's repository (the repository root for a local hook): a local
 * one becomes the matching PATH language, its entry `seq-test run -- ./<script>`, which runs the same file from
 * the same directory (pre-commit runs hooks from the repository root).
 */
const SCRIPT_LANGUAGES: Record<string, string> = { script: 'system', unsupported_script: 'unsupported' };

interface ManifestHook {
  entry: string;
  language: string;
  require_serial?: boolean;
  pass_filenames?: boolean;
}

/**
 * What hook repositories' own manifests (.pre-commit-hooks.yaml) say for their heavy hooks; pre-commit merges
 * the user's settings over these. init and doctor work offline, so they know these from this table, copied
 * from each repository's manifest. A hook of a repository not listed here keeps its entry a mystery: init
 * prints the edit to make instead.
 */
const KNOWN_MANIFESTS: Record<string, Record<string, ManifestHook>> = {
  'github.com/pre-commit/mirrors-mypy': { mypy: { entry: 'mypy', language: 'python', require_serial: true } },
  'github.com/robertcraigie/pyright-python': {
    pyright: { entry: 'pyright', language: 'python', require_serial: true },
  },
};

function manifestHook(repo: string, id: string): ManifestHook | undefined {
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
  /** The hook's `repo:` (`local`, `meta` or a URL). */
  repo: string;
  /** Runs a test suite or a type checker (by its id, name or entry). */
  heavy: boolean;
  /** require_serial as it takes effect: the user's value, else the hook manifest's (when known), else false. */
  requireSerial: boolean;
  /** pass_filenames as it takes effect (default true). With false, pre-commit makes exactly one invocation. */
  passFilenames: boolean;
  /** A hook from a remote repository whose manifest is not in the table above. */
  manifestUnknown: boolean;
  /** The entry as it takes effect (the user's, else the known manifest's); undefined when unknown. */
  entry?: string;
  /** The language as it takes effect; undefined when unknown. */
  language?: string;
  /** Its entry already runs under `seq-test run`. */
  queued: boolean;
  map: YAMLMap;
  /** Where it is: index of its repo in `repos`, of the hook in `hooks`. */
  at: [number, number];
}

function hooksOf(text: string): { hooks: HookInfo[]; error?: string } {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) return { hooks: [], error: doc.errors[0]?.message ?? 'YAML error' };
  const hooks: HookInfo[] = [];
  const repos = isMap(doc.contents) ? doc.contents.get('repos') : undefined;
  if (!isSeq(repos)) return { hooks };
  repos.items.forEach((repo, repoIndex) => {
    if (!isMap(repo)) return;
    const url = String(repo.get('repo') ?? '');
    const list = repo.get('hooks');
    if (!isSeq(list)) return;
    list.items.forEach((hook, hookIndex) => {
      if (!isMap(hook)) return;
      const field = (name: string) => {
        const value = hook.get(name);
        return typeof value === 'string' ? value : undefined;
      };
      const flag = (name: string) => {
        const value = hook.get(name);
        return typeof value === 'boolean' ? value : undefined;
      };
      const id = field('id') ?? '';
      const remote = url !== 'local' && url !== 'meta';
      const manifest = remote ? manifestHook(url, id) : undefined;
      const entry = field('entry') ?? manifest?.entry;
      const heavy = [id, field('name'), entry].some((v) => v !== undefined && v !== '' && HEAVY.test(v));
      hooks.push({
        id,
        repo: url,
        heavy: url !== 'meta' && heavy,
        requireSerial: flag('require_serial') ?? manifest?.require_serial ?? false,
        passFilenames: flag('pass_filenames') ?? manifest?.pass_filenames ?? true,
        manifestUnknown: remote && manifest === undefined,
        ...(entry !== undefined ? { entry } : {}),
        ...((field('language') ?? manifest?.language) ? { language: field('language') ?? manifest?.language } : {}),
        queued: entry !== undefined && QUEUED.test(entry),
        map: hook,
        at: [repoIndex, hookIndex],
      });
    });
  });
  return { hooks };
}

/** Whether require_serial changes what runs: only a heavy hook that pre-commit would split over processes. */
function needsSerial(hook: HookInfo): boolean {
  return hook.heavy && !hook.requireSerial && hook.passFilenames;
}

/** How a heavy hook that is not queued yet gets queued: its new entry (and language), or why it cannot be. */
export type QueuePlan = { entry: string; language?: string } | { manual: string; snippet: string; fix: string };

export function queuePlan(hook: HookInfo, seqTest: string): QueuePlan | undefined {
  if (!hook.heavy || hook.queued) return undefined;
  const language = hook.language;
  if (hook.entry === undefined) {
    return {
      manual: `hook "${hook.id}": its entry is in ${hook.repo}'s .pre-commit-hooks.yaml, which init does not fetch`,
      snippet: `- id: ${hook.id}\n  entry: ${seqTest} run -- <the entry of "${hook.id}" in its .pre-commit-hooks.yaml>`,
      fix: `add \`entry: ${seqTest} run -- <its entry>\` to hook "${hook.id}", its entry copied from ${hook.repo}'s .pre-commit-hooks.yaml (seq-test init --pre-commit prints it)`,
    };
  }
  const wrapped = `${seqTest} run -- ${hook.entry}`;
  if (language !== undefined && PATH_LANGUAGES.has(language)) return { entry: wrapped };
  const script = language !== undefined ? SCRIPT_LANGUAGES[language] : undefined;
  if (script !== undefined && hook.repo === 'local') {
    // A bare name is a file in the repository root here, but a command on PATH for seq-test run.
    const entry = /^[^\s/'"]+(\s|$)/.test(hook.entry) ? `./${hook.entry}` : hook.entry;
    return { entry: `${seqTest} run -- ${entry}`, language: script };
  }
  const why =
    language === undefined
      ? `its language comes from ${hook.repo}'s .pre-commit-hooks.yaml, which init does not fetch`
      : language === 'docker' || language === 'docker_image'
        ? `pre-commit runs language: ${language} hooks inside a container, where seq-test is not`
        : script !== undefined
          ? `its entry is a script inside ${hook.repo}, whose path init does not know`
          : `pre-commit runs language: ${language} hooks its own way, not as a command on PATH`;
  return {
    manual: `hook "${hook.id}": ${why}`,
    fix:
      language === undefined
        ? `add \`entry: ${wrapped}\` to hook "${hook.id}" if its language runs the entry from PATH (python, node, system, …)`
        : `run the same tool from a local hook: \`entry: ${seqTest} run -- <its command>\`, \`language: system\` (seq-test init --pre-commit prints it)`,
    snippet:
      language === undefined
        ? `- id: ${hook.id}\n  entry: ${wrapped}   # if its language runs the entry from PATH (python, node, system, …)`
        : `- repo: local   # in place of the hook, running the same tool installed on PATH\n  hooks:\n    - id: ${hook.id}\n      name: ${hook.id}\n      entry: ${seqTest} run -- <its command>\n      language: system`,
  };
}

export interface PreCommitEdit {
  text: string;
  /** Hooks whose entry now runs under seq-test run. */
  queued: string[];
  /** Hooks that got require_serial: true. */
  serial: string[];
  /** Heavy hooks init cannot queue by their entry. */
  manual: { id: string; why: string; snippet: string }[];
  error?: string;
}

/**
 * Queues heavy hooks (their entry under `seq-test run`) and adds `require_serial: true` where it changes what
 * runs, as text at positions the YAML parser gives: the rest of the file (comments, quoting, indentation)
 * stays byte for byte, and the result is parsed again and compared.
 */
export function editPreCommitConfig(
  text: string,
  options: { seqTest: string; queue: boolean; serial: boolean },
): PreCommitEdit {
  const { hooks, error } = hooksOf(text);
  const result: PreCommitEdit = { text, queued: [], serial: [], manual: [] };
  if (error) return { ...result, error };
  const edits: TextEdit[] = [];
  const expected = new Map<string, Record<string, unknown>>();
  for (const hook of hooks) {
    const map = hook.map;
    const pairs: [string, string][] = [];
    const change: Record<string, unknown> = {};
    const plan = options.queue ? queuePlan(hook, options.seqTest) : undefined;
    if (plan && 'manual' in plan) result.manual.push({ id: hook.id, why: plan.manual, snippet: plan.snippet });
    if (plan && 'entry' in plan) {
      const own = map.get('entry', true);
      if (own !== undefined) {
        const edit = replaceScalar(own, plan.entry, map.flow);
        if (!edit) return { ...result, error: `the entry of hook ${hook.id} is a block scalar` };
        edits.push(edit);
      } else {
        pairs.push(['entry', yamlScalar(plan.entry, undefined, map.flow)]);
      }
      if (plan.language) {
        const edit = replaceScalar(map.get('language', true), plan.language, map.flow);
        if (!edit) return { ...result, error: `cannot edit the language of hook ${hook.id}` };
        edits.push(edit);
        change.language = plan.language;
      }
      change.entry = plan.entry;
      result.queued.push(hook.id);
    }
    if (options.serial && needsSerial(hook)) {
      const own = map.get('require_serial', true);
      if (own !== undefined) {
        const edit = replaceScalar(own, 'true', map.flow);
        if (!edit) return { ...result, error: `cannot edit require_serial of ${hook.id}` };
        // A quoted "false" would become the string "true": require a plain scalar.
        edits.push({ ...edit, insert: 'true' });
      } else {
        pairs.push(['require_serial', 'true']);
      }
      change.require_serial = true;
      result.serial.push(hook.id);
    }
    if (pairs.length > 0) {
      const edit = appendPairs(text, map, pairs);
      if (typeof edit === 'string') return { ...result, error: `hook ${hook.id}: ${edit}` };
      edits.push(edit);
    }
    if (Object.keys(change).length > 0) expected.set(hook.at.join('.'), change);
  }
  if (edits.length === 0) return result;
  const next = applyEdits(text, edits);
  // Verify: the same document, except for exactly those keys of exactly those hooks.
  const before = parseDocument(text).toJS() as { repos?: { hooks?: Record<string, unknown>[] }[] };
  const after = parseDocument(next);
  if (after.errors.length > 0) return { ...result, queued: [], serial: [], error: 'the edit did not parse' };
  const want = structuredClone(before);
  for (const [r, repo] of (want.repos ?? []).entries()) {
    for (const [h, hook] of (repo.hooks ?? []).entries()) Object.assign(hook, expected.get(`${r}.${h}`) ?? {});
  }
  if (JSON.stringify(sortKeys(after.toJS())) !== JSON.stringify(sortKeys(want))) {
    return { ...result, queued: [], serial: [], error: 'the edit did not verify' };
  }
  return { ...result, text: next };
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

/** Lines of a pre-commit hook script that `pre-commit install` wrote (it rewrites such a file in place). */
export function isPreCommitHook(script: string): boolean {
  return script.includes('File generated by pre-commit');
}

/**
 * The pre-commit step, and the git-hook step for a hook `pre-commit install` generated: the heavy hooks are
 * queued in .pre-commit-config.yaml (and get require_serial where it matters, for the pre-commit step). Returns
 * the outcome, and the heavy hooks that could not be queued there.
 */
export function queuePreCommitConfig(
  ctx: StepContext,
  detection: Detection,
  step: StepId,
): { outcome: StepOutcome; manual: string[]; changed: boolean } {
  const outcome: StepOutcome = { id: step, status: 'done', messages: [], snippets: [] };
  const path = join(ctx.root, PRE_COMMIT_CONFIG);
  const text = ctx.overlay.read(path) ?? '';
  const seqTest = seqTestCommand(detection);
  const edit = editPreCommitConfig(text, { seqTest, queue: true, serial: step === 'pre-commit' });
  if (edit.error) {
    outcome.status = 'manual';
    outcome.messages.push(
      `cannot edit ${PRE_COMMIT_CONFIG} safely (${edit.error}); by hand, put the entry of each hook that runs tests or a type checker under \`${seqTest} run --\`, and add require_serial: true where it passes file names`,
    );
    return { outcome, manual: [], changed: false };
  }
  if (edit.queued.length > 0) {
    outcome.messages.push(
      `${PRE_COMMIT_CONFIG}: run ${edit.queued.join(', ')} under seq-test run (entry: ${seqTest} run -- …): pre-commit install and autoupdate keep it`,
    );
  }
  if (edit.serial.length > 0) {
    outcome.messages.push(`${PRE_COMMIT_CONFIG}: add require_serial: true to ${edit.serial.join(', ')}`);
  }
  for (const manual of edit.manual) {
    outcome.status = 'manual';
    outcome.messages.push(`${PRE_COMMIT_CONFIG}: ${manual.why}: queue it by hand`);
    outcome.snippets.push({ title: `${PRE_COMMIT_CONFIG} (hook ${manual.id})`, text: manual.snippet });
  }
  if (edit.text !== text) {
    ctx.overlay.write(path, edit.text, step);
    if (outcome.status !== 'manual') outcome.status = 'changed';
    if (edit.queued.length > 0 && seqTest.startsWith('npx ')) {
      const added = addDevDependencies(ctx, detection, ['seq-test'], step);
      if (added.length > 0) outcome.messages.push('add seq-test to devDependencies, so that npx finds it');
    }
  } else if (outcome.status === 'done') {
    outcome.messages.push(`${PRE_COMMIT_CONFIG}: every hook that runs tests or a type checker runs under seq-test run`);
  }
  return { outcome, manual: edit.manual.map((m) => m.id), changed: edit.text !== text };
}

export function planPreCommit(ctx: StepContext, detection: Detection): StepOutcome {
  if (!detection.preCommitConfig) {
    return { id: 'pre-commit', status: 'skipped', messages: [`no ${PRE_COMMIT_CONFIG}`], snippets: [] };
  }
  return queuePreCommitConfig(ctx, detection, 'pre-commit').outcome;
}

/**
 * Whether the command a queued entry starts with is there when pre-commit runs it: `seq-test` on PATH (pre-commit
 * does not add node_modules/.bin), or for `npx seq-test` the project's node_modules/.bin or PATH (npm's global bin).
 */
function entryCommandFound(root: string, entry: string): boolean {
  const onPath = (name: string) =>
    (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, name)));
  if (/^npx\s/.test(entry)) return isExecutable(join(root, 'node_modules', '.bin', 'seq-test')) || onPath('seq-test');
  const first = entry.split(/\s+/)[0] ?? '';
  return first.includes('/') ? isExecutable(join(root, first)) : onPath(first);
}

/** Whether the installed pre-commit git hook queues the whole run (the seq-test block, or seq-test run in it). */
function hookQueuesWholeRun(detection: Detection): boolean {
  const dir = detection.hooks?.hooksDir;
  const script = dir ? readText(join(dir, 'pre-commit')) : undefined;
  return script !== undefined && (hasGuard(script) || QUEUED.test(script));
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
  const findings: Finding[] = [];
  const seqTest = seqTestCommand(detection);
  const wholeRun = hookQueuesWholeRun(detection);
  const queued = hooks.filter((h) => h.queued && h.entry !== undefined);
  const missing = queued.filter((h) => !entryCommandFound(detection.root, h.entry as string));
  if (missing.length > 0) {
    findings.push({
      severity: 'error',
      check: 'pre-commit.seq-test-missing',
      file: PRE_COMMIT_CONFIG,
      message: `${missing.map((h) => `"${h.id}"`).join(', ')} run${missing.length === 1 ? 's' : ''} under seq-test, which is ${/^npx\s/.test(missing[0]?.entry ?? '') ? 'neither in node_modules/.bin nor on PATH (npx would fetch it from the registry)' : 'not on PATH'}: ${missing.length === 1 ? 'that hook fails' : 'those hooks fail'}`,
      fix: seqTest.startsWith('npx ')
        ? `${detection.packageManager} install (seq-test is in devDependencies)`
        : 'npm install -g seq-test',
    });
  }
  for (const hook of hooks) {
    const plan = queuePlan(hook, seqTest);
    if (!plan) continue;
    const fix = 'entry' in plan ? 'seq-test init --pre-commit' : plan.fix;
    findings.push(
      wholeRun
        ? {
            severity: 'warning',
            check: 'pre-commit.unqueued',
            file: PRE_COMMIT_CONFIG,
            message: `hook "${hook.id}" runs tests or a type checker, queued only by the seq-test block in .git/hooks/pre-commit, which the next \`pre-commit install\` removes (and \`pre-commit run\` by hand skips)`,
            fix,
          }
        : {
            severity: 'error',
            check: 'pre-commit.unqueued',
            file: PRE_COMMIT_CONFIG,
            message: `hook "${hook.id}" runs tests or a type checker outside seq-test's queue: two commits at once run it twice at once`,
            fix,
          },
    );
  }
  for (const hook of hooks.filter(needsSerial)) {
    findings.push({
      severity: 'warning',
      check: 'pre-commit.require-serial',
      file: PRE_COMMIT_CONFIG,
      message: `hook "${hook.id}" runs tests or a type checker over the staged files without require_serial: true: pre-commit starts one process per CPU, each over a slice of the files${hook.manifestUnknown ? " (unless its repository's own hook manifest sets require_serial, which doctor cannot read offline)" : ''}`,
      fix: `seq-test init --pre-commit (adds require_serial: true to "${hook.id}")`,
    });
  }
  return findings;
}
