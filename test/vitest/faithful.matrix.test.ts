// The faithful suite (faithful-suite.ts) on Vitest 3.0, 3.2 and 5.1 (test/vitest/matrix).
import { beforeAll, describe } from 'vitest';
import { faithfulCases } from './faithful-suite.js';
import { matrix, type VitestInstall } from './support.js';

let installs: Record<string, VitestInstall> = {};
beforeAll(() => {
  installs = matrix();
}, 600_000);

describe.each(['3.0', '3.2', '5.1'])('Vitest %s', (name) => {
  faithfulCases(() => installs[name] as VitestInstall);
});
