#!/bin/sh
# The `seq-test` command (the npm bin), as bin/seq-test's first line runs it: with this file's real path
# (that line follows npm's links, so this file does not). It runs the CLI with node through bin/seq-test.js
# (which says how to build the CLI when it is not built yet), except for `seq-test run` on Linux when the
# seq-test helper answers its launch handshake: then the helper itself becomes this process (exec, same
# pid) and starts node as its child. The helper is then the small process that owns the run's ticket and
# waits in the kernel while the run is far from the head of the queue, instead of a waiting node process
# (see packages/core/native/launcher.c and "Waiting" in docs/process-tree.md). SEQ_TEST_NO_LAUNCHER=1 (or
# SEQ_TEST_NO_SUBREAPER=1) skips it.
here=${0%/*}
script=$here/seq-test.js

# Whether $1 is an ELF program of this machine: only those are started, because a shell hands a file the
# kernel refuses (ENOEXEC: another architecture's binary) to /bin/sh, which would run its bytes as commands.
elf_of_this_machine() {
  set -- $(od -An -tu1 -N20 "$1" 2>/dev/null)
  [ "$1 $2 $3 $4" = "127 69 76 70" ] && [ "${19:-}" = "$machine" ]
}

# The first helper that answers, in the order @seq-test/core looks for one (SEQ_TEST_SUBREAPER, the
# platform package, a build from source), wherever npm put the packages relative to this one.
launcher() {
  case $(uname -m 2>/dev/null) in
  x86_64 | amd64) arch=x64 machine=62 ;;
  aarch64 | arm64) arch=arm64 machine=183 ;;
  *) return 1 ;; # no platform package, and no way here to tell a foreign binary from ours
  esac
  if [ -n "${SEQ_TEST_SUBREAPER:-}" ]; then
    set -- "$SEQ_TEST_SUBREAPER"
  else
    package=@seq-test/helper-linux-$arch/seq-test-subreaper
    set -- "$here/../../$package" "$here/../node_modules/$package" \
      "$here/../../@seq-test/core/node_modules/$package" "$here/../node_modules/@seq-test/core/node_modules/$package" \
      "$here/../../helpers/linux-$arch/seq-test-subreaper" \
      "$here/../../@seq-test/core/dist/seq-test-subreaper" "$here/../node_modules/@seq-test/core/dist/seq-test-subreaper" \
      "$here/../../core/dist/seq-test-subreaper"
  fi
  for helper; do
    [ -f "$helper" ] && [ -x "$helper" ] && elf_of_this_machine "$helper" || continue
    [ "$("$helper" --launch-handshake 2>/dev/null)" = "seq-test-subreaper launch 1 ready" ] && return 0
    [ -n "${SEQ_TEST_SUBREAPER:-}" ] && return 1 # an explicit helper that does not answer: node says why
  done
  return 1
}

if [ "${1:-}" = run ] && [ -r /proc/self/stat ] && [ "${SEQ_TEST_NO_LAUNCHER:-}" != 1 ] &&
  [ "${SEQ_TEST_NO_SUBREAPER:-}" != 1 ] && [ "${SEQ_TEST_DISABLE:-}" != 1 ] && [ -f "$here/../dist/bin.js" ] &&
  node=$(command -v node) && case $node in /*) true ;; *) false ;; esac && launcher; then
  exec "$helper" --launch "$node" "$script" "$@"
fi
exec node "$script" "$@"
