// `preset: '@seq-test/jest'` in a Jest config: one worker (a serial runner that wins over -w), the lock
// taken in global setup, leftovers reaped in global teardown, and the summary reporter. A config that sets
// its own globalSetup, globalTeardown, runner or reporters replaces ours (presets do not chain): use
// withSeqTest() from '@seq-test/jest' instead, which runs yours too.
module.exports = require('./dist/index.js').presetConfig();
