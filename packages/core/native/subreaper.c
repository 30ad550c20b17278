/*
 * seq-test-subreaper: the ancestor that escapees cannot leave.
 *
 * Usage: seq-test-subreaper <path> <argv0> [args...]   (started by @seq-test/core with fd 3 a pipe;
 *        <path> is already resolved, so no PATH search happens here)
 *
 * It marks itself a child subreaper (Linux PR_SET_CHILD_SUBREAPER), so every descendant that is orphaned
 * (double fork, setsid, daemonize, even with an emptied environment) is re-parented to it instead of init,
 * and stays visible as part of the run. It forks the command, reports on fd 3:
 *   "pid <pid>\n"                  once the command is started
 *   "exit <code>\n" / "signal <n>\n" when the command itself ends
 * and then keeps reaping adopted orphans until none is left, so they never linger as zombies.
 * It ignores SIGINT/SIGTERM/SIGHUP/SIGQUIT: seq-test signals the tree by pid, and this process must
 * outlive the tree to keep adopting. seq-test ends it with SIGKILL if it must.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPORT_FD 3

static void report(const char *fmt, long value) {
  char line[64];
  int n = snprintf(line, sizeof line, fmt, value);
  if (n > 0) {
    ssize_t ignored = write(REPORT_FD, line, (size_t)n);
    (void)ignored;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "seq-test-subreaper: no command\n");
    return 125;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    perror("seq-test-subreaper: prctl(PR_SET_CHILD_SUBREAPER)");
  }
  pid_t child = fork();
  if (child < 0) {
    perror("seq-test-subreaper: fork");
    return 125;
  }
  if (child == 0) {
    close(REPORT_FD);
    execv(argv[1], argv + 2);
    int code = errno == ENOENT ? 127 : 126;
    fprintf(stderr, "seq-test: cannot run %s: %s\n", argv[1], strerror(errno));
    _exit(code);
  }
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  report("pid %ld\n", (long)child);
  for (;;) {
    int status;
    pid_t done = waitpid(-1, &status, 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      break; /* ECHILD: nothing left to adopt or reap */
    }
    if (done == child) {
      if (WIFEXITED(status)) report("exit %ld\n", (long)WEXITSTATUS(status));
      else if (WIFSIGNALED(status)) report("signal %ld\n", (long)WTERMSIG(status));
    }
  }
  return 0;
}
