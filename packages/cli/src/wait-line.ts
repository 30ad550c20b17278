// The queue line lives in core so that the CLI and the test-runner integrations print the very same one.
export { describeWait, WaitLine } from '@seq-test/core';
