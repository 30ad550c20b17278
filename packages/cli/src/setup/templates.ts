import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The templates `seq-test init` installs, and pure functions that render them. Nothing here touches the
 * user's files: the CLI decides what to write, shows a diff, and keeps backups.
 *
 * Placeholders are `{{name}}` (no spaces, so GitHub's `${{ expr }}` passes through untouched); rendering
 * fails on a placeholder without a value, so a template and its caller cannot drift apart silently.
 */

export const TEMPLATE_NAMES = [
  'hook-guard.sh',
  'pre-commit.sh',
  'github-actions.yml',
  'pre-commit-config.yaml',
  'gitlab-ci.yml',
] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** Where the template files are, for tools that want to copy them by hand. */
// packages/cli/templates/: one level up from the bundled dist/, two from src/setup/ (tests import the source).
export const TEMPLATE_DIR = [new URL('../templates/', import.meta.url), new URL('../../templates/', import.meta.url)]
  .map((url) => fileURLToPath(url))
  .find((dir) => existsSync(join(dir, 'hook-guard.sh'))) as string;

/** First and last line of the block `seq-test init` puts into a hook; used to find (and remove) it. */
export const GUARD_BEGIN = '# >>> seq-test >>>';
export const GUARD_END = '# <<< seq-test <<<';

const cache = new Map<TemplateName, string>();

export function readTemplate(name: TemplateName): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(join(TEMPLATE_DIR, name), 'utf8');
    cache.set(name, text);
  }
  return text;
}

/** Replaces every `{{name}}`; throws on a placeholder without a value and on a value without a placeholder. */
export function render(template: string, values: Record<string, string>): string {
  const used = new Set<string>();
  const out = template.replace(/(?<!\$)\{\{([A-Za-z][A-Za-z0-9]*)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder {{${name}}} has no value`);
    used.add(name);
    return value;
  });
  for (const name of Object.keys(values)) {
    if (!used.has(name)) throw new Error(`template has no placeholder {{${name}}}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Git hooks

/** The shell block that re-runs the hook it sits in under `seq-test run` (POSIX sh). */
export function hookGuard(): string {
  return readTemplate('hook-guard.sh').replace(/\n+$/, '');
}

/** Whether a hook script already carries the seq-test block. */
export function hasGuard(script: string): boolean {
  return script.includes(GUARD_BEGIN) && script.includes(GUARD_END);
}

/**
 * A hook script whose first thing (after the `#!` line) is the seq-test block; the rest is kept byte for byte.
 * Returns the script unchanged when the block is there already.
 */
export function insertGuard(script: string): string {
  if (hasGuard(script)) return script;
  const guard = `${hookGuard()}\n`;
  if (script.startsWith('#!')) {
    const end = script.indexOf('\n');
    if (end === -1) return `${script}\n${guard}`;
    return `${script.slice(0, end + 1)}${guard}${script.slice(end + 1)}`;
  }
  return `${guard}${script}`;
}

/** The script without the seq-test block (what `insertGuard` added), for uninstalling. */
export function removeGuard(script: string): string {
  const begin = script.indexOf(GUARD_BEGIN);
  const endMarker = script.indexOf(GUARD_END, begin);
  if (begin === -1 || endMarker === -1) return script;
  const lineEnd = script.indexOf('\n', endMarker);
  return script.slice(0, begin) + (lineEnd === -1 ? '' : script.slice(lineEnd + 1));
}

/** Which interpreters the guard can be put into: POSIX-like shells. */
export function isShellScript(script: string): boolean {
  if (!script.startsWith('#!')) return true; // husky v9 hooks have no #! line and run with `sh -e`
  const line = script.slice(2, script.indexOf('\n') === -1 ? undefined : script.indexOf('\n')).trim();
  const parts = line.split(/\s+/);
  let interpreter = (parts[0] ?? '').split('/').pop() ?? '';
  if (interpreter === 'env')
    interpreter = (parts.find((p, i) => i > 0 && !p.startsWith('-')) ?? '').split('/').pop() ?? '';
  return ['sh', 'bash', 'dash', 'ksh', 'zsh', 'ash', 'mksh'].includes(interpreter);
}

/** A new hook, standalone: the seq-test block, then `body` (the commands the hook runs). */
export function renderHook(options: { hook: string; body: string }): string {
  return render(readTemplate('pre-commit.sh'), {
    hook: options.hook,
    guard: hookGuard(),
    body: options.body.replace(/\n+$/, ''),
  });
}

// ---------------------------------------------------------------------------------------------------------
// CI

export interface CiOptions {
  /** The branch pushes to which run the workflow (and wait rather than cancel). */
  branch: string;
  /** Job time limit in minutes; seq-test's own --timeout is set a minute below it. */
  timeoutMinutes?: number;
  node?: {
    packageManager: 'npm' | 'pnpm' | 'yarn' | 'bun';
    /** e.g. `npm test`; run as `npx seq-test run -- <testCommand>`. */
    testCommand: string;
  };
  python?: {
    /** e.g. `pip install -e .[test]` or `pip install -r requirements.txt`. */
    install: string;
    testCommand: string;
    /** Python versions to test (a matrix when more than one); default 3.12. */
    versions?: string[];
    /** Install uv with astral-sh/setup-uv (the install and test commands then use uv). */
    uv?: boolean;
  };
  /**
   * `uses:` values to write for actions, keyed by action name (`actions/checkout`), as the repository's own
   * workflows pin them (a commit SHA with its `# vX` comment, or a tag). Missing ones get the default tag.
   */
  uses?: Record<string, string>;
}

const DEFAULT_USES: Record<string, string> = {
  'actions/checkout': 'actions/checkout@v4',
  'actions/setup-node': 'actions/setup-node@v4',
  'actions/setup-python': 'actions/setup-python@v5',
  'astral-sh/setup-uv': 'astral-sh/setup-uv@v6',
  'pnpm/action-setup': 'pnpm/action-setup@v4',
};

function uses(options: CiOptions, action: string): string {
  return options.uses?.[action] ?? DEFAULT_USES[action] ?? action;
}

const INSTALL: Record<NonNullable<CiOptions['node']>['packageManager'], string[]> = {
  npm: ['npm ci'],
  pnpm: ['corepack enable', 'pnpm install --frozen-lockfile'],
  yarn: ['corepack enable', 'yarn install --immutable'],
  bun: ['npm i -g bun', 'bun install --frozen-lockfile'],
};

/** `.github/workflows/seq-test.yml`. */
export function renderGithubWorkflow(options: CiOptions): string {
  const timeoutMinutes = options.timeoutMinutes ?? 30;
  const runTimeout = Math.max(60, (timeoutMinutes - 1) * 60);
  const setup: string[] = [];
  const tests: string[] = [];
  const step = (lines: string[]) => lines.map((l) => `      ${l}`).join('\n');
  // seq-test itself needs Node, even in a Python-only project.
  const pnpmAction = options.node?.packageManager === 'pnpm' && options.uses?.['pnpm/action-setup'] !== undefined;
  if (pnpmAction) setup.push(step([`- uses: ${uses(options, 'pnpm/action-setup')}`]));
  setup.push(
    step([
      `- uses: ${uses(options, 'actions/setup-node')}`,
      '  with:',
      '    node-version: 20',
      ...(options.node?.packageManager === 'npm' ? ['    cache: npm'] : []),
    ]),
  );
  if (options.node) {
    const install = INSTALL[options.node.packageManager].filter((c) => !(pnpmAction && c === 'corepack enable'));
    setup.push(step(['- name: Install dependencies', ...runLines(install)]));
  }
  const versions = options.python?.versions?.length ? options.python.versions : ['3.12'];
  if (options.python) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, written as is
    const version = versions.length > 1 ? '${{ matrix.python-version }}' : versions[0];
    if (options.python.uv) {
      setup.push(
        step([
          `- uses: ${uses(options, 'astral-sh/setup-uv')}`,
          '  with:',
          `    python-version: ${yamlQuoted(version ?? '')}`,
        ]),
      );
    } else {
      setup.push(
        step([
          `- uses: ${uses(options, 'actions/setup-python')}`,
          '  with:',
          `    python-version: ${yamlQuoted(version ?? '')}`,
        ]),
      );
    }
    setup.push(step(['- name: Install Python dependencies', ...runLines([options.python.install])]));
  }
  const seqTest = options.node ? 'npx seq-test' : 'npx --yes seq-test';
  if (options.node) {
    tests.push(
      step([
        '- name: Tests (one run at a time, every process reaped)',
        `  run: ${yamlScalar(`${seqTest} run --timeout ${runTimeout} -- ${options.node.testCommand}`)}`,
      ]),
    );
  }
  if (options.python) {
    tests.push(
      step([
        '- name: Python tests (one run at a time, every process reaped)',
        `  run: ${yamlScalar(`${seqTest} run --timeout ${runTimeout} -- ${options.python.testCommand}`)}`,
      ]),
    );
  }
  const matrix =
    options.python && versions.length > 1
      ? `    strategy:\n      matrix:\n        python-version: [${versions.map(yamlQuoted).join(', ')}]\n`
      : '';
  return render(readTemplate('github-actions.yml'), {
    branch: options.branch,
    timeoutMinutes: String(timeoutMinutes),
    matrix,
    checkout: uses(options, 'actions/checkout'),
    setupSteps: setup.join('\n'),
    testSteps: tests.join('\n'),
  });
}

/** A `.gitlab-ci.yml` job to paste (init never edits .gitlab-ci.yml). */
export function renderGitlabSnippet(options: CiOptions): string {
  const timeoutMinutes = options.timeoutMinutes ?? 30;
  const runTimeout = Math.max(60, (timeoutMinutes - 1) * 60);
  const lines: string[] = [];
  if (options.node) lines.push(...INSTALL[options.node.packageManager]);
  if (options.python) {
    lines.push('apt-get update && apt-get install -y python3-pip');
    if (options.python.uv) lines.push('python3 -m pip install uv');
    lines.push(options.python.install);
  }
  if (options.node) lines.push(`npx seq-test run --timeout ${runTimeout} -- ${options.node.testCommand}`);
  if (options.python) lines.push(`npx --yes seq-test run --timeout ${runTimeout} -- ${options.python.testCommand}`);
  return render(readTemplate('gitlab-ci.yml'), {
    timeoutMinutes: String(timeoutMinutes),
    scriptLines: lines.map((l) => `    - ${yamlScalar(l)}`).join('\n'),
  });
}

/** A local pre-commit framework hook that runs the tests through seq-test, to paste into .pre-commit-config.yaml. */
export function renderPreCommitSnippet(options: { testCommand: string }): string {
  return render(readTemplate('pre-commit-config.yaml'), { testCommand: options.testCommand });
}

function runLines(commands: string[]): string[] {
  if (commands.length === 1) return [`  run: ${yamlScalar(commands[0] ?? '')}`];
  return ['  run: |', ...commands.map((c) => `    ${c}`)];
}

/** A version number as a quoted YAML string (3.10 must not become the number 3.1). */
function yamlQuoted(text: string): string {
  return text.startsWith('${{') ? text : `'${text}'`;
}

/** Quotes a one-line YAML scalar when plain style would change its meaning. */
function yamlScalar(text: string): string {
  return /^[\w./=@-][^#:{}[\],&*!|>'"%@`]*$/.test(text) && !/:\s|\s#/.test(text) ? text : JSON.stringify(text);
}
