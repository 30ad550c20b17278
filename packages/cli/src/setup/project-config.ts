import { loadProjectConfig, type ProjectConfig } from '@seq-test/core';
import type { Command } from 'commander';
import type { RawExecOptions } from '../exec-options.js';

/** The options of `run` that project settings may supply (exec uses the RawExecOptions subset). */
export interface ConfigurableOptions extends RawExecOptions {
  key?: string;
  slots?: string;
  maxSlots?: string;
  memoryBudget?: string;
}

/**
 * Fills the options the user did not give on the command line from the project's settings
 * (package.json "seqTest" or .seqtestrc.json, see @seq-test/core's loadProjectConfig).
 * Precedence: flag > environment ($SEQ_TEST_KEY) > project file > built-in default.
 * `lock: false` (exec) ignores key and slots, which only mean something to the queue.
 */
export function applyProjectDefaults<T extends ConfigurableOptions>(
  raw: T,
  command: Command,
  options: { lock: boolean; cwd?: string; env?: NodeJS.ProcessEnv } = { lock: true },
): T {
  const loaded = loadProjectConfig(options.cwd ?? process.cwd());
  if (!loaded) return raw;
  const env = options.env ?? process.env;
  const fromFile = optionValues(loaded.config);
  const result: T = { ...raw };
  for (const [name, value] of Object.entries(fromFile) as [keyof ConfigurableOptions, string][]) {
    if (!options.lock && (name === 'key' || name === 'slots' || name === 'maxSlots' || name === 'memoryBudget'))
      continue;
    if (name === 'key' && env.SEQ_TEST_KEY) continue;
    const source = command.getOptionValueSource(name);
    if (source === 'cli' || source === 'env') continue;
    (result as ConfigurableOptions)[name] = value as never;
  }
  return result;
}

/** Project settings as the strings commander would have produced for the matching flags. */
export function optionValues(config: ProjectConfig): Partial<Record<keyof ConfigurableOptions, string>> {
  const values: Partial<Record<keyof ConfigurableOptions, string>> = {};
  if (config.key !== undefined) values.key = config.key;
  if (config.slots !== undefined) values.slots = String(config.slots);
  if (config.maxSlots !== undefined) values.maxSlots = String(config.maxSlots);
  if (config.memoryBudgetBytes !== undefined) values.memoryBudget = String(config.memoryBudgetBytes);
  if (config.timeoutMs !== undefined) values.timeout = String(config.timeoutMs / 1000);
  if (config.graceMs !== undefined) values.grace = String(config.graceMs / 1000);
  if (config.lingerMs !== undefined) values.linger = String(config.lingerMs / 1000);
  if (config.maxMemoryBytes !== undefined) values.maxMemory = String(config.maxMemoryBytes);
  if (config.killSignal !== undefined) values.killSignal = config.killSignal;
  return values;
}
