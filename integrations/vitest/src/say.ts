/** Every line the plugin prints starts with this, like the CLI's, so it stands out from Vitest's output. */
export const PREFIX = 'seq-test:';

export function say(line: string): void {
  process.stderr.write(`${PREFIX} ${line}\n`);
}
