const { withSeqTest } = require('@seq-test/jest');

// Without withSeqTest this is an ordinary Jest config. With it: one test file at a time (even with -w 4),
// one Jest run of this repository at a time (others queue), and whatever the tests leave running is ended
// after our own global teardown has run.
module.exports = withSeqTest({
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.js'],
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
  setupFilesAfterEnv: ['<rootDir>/test/stamps.js'],
});
