import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  GUARD_BEGIN,
  hasGuard,
  hookGuard,
  insertGuard,
  isShellScript,
  removeGuard,
  render,
  renderGithubWorkflow,
  renderGitlabSnippet,
  renderHook,
  renderPreCommitSnippet,
} from '../../packages/cli/src/setup/templates.js';

describe('seq-test init templates (packages/cli/templates)', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell or GitHub Actions syntax, not a JS template
  it('render: every placeholder needs a value and every value a placeholder; ${{ }} passes through', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell or GitHub Actions syntax, not a JS template
    expect(render('a {{x}} ${{ github.ref }}', { x: '1' })).toBe('a 1 ${{ github.ref }}');
    expect(() => render('{{x}} {{y}}', { x: '1' })).toThrow('template placeholder {{y}} has no value');
    expect(() => render('{{x}}', { x: '1', z: '2' })).toThrow('template has no placeholder {{z}}');
  });

  it('the hook block is valid POSIX sh, goes after the #! line, and comes out again byte for byte', () => {
    expect(spawnSync('sh', ['-n'], { input: hookGuard() }).status).toBe(0);
    const scripts = [
      '#!/bin/sh\necho hi\n',
      '#!/usr/bin/env bash\nset -e\nnpm test\n',
      'npm test\n', // husky v9: no #! line
      '#!/bin/sh', // no newline at all
    ];
    for (const script of scripts) {
      const guarded = insertGuard(script);
      expect(hasGuard(guarded)).toBe(true);
      expect(insertGuard(guarded)).toBe(guarded);
      if (script.startsWith('#!')) expect(guarded.startsWith(`${script.split('\n')[0]}\n${GUARD_BEGIN}`)).toBe(true);
      else expect(guarded.startsWith(GUARD_BEGIN)).toBe(true);
      expect(removeGuard(guarded)).toBe(script.includes('\n') ? script : `${script}\n`);
    }
  });

  it('isShellScript: sh-like interpreters (and no #! line) yes; python, node, binaries no', () => {
    expect(isShellScript('#!/bin/sh\n')).toBe(true);
    expect(isShellScript('#!/usr/bin/env bash\n')).toBe(true);
    expect(isShellScript('#!/usr/bin/env -S bash -e\n')).toBe(true);
    expect(isShellScript('#!/bin/zsh\n')).toBe(true);
    expect(isShellScript('npm test\n')).toBe(true);
    expect(isShellScript('#!/usr/bin/env python3\n')).toBe(false);
    expect(isShellScript('#!/usr/bin/env node\n')).toBe(false);
  });

  it('a new hook runs its body after the block', () => {
    const hook = renderHook({ hook: 'pre-commit', body: 'npm test' });
    expect(hook.startsWith('#!/bin/sh\n# pre-commit hook written by `seq-test init`.\n# >>> seq-test >>>')).toBe(true);
    expect(hook.endsWith('# <<< seq-test <<<\nnpm test\n')).toBe(true);
    expect(spawnSync('sh', ['-n'], { input: hook }).status).toBe(0);
  });

  it('CI templates are valid YAML with the concurrency group / resource group and seq-test run', () => {
    const workflow = parse(
      renderGithubWorkflow({
        branch: 'main',
        node: { packageManager: 'pnpm', testCommand: 'pnpm test' },
        python: { install: 'python -m pip install -e . pytest', testCommand: 'python -m pytest' },
      }),
    );
    expect(workflow.concurrency).toEqual({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell or GitHub Actions syntax, not a JS template
      group: '${{ github.workflow }}-${{ github.ref }}',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell or GitHub Actions syntax, not a JS template
      'cancel-in-progress': "${{ github.event_name == 'pull_request' }}",
    });
    const runs = workflow.jobs.test.steps.map((s: { run?: string }) => s.run).filter(Boolean);
    expect(runs).toContain('npx seq-test run --timeout 1740 -- pnpm test');
    expect(runs).toContain('npx seq-test run --timeout 1740 -- python -m pytest');
    expect(runs).toContain('corepack enable\npnpm install --frozen-lockfile\n');

    const gitlab = parse(
      renderGitlabSnippet({ branch: 'main', node: { packageManager: 'npm', testCommand: 'npm test' } }),
    );
    expect(gitlab.test.resource_group).toBe('tests-$CI_COMMIT_REF_SLUG');
    expect(gitlab.test.script).toEqual(['npm ci', 'npx seq-test run --timeout 1740 -- npm test']);

    const preCommit = parse(renderPreCommitSnippet({ testCommand: 'npm run test:unit' }));
    expect(preCommit.repos[0].hooks[0]).toMatchObject({
      entry: 'seq-test run -- npm run test:unit',
      require_serial: true,
      pass_filenames: false,
    });
  });
});
