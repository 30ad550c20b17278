import { describeHelperSuite, SOURCE_BUILD } from './support/helper-suite.js';

// The helper built from source by `npm run build` (cc), as the development checkout and any platform
// without a prebuilt package use it. The static platform packages: subreaper-platforms.matrix.test.ts.
describeHelperSuite(
  'the subreaper helper, built from source',
  [{ name: 'source build (cc)', binary: SOURCE_BUILD, argv: [SOURCE_BUILD], emulated: false }],
  'npm run build, with a C compiler',
);
