import { constants } from 'node:os';
import { SeqTestError } from './errors.js';

export interface SignalSpec {
  name: NodeJS.Signals;
  number: number;
}

const BY_NAME = constants.signals as Record<string, number>;

/** Accepts "TERM", "SIGTERM", "sigterm" or "15"; rejects anything the OS does not know. */
export function parseSignal(option: string, value: string | number): SignalSpec {
  const text = String(value).trim();
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    const name = Object.keys(BY_NAME).find((key) => BY_NAME[key] === number);
    if (name) return { name: name as NodeJS.Signals, number };
  } else {
    const upper = text.toUpperCase();
    const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
    const number = BY_NAME[name];
    if (number !== undefined) return { name: name as NodeJS.Signals, number };
  }
  throw new SeqTestError(`${option} expects a signal name or number such as TERM, SIGINT or 9, got "${value}"`);
}

export function signalNumber(name: NodeJS.Signals): number {
  return BY_NAME[name] ?? 0;
}

export function signalName(number: number): NodeJS.Signals | undefined {
  return Object.keys(BY_NAME).find((key) => BY_NAME[key] === number) as NodeJS.Signals | undefined;
}
