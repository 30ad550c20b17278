# >>> seq-test >>> added by `seq-test init`; delete this block to run the hook without the queue
# Re-runs this hook under `seq-test run`: it waits its turn in the project's queue (one test, lint or hook
# run at a time), and every process it starts is waited for and reaped. SEQ_TEST_DISABLE=1 skips the queue.
seq_test_self=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)/$(basename -- "$0")
if [ "${SEQ_TEST_HOOK-}" != "$seq_test_self" ] && [ "${SEQ_TEST_DISABLE-}" != 1 ]; then
  SEQ_TEST_HOOK=$seq_test_self
  export SEQ_TEST_HOOK
  seq_test_bin=${SEQ_TEST_BIN-}
  if [ -z "$seq_test_bin" ]; then
    seq_test_top=$(git rev-parse --show-toplevel 2>/dev/null) || seq_test_top=.
    if [ -x "$seq_test_top/node_modules/.bin/seq-test" ]; then
      seq_test_bin=$seq_test_top/node_modules/.bin/seq-test
    else
      seq_test_bin=$(command -v seq-test 2>/dev/null) || seq_test_bin=
    fi
  fi
  if [ -z "$seq_test_bin" ]; then
    echo "seq-test: not found; install it (npm i -D seq-test) or set SEQ_TEST_BIN; SEQ_TEST_DISABLE=1 runs this hook without the queue" >&2
    exit 1
  fi
  if [ -x "$seq_test_self" ] && [ "$(head -c 2 -- "$seq_test_self")" = '#!' ]; then
    exec "$seq_test_bin" run -- "$seq_test_self" "$@"
  fi
  exec "$seq_test_bin" run -- sh -e "$seq_test_self" "$@"
fi
# <<< seq-test <<<
