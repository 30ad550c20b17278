/*
 * seq-test-subreaper: the ancestor that escapees cannot leave.
 *
 * Usage: seq-test-subreaper [--park] <path> <argv0> [args...]   (started by @seq-test/core with fd 3 a
 *        socket pair; <path> is already resolved and absolute, so no PATH search happens here)
 *        seq-test-subreaper --handshake                          (the probe seq-test runs once before it
 *        trusts a helper binary: prints "seq-test-subreaper <protocol> ready" on stdout, or
 *        "seq-test-subreaper <protocol> error subreaper <errno>" when it cannot become a subreaper here)
 *        seq-test-subreaper --launch <node> <script> run ...     the process a shell waits on for `seq-test
 *        seq-test-subreaper --launch-handshake                   run`, which waits in the kernel while the run
 *                                                                is far from the head: see launcher.c
 *        seq-test-subreaper --watch-owners                       what a waiting seq-test starts to learn when
 *                                                                an owner ahead ends (pidfds): see owner-watch.c
 *
 * --park: start, then wait for the byte "g" on fd 3 before starting the command (other bytes are ignored;
 * EOF: exit quietly). A queued `seq-test run` starts its helper while it waits for the lock, so that its
 * turn costs one write instead of a process spawn.
 *
 * It marks itself a child subreaper (Linux PR_SET_CHILD_SUBREAPER), so every descendant that is orphaned
 * (double fork, setsid, daemonize, even with an emptied environment) is re-parented to it instead of init,
 * and stays visible as part of the run. It forks the command, reports on fd 3 (one line each; protocol 2 is
 * protocol 1 with --watch-owners, so that a core expecting it never gets a helper without it):
 *   "pid <pid>\n"                  once the command is started
 *   "exit <code> <maxrss>\n" / "signal <n> <maxrss>\n" when the command itself ends
 *   "peak <maxrss>\n"              just before it exits
 *   "error <step> <errno>\n"       when a step fails: "subreaper" and "pdeathsig" (the command still runs,
 *                                  but orphans go to init / a dead seq-test is not noticed), "fork" and
 *                                  "usage" (nothing runs; the helper exits 125), "exec" (from the forked
 *                                  child; its "exit 126|127" follows)
 * and in between keeps reaping adopted orphans until none is left, so they never linger as zombies.
 * <maxrss> is in KiB: the command's own peak (its reaped descendants included), then the largest peak of
 * any process reaped here. seq-test samples the tree's memory, but a short command can end between two
 * samples; this is the floor under its reported peak.
 *
 * Signals (tini's model): every signal is blocked from the first instruction on, and the helper takes
 * them one at a time with sigtimedwait(); the forked child restores the original mask before execv, so the
 * command sees the signals it would have seen without us. INT/TERM/HUP/QUIT therefore do nothing to the
 * helper, parked or not: seq-test signals the tree by pid, and this process must outlive the tree to keep
 * adopting. seq-test ends it with SIGKILL if it must.
 *
 * If seq-test itself dies first (SIGKILL, OOM killer, a crash), nobody is left to end the run, so the
 * helper does it: it asks for a signal when its parent dies (PR_SET_PDEATHSIG), and then SIGKILLs every
 * descendant it can find in /proc (with the subreaper bit, that is the whole tree, escapees included),
 * reaps them and exits. A stray SIGUSR1 does nothing: only a changed parent pid counts. A parked helper
 * needs none of this: seq-test's end of fd 3 closes when it dies, and the read sees EOF.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REPORT_FD 3
#define PROTOCOL 2
#define PARENT_DEATH_SIGNAL SIGUSR1
/* What the helper exits with when it could not start the command (seq-test's own failure code). */
#define HELPER_FAILED 125

/* launcher.c */
int launch_main(int argc, char **argv, const sigset_t *original);
int launch_handshake(void);
/* owner-watch.c */
int watch_main(void);
/* below (owner-watch.c uses it too) */
int write_line(int fd, const char *fmt, va_list args);

/* SIGKILLs every descendant of this process, found through the ppid links in /proc. */
static void kill_descendants(void) {
  size_t count = 0, capacity = 1024;
  pid_t *pids = malloc(capacity * sizeof *pids), *ppids = malloc(capacity * sizeof *ppids);
  char *mine = NULL;
  DIR *proc = opendir("/proc");
  if (!pids || !ppids || !proc) goto done;
  struct dirent *entry;
  while ((entry = readdir(proc)) != NULL) {
    if (!isdigit((unsigned char)entry->d_name[0])) continue;
    char path[300], text[512];
    snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
    FILE *file = fopen(path, "r");
    if (!file) continue;
    size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[length] = '\0';
    char *close = strrchr(text, ')'); /* the command name may hold spaces and parentheses */
    char state;
    int ppid;
    if (!close || sscanf(close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (count == capacity) {
      capacity *= 2;
      pid_t *more = realloc(pids, capacity * sizeof *pids);
      if (!more) break;
      pids = more;
      more = realloc(ppids, capacity * sizeof *ppids);
      if (!more) break;
      ppids = more;
    }
    pids[count] = (pid_t)atoi(entry->d_name);
    ppids[count] = (pid_t)ppid;
    count++;
  }
  mine = calloc(count ? count : 1, 1);
  if (!mine) goto done;
  pid_t self = getpid();
  for (int changed = 1; changed;) { /* mark children of self, then their children, ... */
    changed = 0;
    for (size_t i = 0; i < count; i++) {
      if (mine[i]) continue;
      int parent_is_mine = ppids[i] == self;
      for (size_t j = 0; !parent_is_mine && j < count; j++) parent_is_mine = mine[j] && pids[j] == ppids[i];
      if (parent_is_mine) mine[i] = changed = 1;
    }
  }
  for (size_t i = 0; i < count; i++)
    if (mine[i]) kill(pids[i], SIGKILL);
done:
  if (proc) closedir(proc);
  free(pids);
  free(ppids);
  free(mine);
}

/* Writes one report line on fd 3, whole: retried on EINTR and after a short write. A reader that is gone
 * (EPIPE; SIGPIPE is blocked) or a closed fd 3 ends the attempt silently: nobody is left to tell. */
static void report(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  write_line(REPORT_FD, fmt, args);
  va_end(args);
}

/* Formats one line and writes all of it, retrying EINTR and short writes; -1 when the fd cannot take it. */
int write_line(int fd, const char *fmt, va_list args) {
  char line[128];
  int length = vsnprintf(line, sizeof line, fmt, args);
  if (length <= 0 || (size_t)length >= sizeof line) return 0; /* never longer: nothing to say */
  for (size_t sent = 0; sent < (size_t)length;) {
    ssize_t wrote = write(fd, line + sent, (size_t)length - sent);
    if (wrote > 0) sent += (size_t)wrote;
    else if (wrote < 0 && errno == EINTR) continue;
    else return -1;
  }
  return 0;
}

/* The handshake seq-test runs before it trusts this binary: it proves that the binary runs on this machine
 * (architecture, loader), is this helper speaking this protocol, and can become a subreaper here. */
static int handshake(void) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    printf("seq-test-subreaper %d error subreaper %d\n", PROTOCOL, errno);
    return HELPER_FAILED;
  }
  printf("seq-test-subreaper %d ready\n", PROTOCOL);
  return fflush(stdout) == 0 ? 0 : HELPER_FAILED;
}

int main(int argc, char **argv) {
  /* First: from here on no signal has its default action on the helper (parked or not); they wait in the
   * mask until sigtimedwait() below takes them. The child gets the original mask back before execv. */
  sigset_t all, original;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &original);
  /* An inherited SIG_IGN for SIGCHLD would make the kernel reap our children before wait4() sees them. */
  struct sigaction default_action;
  memset(&default_action, 0, sizeof default_action);
  default_action.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &default_action, NULL);

  if (argc == 2 && strcmp(argv[1], "--handshake") == 0) return handshake();
  if (argc == 2 && strcmp(argv[1], "--launch-handshake") == 0) return launch_handshake();
  if (argc == 2 && strcmp(argv[1], "--watch-owners") == 0) return watch_main();
  if (argc >= 2 && strcmp(argv[1], "--launch") == 0) return launch_main(argc - 2, argv + 2, &original);
  int park = argc > 1 && strcmp(argv[1], "--park") == 0;
  if (park) {
    argv++;
    argc--;
  }
  if (argc < 3) {
    fprintf(stderr, "seq-test-subreaper: no command\n");
    report("error usage %d\n", EINVAL);
    return HELPER_FAILED;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) report("error subreaper %d\n", errno);
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0) != 0) report("error pdeathsig %d\n", errno);
  while (park) {
    char go;
    ssize_t got = read(REPORT_FD, &go, 1);
    if (got == 1 && go == 'g') break;
    if (got == 1) continue; /* seq-test warming up its write path: not the turn yet */
    if (got < 0 && errno == EINTR) continue;
    return 0; /* EOF (seq-test gone or gave the turn up) or an error: nothing was started */
  }
  pid_t child = fork();
  if (child < 0) {
    report("error fork %d\n", errno);
    return HELPER_FAILED;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &original, NULL);
    /* fd 3 stays open until execv succeeds, so that a failed execv can still be reported. */
    fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC);
    execv(argv[1], argv + 2);
    int failure = errno;
    report("error exec %d\n", failure);
    fprintf(stderr, "seq-test: cannot run %s: %s\n", argv[1], strerror(failure));
    _exit(failure == ENOENT ? 127 : 126);
  }
  report("pid %ld\n", (long)child);
  long peak = 0;
  int orphaned = 0;
  for (;;) {
    int status;
    struct rusage usage;
    pid_t done;
    memset(&usage, 0, sizeof usage);
    while ((done = wait4(-1, &status, WNOHANG, &usage)) > 0) {
      if (usage.ru_maxrss > peak) peak = usage.ru_maxrss;
      if (done == child) {
        if (WIFEXITED(status)) report("exit %d %ld\n", WEXITSTATUS(status), usage.ru_maxrss);
        else if (WIFSIGNALED(status)) report("signal %d %ld\n", WTERMSIG(status), usage.ru_maxrss);
      }
      memset(&usage, 0, sizeof usage);
    }
    if (done < 0 && errno != EINTR) break; /* ECHILD: nothing left to adopt or reap */
    /* Also checked without a signal: the parent may have died before PR_SET_PDEATHSIG took effect. */
    if (!orphaned && getppid() != parent) orphaned = 1;
    if (orphaned) kill_descendants(); /* again on every round: some may have forked meanwhile */
    /* SIGCHLD wakes this at once; the timeout only bounds how long a missed parent death goes unseen,
     * and paces the killing once orphaned. Every other signal is taken and dropped here. */
    struct timespec timeout = {orphaned ? 0 : 1, orphaned ? 20 * 1000 * 1000 : 0};
    sigtimedwait(&all, NULL, &timeout);
  }
  report("peak %ld\n", peak);
  return 0;
}
