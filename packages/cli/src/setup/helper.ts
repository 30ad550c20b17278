import { chooseHelper, HELPER_DISABLE_ENV, type HelperCandidate, type HelperSource } from '@seq-test/core/internal';
import type { Finding } from './types.js';

/** Which subreaper helper runs would use, for `seq-test doctor` (and its --json). */
export interface HelperReport {
  /** The helper in use, or null: runs go without it. */
  path: string | null;
  source: HelperSource | null;
  /** Which helper is used and why, or why none is. */
  reason: string;
  /** Every candidate looked at, in order, with why it was passed over. */
  candidates: HelperCandidate[];
}

/** The helper a run would use, plus a finding when one was expected but none is usable. */
export function auditHelper(env: NodeJS.ProcessEnv): { helper: HelperReport; findings: Finding[] } {
  try {
    const choice = chooseHelper(env);
    const helper = {
      path: choice.path ?? null,
      source: choice.source ?? null,
      reason: choice.reason,
      candidates: choice.candidates,
    };
    if (!choice.problem) return { helper, findings: [] };
    return {
      helper,
      findings: [
        {
          severity: 'warning',
          check: 'helper.unusable',
          message: `runs go without the subreaper helper: ${choice.problem.cause}; escapees that empty their environment and leave the session may be missed`,
          fix: `${choice.problem.fix} (or set ${HELPER_DISABLE_ENV}=1 to run without it quietly)`,
        },
      ],
    };
  } catch (error) {
    // SEQ_TEST_SUBREAPER names something unusable: every run would stop with this error.
    const message = (error as Error).message;
    return {
      helper: { path: null, source: 'override', reason: message, candidates: [] },
      findings: [
        {
          severity: 'error',
          check: 'helper.override',
          message: `${message.replace(/;.*$/, '')}: every run stops with this error`,
          fix: message.replace(/^.*?;\s*/, ''),
        },
      ],
    };
  }
}

/** One line for the human report. */
export function renderHelper(helper: HelperReport): string {
  return helper.path
    ? `subreaper helper: ${helper.path} (${helper.reason})`
    : `subreaper helper: none (${helper.reason})`;
}
