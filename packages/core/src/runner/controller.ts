/** Lets signal handlers (or any caller) stop a run: the first interrupt forwards, the second kills. */
export class ExecController {
  private listener: ((signal: NodeJS.Signals) => void) | undefined;
  private received: NodeJS.Signals | undefined;
  private wake: ((signal: NodeJS.Signals) => void) | undefined;
  /** Settles at the first interrupt (wakes a retry delay); never rejects, holds no timer. */
  readonly interruption: Promise<NodeJS.Signals> = new Promise((resolve) => {
    this.wake = resolve;
  });

  interrupt(signal: NodeJS.Signals): void {
    this.received ??= signal;
    this.wake?.(signal);
    this.listener?.(signal);
  }

  get interrupted(): NodeJS.Signals | undefined {
    return this.received;
  }

  /** @internal */
  listen(listener: ((signal: NodeJS.Signals) => void) | undefined): void {
    this.listener = listener;
  }
}
