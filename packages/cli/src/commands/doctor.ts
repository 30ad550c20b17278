import type { Command } from 'commander';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .summary('check that tests, hooks and CI of this repository go through the queue')
    .description(
      'Reports, each with its file and the command or edit that fixes it: test runner configs without the ' +
        'seq-test integration or with parallel workers, pytest addopts with -n, pre-commit hooks without ' +
        'require_serial, git hooks that bypass seq-test, bad project settings, dead tickets and leftovers ' +
        'of dead runs, an unsafe state dir. Changes nothing.',
    )
    .option('--json', 'machine-readable output')
    .option('--strict', 'exit 1 on warnings too')
    .addHelpText(
      'after',
      `
Severities: error (something runs outside the queue, or is unsafe), warning (parallel work inside one run,
a dead ticket), info (worth knowing).

Exit codes: 0 no errors; 1 at least one error (or warning, with --strict); 125 doctor itself failed.

Examples:
  $ seq-test doctor
  $ seq-test doctor --json | jq '.findings[] | select(.severity == "error")'`,
    )
    .action(async (raw: { json?: boolean; strict?: boolean }) => {
      const { renderDoctor, runDoctor } = await import('../setup/doctor.js');
      const report = runDoctor({ strict: Boolean(raw.strict) });
      process.stdout.write(raw.json ? `${JSON.stringify(report, null, 2)}\n` : renderDoctor(report));
      process.exitCode = report.ok ? 0 : 1;
    });
}
