import { closeSync, writeSync } from 'node:fs';
import { type HandOffPlan, identityOf, type ProcessIdentity, TOKEN_ENV } from '@seq-test/core/internal';

/**
 * `seq-test run` started by its launcher (packages/core/native/launcher.c, which the npm bin execs for
 * `run` on Linux when the helper answers its handshake): the launcher is the process the user's shell
 * waits on and owns the ticket; this process queues in its name and, when it finds the run far from the
 * head, hands the wait to it and exits (the launcher waits in the kernel and starts us again with the
 * ticket to resume). Variables, all removed from our environment at once so that nothing we start sees them:
 * - SEQ_TEST_LAUNCHER="<launcher pid> <plan fd>": the launcher, and the pipe the hand-over line goes to;
 * - SEQ_TEST_RESUME=<ticket name>: the ticket the launcher kept for us (set when it starts us again);
 * - SEQ_TEST_LAUNCHER_CHAIN: the launcher's SEQ_TEST_TOKEN, put back for what we start (the launcher keeps it
 *   out of our own environment: the owner of a run carries no token, see launcher.c).
 */
export interface Launcher {
  owner: ProcessIdentity;
  resume: string | undefined;
  planFd: number | undefined;
}

const LAUNCHER_ENV = 'SEQ_TEST_LAUNCHER';
const RESUME_ENV = 'SEQ_TEST_RESUME';
const CHAIN_ENV = 'SEQ_TEST_LAUNCHER_CHAIN';

/** The launcher that started us, or undefined (started any other way, or the variables are not ours). */
export function takeLauncher(env: NodeJS.ProcessEnv = process.env): Launcher | undefined {
  const announced = env[LAUNCHER_ENV];
  const resume = env[RESUME_ENV];
  const chain = env[CHAIN_ENV];
  delete env[LAUNCHER_ENV];
  delete env[RESUME_ENV];
  delete env[CHAIN_ENV];
  const match = announced === undefined ? null : /^(\d+) (\d+)$/.exec(announced);
  // Only our parent can be our launcher: a variable inherited from elsewhere is ignored.
  if (!match || Number(match[1]) !== process.ppid) return undefined;
  const owner = identityOf(process.ppid);
  if (!owner) return undefined;
  if (chain !== undefined) env[TOKEN_ENV] = chain;
  return { owner, resume: resume || undefined, planFd: Number(match[2]) };
}

/** Hands the wait to the launcher: one line on the plan pipe. False when it cannot be said (we wait ourselves). */
export function handOffTo(launcher: Launcher, plan: HandOffPlan): boolean {
  if (launcher.planFd === undefined || /[\t\n]/.test(plan.ticketsDir + plan.ticket)) return false;
  try {
    writeSync(launcher.planFd, `await\t${plan.ticketsDir}\t${plan.ticket}\t${plan.near}\n`);
    return true;
  } catch {
    return false;
  } finally {
    closePlan(launcher);
  }
}

/** Closes the plan pipe once we wait or run ourselves, before anything is started that could inherit it. */
export function closePlan(launcher: Launcher | undefined): void {
  if (launcher?.planFd === undefined) return;
  try {
    closeSync(launcher.planFd);
  } catch {}
  launcher.planFd = undefined;
}
