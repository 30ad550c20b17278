import type { ExecController } from './runner.js';

export const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/**
 * Routes SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to this process into the run: the first is forwarded to the
 * whole tree, a second escalates to SIGKILL. Returns a function that removes the handlers.
 */
export function forwardSignals(controller: ExecController): () => void {
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => controller.interrupt(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
