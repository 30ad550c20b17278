// The faithful suite (faithful-suite.ts) on the repo's own Vitest (4.x); 3.0, 3.2 and 5.1 in
// faithful.matrix.test.ts.
import { describe } from 'vitest';
import { faithfulCases } from './faithful-suite.js';
import { REPO_VITEST } from './support.js';

describe(`Vitest ${REPO_VITEST.version}`, () => {
  faithfulCases(() => REPO_VITEST);
});
