/*
 * seq-test-subreaper --watch-owners: tells a waiting seq-test when the owners ahead of it end.
 *
 * A waiter sleeps on inotify for every change a participant makes to the queue, but an owner killed with
 * SIGKILL changes no file: without this, the waiter next in line had to look every 100 ms. Node has no
 * pidfd, so it starts this (once per wait, with an empty environment) and keeps it for the wait:
 *
 *   stdin, from seq-test:  "watch <gen> [<pid> ...]\n"   the owners to watch from now on, replacing the
 *                                                       previous set; <gen> (a number) names this set
 *   stdout, to seq-test:   "gone <gen> <pid>\n"          that owner has ended (or was gone already)
 *                          "watching <gen>\n"            every owner of set <gen> that is alive has a pidfd
 *                          "error <gen> <errno>\n"       set <gen> cannot be watched (no pidfd_open, too
 *                                                       many); seq-test polls as it did before
 *
 * The pid alone is watched: the caller checks the owner's start time itself once it reads "watching", so a
 * pid reused before the pidfd was opened is caught there. EOF on stdin (seq-test ended, however) ends this.
 * Every signal stays blocked (main() in subreaper.c), so a terminal's Ctrl-C to the group does nothing here;
 * seq-test ends it with SIGKILL when the wait is over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture since Linux 5.3 */
#endif

#define MAX_OWNERS 512
#define WATCH_FAILED 125

int write_line(int fd, const char *fmt, va_list args); /* subreaper.c */

static int owner_fds[MAX_OWNERS];
static long owner_pids[MAX_OWNERS];
static int owner_count;
static unsigned long long generation;

/* One whole line on stdout; a reader that is gone (EPIPE: SIGPIPE is blocked) ends this process. */
static void say(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  int failed = write_line(STDOUT_FILENO, fmt, args);
  va_end(args);
  if (failed) exit(0);
}

static void forget_all(void) {
  for (int i = 0; i < owner_count; i++) close(owner_fds[i]);
  owner_count = 0;
}

/* "watch <gen> <pid>...": replaces the watched set. */
static void watch_line(char *line) {
  char *end;
  if (strncmp(line, "watch ", 6) != 0) return; /* a line this version does not know: ignored */
  unsigned long long gen = strtoull(line + 6, &end, 10);
  if (end == line + 6) return;
  forget_all();
  generation = gen;
  for (char *p = end; *p;) {
    while (*p == ' ') p++;
    if (!*p) break;
    long pid = strtol(p, &end, 10);
    if (end == p || pid <= 0) return; /* garbage: nothing watched, no "watching": seq-test keeps polling */
    p = end;
    if (owner_count == MAX_OWNERS) {
      forget_all();
      say("error %llu %d\n", gen, E2BIG);
      return;
    }
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0 && errno == ESRCH) {
      say("gone %llu %ld\n", gen, pid);
      continue;
    }
    if (fd < 0) {
      int failure = errno;
      forget_all();
      say("error %llu %d\n", gen, failure);
      return;
    }
    owner_fds[owner_count] = fd;
    owner_pids[owner_count++] = pid;
  }
  say("watching %llu\n", gen);
}

int watch_main(void) {
  static char input[65536];
  size_t pending = 0;
  struct pollfd fds[1 + MAX_OWNERS];
  for (;;) {
    fds[0] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    for (int i = 0; i < owner_count; i++) fds[1 + i] = (struct pollfd){.fd = owner_fds[i], .events = POLLIN};
    int watched = owner_count;
    if (poll(fds, (nfds_t)(1 + watched), -1) < 0) {
      if (errno == EINTR) continue;
      return WATCH_FAILED;
    }
    /* Ended owners first (from the last, so that removing one keeps the others' places). */
    for (int i = watched - 1; i >= 0; i--) {
      if (!fds[1 + i].revents) continue;
      say("gone %llu %ld\n", generation, owner_pids[i]);
      close(owner_fds[i]);
      owner_fds[i] = owner_fds[owner_count - 1];
      owner_pids[i] = owner_pids[owner_count - 1];
      owner_count--;
    }
    if (!fds[0].revents) continue;
    ssize_t got = read(STDIN_FILENO, input + pending, sizeof input - 1 - pending);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) return 0; /* seq-test is gone, or done waiting */
    pending += (size_t)got;
    input[pending] = '\0';
    char *start = input, *newline;
    while ((newline = strchr(start, '\n')) != NULL) {
      *newline = '\0';
      watch_line(start);
      start = newline + 1;
    }
    pending = strlen(start);
    if (pending == sizeof input - 1) pending = 0; /* a line too long to be ours: dropped */
    memmove(input, start, pending);
  }
}
