/*
 * seq-test-subreaper: the ancestor that escapees cannot leave.
 *
 * Usage: seq-test-subreaper [--park] <path> <argv0> [args...]   (started by @seq-test/core with fd 3 a
 *        socket pair; <path> is already resolved and absolute, so no PATH search happens here)
 *
 * --park: start, then wait for the byte "g" on fd 3 before starting the command (other bytes are ignored;
 * EOF: exit quietly). A queued `seq-test run` starts its helper while it waits for the lock, so that its
 * turn costs one write instead of a process spawn.
 *
 * It marks itself a child subreaper (Linux PR_SET_CHILD_SUBREAPER), so every descendant that is orphaned
 * (double fork, setsid, daemonize, even with an emptied environment) is re-parented to it instead of init,
 * and stays visible as part of the run. It forks the command, reports on fd 3:
 *   "pid <pid>\n"                  once the command is started
 *   "exit <code> <maxrss>\n" / "signal <n> <maxrss>\n" when the command itself ends
 *   "peak <maxrss>\n"              just before it exits
 * and in between keeps reaping adopted orphans until none is left, so they never linger as zombies.
 * <maxrss> is in KiB: the command's own peak (its reaped descendants included), then the largest peak of
 * any process reaped here. seq-test samples the tree's memory, but a short command can end between two
 * samples; this is the floor under its reported peak.
 * It ignores SIGINT/SIGTERM/SIGHUP/SIGQUIT: seq-test signals the tree by pid, and this process must
 * outlive the tree to keep adopting. seq-test ends it with SIGKILL if it must.
 *
 * If seq-test itself dies first (SIGKILL, OOM killer, a crash), nobody is left to end the run, so the
 * helper does it: it asks for a signal when its parent dies (PR_SET_PDEATHSIG), and then SIGKILLs every
 * descendant it can find in /proc (with the subreaper bit, that is the whole tree, escapees included),
 * reaps them and exits. A stray SIGUSR1 does nothing: only a changed parent pid counts.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REPORT_FD 3
#define PARENT_DEATH_SIGNAL SIGUSR1

static volatile sig_atomic_t parent_signal = 0;
static void on_parent_death(int signo) {
  (void)signo;
  parent_signal = 1;
}

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

static void report(const char *fmt, long value, long value2) {
  char line[96];
  int n = snprintf(line, sizeof line, fmt, value, value2);
  if (n > 0) {
    ssize_t ignored = write(REPORT_FD, line, (size_t)n);
    (void)ignored;
  }
}

int main(int argc, char **argv) {
  int park = argc > 1 && strcmp(argv[1], "--park") == 0;
  if (park) {
    argv++;
    argc--;
  }
  if (argc < 3) {
    fprintf(stderr, "seq-test-subreaper: no command\n");
    return 125;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    perror("seq-test-subreaper: prctl(PR_SET_CHILD_SUBREAPER)");
  }
  /* No SA_RESTART: the signal must interrupt wait4() below. */
  pid_t parent = getppid();
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_parent_death;
  sigemptyset(&action.sa_mask);
  sigaction(PARENT_DEATH_SIGNAL, &action, NULL);
  if (prctl(PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0) != 0) {
    perror("seq-test-subreaper: prctl(PR_SET_PDEATHSIG)");
  }
  /* A signal landing between the parent check and wait4() would be missed until the next child exits;
   * a 1 s tick (not inherited by the command: timers are per process) bounds that. */
  sigaction(SIGALRM, &action, NULL);
  struct itimerval tick = {{1, 0}, {1, 0}};
  setitimer(ITIMER_REAL, &tick, NULL);
  while (park) {
    char go;
    ssize_t got = read(REPORT_FD, &go, 1);
    if (got == 1 && go == 'g') break;
    if (got == 1) continue; /* seq-test warming up its write path: not the turn yet */
    if (got < 0 && errno == EINTR && getppid() == parent) continue;
    return 0; /* EOF, an error or seq-test gone: the turn was given up, nothing was started */
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
  report("pid %ld\n", (long)child, 0);
  long peak = 0;
  int orphaned = 0;
  for (;;) {
    /* Also checked without a signal: the parent may have died before PR_SET_PDEATHSIG took effect. */
    if (!orphaned && getppid() != parent) orphaned = 1;
    int status;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    pid_t done = wait4(-1, &status, orphaned ? WNOHANG : 0, &usage);
    if (done == 0) { /* orphaned and children left: kill what is there (again: some may have forked) */
      kill_descendants();
      struct timespec pace = {0, 20 * 1000 * 1000};
      nanosleep(&pace, NULL);
      continue;
    }
    if (done < 0) {
      if (errno == EINTR) continue;
      break; /* ECHILD: nothing left to adopt or reap */
    }
    if (usage.ru_maxrss > peak) peak = usage.ru_maxrss;
    if (done == child) {
      if (WIFEXITED(status)) report("exit %ld %ld\n", (long)WEXITSTATUS(status), usage.ru_maxrss);
      else if (WIFSIGNALED(status)) report("signal %ld %ld\n", (long)WTERMSIG(status), usage.ru_maxrss);
    }
  }
  report("peak %ld\n", peak, 0);
  return 0;
}
