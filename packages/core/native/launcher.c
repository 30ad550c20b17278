/*
 * seq-test-subreaper --launch: the small process a user's shell waits on for `seq-test run` (Linux).
 *
 * Usage: seq-test-subreaper --launch <node> <script> run [options] -- <command...>
 *        seq-test-subreaper --launch-handshake     prints "seq-test-subreaper launch <protocol> ready"
 *
 * The npm bin (packages/cli/bin/seq-test, a POSIX sh script) execs this for `seq-test run` when the helper
 * answers the launch handshake. This process (the "launcher") then owns the run's ticket for its whole
 * life: the ticket's owner identity (pid + start time) is this process's, and stays alive while the run
 * waits, whichever process does the waiting. It starts Node as its child (the CLI, which joins the queue in
 * the launcher's name, waits, runs the command as always), and:
 *
 * - when Node finds more than `near` live tickets ahead of ours, Node writes one line on the plan pipe
 *   ("await\t<tickets dir>\t<our ticket name>\t<near>\n") and exits 0, keeping the ticket. The launcher then
 *   waits in the kernel, with no periodic wake-up: inotify on the tickets dir (a ticket ahead removed) and a
 *   pidfd on the owner of each live ticket ahead (an owner that dies without removing its ticket). A
 *   watched ticket ahead that is removed is taken off the count; anything else (an owner that died, our own
 *   ticket, the directory) makes it count the live tickets ahead again (names only: pid + start time from
 *   /proc). Once `near` or fewer are left (or our ticket is gone), or up to MAX_EARLY_PLACES places earlier when the queue moves
 *   so fast (from the time between its last two moves) that the turn would come before a Node started now
 *   (twice what our first Node took to hand over, see early_lead_ms) were ready, it starts Node again with
 *   SEQ_TEST_RESUME=<our ticket name>,
 *   and Node takes the ticket up where it stands (never joining anew) and waits or runs as always.
 *   Without pidfd_open (Linux < 5.3) or inotify, it re-counts every 2 s instead.
 * - INT/TERM/HUP/QUIT while it waits alone: it removes our ticket and exits 128 + the signal, as Node
 *   does when interrupted in the queue. SIGKILLed, it leaves a ticket whose owner is dead: the next
 *   participant removes it (the protocol's stale rule).
 * - While Node runs, every signal the launcher can take is forwarded to Node (once: Node runs in its own
 *   process group, so a terminal's Ctrl-C or `timeout`'s group signal reaches the launcher only), except
 *   SIGTSTP/SIGTTIN/SIGTTOU/SIGCONT, which act on the launcher itself. Node gets PR_SET_PDEATHSIG SIGKILL:
 *   a SIGKILLed launcher takes Node with it, and Node's own subreaper helper then ends the command's tree,
 *   exactly as when Node was the process the shell waited on.
 * - When Node ends, the launcher ends the same way: its exit code, or the same signal.
 *
 * Node learns of the launcher from SEQ_TEST_LAUNCHER="<launcher pid> <plan fd>". The launcher's
 * SEQ_TEST_TOKEN (the chain it inherited, if any) reaches Node as SEQ_TEST_LAUNCHER_CHAIN instead, and Node
 * puts it back for what it starts: Node itself then carries no token in its environment, as the owner of
 * a run never did (the owner of a live run is not a leftover of an outer one).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture since Linux 5.3 */
#endif

#define LAUNCH_PROTOCOL 1
#define LAUNCHER_ENV "SEQ_TEST_LAUNCHER"
#define RESUME_ENV "SEQ_TEST_RESUME"
#define CHAIN_ENV "SEQ_TEST_LAUNCHER_CHAIN"
#define TOKEN_ENV "SEQ_TEST_TOKEN"
/* Owners watched through a pidfd at most; beyond that the 2 s re-count covers the rest. */
#define MAX_WATCHED 512
#define FALLBACK_POLL_MS 2000
/* Starting Node early: never more than this many places before `near` (each Node waiter costs ~10 MiB,
 * and many Nodes starting at once would slow the very handoffs they wait for), and with a lead of at least
 * MIN_LEAD_MS, at most MAX_LEAD_MS before the turn is due. */
#define MAX_EARLY_PLACES 2
#define MIN_LEAD_MS 200
#define MAX_LEAD_MS 1000
#define LAUNCH_FAILED 125

static char **node_argv;
static const sigset_t *original_mask;
static pid_t self_pid;

/* The Node child, while one runs. */
static pid_t child;
static int plan_fd = -1;
static char plan[PATH_MAX + 512];
static size_t plan_length;
static int forwarded; /* the first interrupt forwarded to the running Node, 0 if none */

/* Waiting alone. */
static int waiting;
static char tickets_dir[PATH_MAX];
static char own_name[256];
static long near;
static DIR *tickets;
static int inotify_fd = -1;
static int pidfds[MAX_WATCHED];
/* The ticket each pidfd's owner holds: a ticket ahead that goes is then taken off the count without a new
 * look at the queue (on every handoff every launcher wakes; re-reading the queue and /proc for each ticket
 * ahead in each of them cost more than the handoff itself). */
#define TICKET_NAME_MAX 128
static char watched_names[MAX_WATCHED][TICKET_NAME_MAX];
static int pidfd_count;
static int pidfd_usable = 1;
static int watched_all; /* every live owner ahead has a pidfd */
/* How fast the queue moves: the count ahead at the last recount, when it last dropped, time per place. */
static long last_ahead;
static long long last_drop_ms;
static long long place_ms;
/* When the running Node was started, and how long our first Node took from its start to handing over. */
static long long node_started_ms;
static long long startup_ms = -1;

static long long now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int is_interrupt(int sig) { return sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT; }

/* The state letter and start time (field 22) of /proc/<pid>/stat; 0 when it cannot be read. */
static int read_stat(long pid, char *state, unsigned long long *start) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t length = read(fd, text, sizeof text - 1);
  close(fd);
  if (length <= 0) return 0;
  text[length] = '\0';
  char *p = strrchr(text, ')'); /* the command name may hold spaces and parentheses */
  if (!p || p[1] != ' ') return 0;
  p += 2;
  *state = *p;
  for (int field = 3; field < 22; field++) { /* p is at field 3 (state); move to field 22 */
    p = strchr(p, ' ');
    if (!p) return 0;
    p++;
  }
  *start = strtoull(p, NULL, 10);
  return 1;
}

/* Alive as the protocol means it: the pid exists, is no zombie, and has exactly this start time. */
static int owner_alive(long pid, unsigned long long start) {
  char state;
  unsigned long long now;
  return read_stat(pid, &state, &now) && state != 'Z' && state != 'X' && now == start;
}

/* A ticket name, `<12 digits>-<pid>.<start>.<6-64 hex>.json`: fills pid and start, else returns 0. */
static int parse_ticket_name(const char *name, long *pid, unsigned long long *start) {
  const char *p = name;
  for (int i = 0; i < 12; i++, p++)
    if (*p < '0' || *p > '9') return 0;
  if (*p++ != '-') return 0;
  char *end;
  if (*p < '0' || *p > '9') return 0;
  *pid = strtol(p, &end, 10);
  if (*end != '.' || end[1] < '0' || end[1] > '9') return 0;
  *start = strtoull(end + 1, &end, 10);
  if (*end != '.') return 0;
  p = end + 1;
  int hex = 0;
  while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')) p++, hex++;
  return hex >= 6 && hex <= 64 && strcmp(p, ".json") == 0 && *pid > 0;
}

/* Ends the launcher the way its Node ended: the same exit code, or the same signal. */
static void end_like(int status) {
  if (WIFEXITED(status)) exit(WEXITSTATUS(status));
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none); /* Node may have dumped core; the launcher has nothing worth one */
  signal(sig, SIG_DFL);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, sig);
  sigprocmask(SIG_UNBLOCK, &only, NULL);
  raise(sig);
  exit(128 + sig);
}

/* Starts Node (again), resuming our ticket when `resume` is set. Exits if it cannot. */
static void start_node(const char *resume) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    perror("seq-test: launcher: pipe");
    exit(LAUNCH_FAILED);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("seq-test: launcher: fork");
    exit(LAUNCH_FAILED);
  }
  if (pid == 0) {
    /* Its own process group: a group-wide signal (the terminal's, timeout(1)'s) reaches the launcher, which
     * forwards it once; Node would otherwise get it twice, and a second interrupt means "force". */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != self_pid) _exit(LAUNCH_FAILED); /* the launcher died before the line above */
    /* A background group writing to a terminal with `stty tostop` would be stopped; Node's own children
     * get every signal back at its default (libuv resets them). */
    signal(SIGTTOU, SIG_IGN);
    char value[64];
    snprintf(value, sizeof value, "%ld %d", (long)self_pid, pipe_fds[1]);
    fcntl(pipe_fds[1], F_SETFD, 0);
    setenv(LAUNCHER_ENV, value, 1);
    if (resume) setenv(RESUME_ENV, resume, 1);
    else unsetenv(RESUME_ENV);
    const char *chain = getenv(TOKEN_ENV);
    if (chain) {
      setenv(CHAIN_ENV, chain, 1);
      unsetenv(TOKEN_ENV);
    } else {
      unsetenv(CHAIN_ENV);
    }
    sigprocmask(SIG_SETMASK, original_mask, NULL);
    execv(node_argv[0], node_argv);
    fprintf(stderr, "seq-test: cannot run %s: %s\n", node_argv[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  close(pipe_fds[1]);
  fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  node_started_ms = now_ms();
  child = pid;
  plan_fd = pipe_fds[0];
  plan_length = 0;
  forwarded = 0;
}

static void read_plan(void) {
  while (plan_fd >= 0) {
    if (plan_length >= sizeof plan - 1) plan_length = 0; /* garbage: too long to be a plan */
    ssize_t got = read(plan_fd, plan + plan_length, sizeof plan - 1 - plan_length);
    if (got > 0) {
      plan_length += (size_t)got;
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EAGAIN) return;
    close(plan_fd); /* EOF or an error */
    plan_fd = -1;
  }
}

/* Parses "await\t<tickets dir>\t<ticket name>\t<near>\n"; 1 when it is one. */
static int parse_plan(void) {
  plan[plan_length] = '\0';
  if (plan_length == 0 || plan[plan_length - 1] != '\n' || strncmp(plan, "await\t", 6) != 0) return 0;
  plan[plan_length - 1] = '\0';
  char *dir = plan + 6, *name = strchr(dir, '\t');
  if (!name) return 0;
  *name++ = '\0';
  char *count = strchr(name, '\t');
  if (!count) return 0;
  *count++ = '\0';
  long pid;
  unsigned long long start;
  char *end;
  near = strtol(count, &end, 10);
  if (*end != '\0' || near < 1 || dir[0] != '/' || strlen(dir) >= sizeof tickets_dir || strlen(name) >= sizeof own_name)
    return 0;
  if (!parse_ticket_name(name, &pid, &start) || pid != (long)self_pid) return 0;
  strcpy(tickets_dir, dir);
  strcpy(own_name, name);
  return 1;
}

static void close_pidfds(void) {
  for (int i = 0; i < pidfd_count; i++) close(pidfds[i]);
  pidfd_count = 0;
}

static void stop_waiting(void) {
  close_pidfds();
  if (inotify_fd >= 0) close(inotify_fd);
  inotify_fd = -1;
  if (tickets) closedir(tickets);
  tickets = NULL;
  waiting = 0;
}

/* Leaves the queue while waiting alone (nothing of the run exists yet, so only our ticket goes). */
static void leave_with(int code) {
  if (tickets) unlinkat(dirfd(tickets), own_name, 0);
  else if (tickets_dir[0]) {
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", tickets_dir, own_name);
    unlink(path);
  }
  exit(code);
}

/* How long before our turn Node should start: twice what our first Node took to start and hand over (it
 * read the queue as a resumed Node will), within MIN_LEAD_MS..MAX_LEAD_MS. */
static long long early_lead_ms(void) {
  long long lead = startup_ms < 0 ? MAX_LEAD_MS : 2 * startup_ms;
  return lead < MIN_LEAD_MS ? MIN_LEAD_MS : lead > MAX_LEAD_MS ? MAX_LEAD_MS : lead;
}

/*
 * Counts the live tickets ahead of ours and watches their owners. Returns 1 when Node should take over:
 * `near` or fewer ahead, our ticket gone, or the tickets dir unreadable (Node knows what to say).
 */
static int decide(long ahead, int found);

static int recount(void) {
  close_pidfds();
  watched_all = 1;
  rewinddir(tickets);
  long ahead = 0;
  int found = 0;
  struct dirent *entry;
  for (;;) {
    errno = 0;
    if ((entry = readdir(tickets)) == NULL) break;
    long pid;
    unsigned long long start;
    if (!parse_ticket_name(entry->d_name, &pid, &start)) continue;
    int order = strcmp(entry->d_name, own_name);
    if (order == 0) found = 1;
    if (order >= 0) continue;
    if (!pidfd_usable || pidfd_count == MAX_WATCHED) {
      if (owner_alive(pid, start)) ahead++, watched_all = 0;
      continue;
    }
    /* The pidfd first, then the start time: if the pid was reused in between, the check fails; if the
     * owner dies after it, the pidfd reports it. */
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0 && errno == ENOSYS) pidfd_usable = 0;
    if (!owner_alive(pid, start)) {
      if (fd >= 0) close(fd);
      continue;
    }
    ahead++;
    if (fd >= 0 && strlen(entry->d_name) < TICKET_NAME_MAX) {
      fcntl(fd, F_SETFD, FD_CLOEXEC);
      strcpy(watched_names[pidfd_count], entry->d_name);
      pidfds[pidfd_count++] = fd;
    } else {
      if (fd >= 0) close(fd);
      watched_all = 0;
    }
  }
  if (errno != 0) return 1;
  return decide(ahead, found);
}

/* A watched ticket ahead of ours was removed: stop watching its owner. 0 if it was not watched (it was
 * already dead when we counted, so it was not counted either). */
static int forget_ticket(const char *name) {
  for (int i = 0; i < pidfd_count; i++) {
    if (strcmp(watched_names[i], name) != 0) continue;
    close(pidfds[i]);
    pidfd_count--;
    pidfds[i] = pidfds[pidfd_count];
    strcpy(watched_names[i], watched_names[pidfd_count]);
    return 1;
  }
  return 0;
}

/* What a new count of the live tickets ahead means: 1 when Node should take over (see recount()). */
static int decide(long ahead, int found) {
  if (last_ahead >= 0 && ahead < last_ahead) { /* the queue moved: how long per place, from the last two moves */
    long long now = now_ms();
    if (last_drop_ms > 0) place_ms = (now - last_drop_ms) / (last_ahead - ahead);
    last_drop_ms = now;
  }
  last_ahead = ahead;
  /* Runs shorter than a Node start-up: Node must start early enough to be ready at its turn. */
  if (place_ms >= 0 && ahead - near <= MAX_EARLY_PLACES && (ahead - near) * place_ms < early_lead_ms()) return 1;
  return !found || ahead <= near;
}

/* Node handed the wait over: wait alone until our ticket is near the head, then start Node again. */
static void begin_waiting(void) {
  waiting = 1;
  last_ahead = -1;
  last_drop_ms = 0;
  place_ms = -1;
  int fd = open(tickets_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  tickets = fd >= 0 ? fdopendir(fd) : NULL;
  if (!tickets) {
    if (fd >= 0) close(fd);
    stop_waiting();
    start_node(own_name);
    return;
  }
  inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd >= 0 &&
      inotify_add_watch(inotify_fd, tickets_dir,
                        IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW | IN_ONLYDIR) < 0) {
    close(inotify_fd);
    inotify_fd = -1;
  }
  /* After the watch is set: whatever left between Node's count and now is seen here. */
  if (recount()) {
    stop_waiting();
    start_node(own_name);
  }
}

/*
 * Reads the inotify events. Tickets ahead that left are taken off the count when every live ticket ahead is
 * watched; returns -1 when the queue must be counted again (the directory itself, an overflow, our own
 * ticket, a ticket ahead while not all are watched), else what the new count means (see recount()).
 */
static int tickets_changed(void) {
  char buffer[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
  int again = 0, left = 0;
  for (;;) {
    ssize_t got = read(inotify_fd, buffer, sizeof buffer);
    if (got <= 0) break;
    for (char *p = buffer; p < buffer + got;) {
      struct inotify_event *event = (struct inotify_event *)p;
      p += sizeof *event + event->len;
      if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW)) {
        again = 1;
        continue;
      }
      if (event->len == 0 || event->name[0] == '.') continue;
      int order = strcmp(event->name, own_name);
      if (order == 0 || (order < 0 && !watched_all)) again = 1;
      else if (order < 0) left |= forget_ticket(event->name);
    }
  }
  if (again) return -1;
  return left ? decide(pidfd_count, 1) : 0;
}

static void handle_signal(const struct signalfd_siginfo *info) {
  int sig = (int)info->ssi_signo;
  if (sig == SIGCHLD) return; /* reaped below */
  if (child > 0) {
    kill(child, sig);
    if (is_interrupt(sig) && !forwarded) forwarded = sig;
  } else if (waiting && is_interrupt(sig)) {
    leave_with(128 + sig);
  }
  /* Anything else while waiting alone (SIGUSR1, SIGWINCH, ...) does nothing. */
}

static void reap_child(void) {
  int status;
  pid_t done;
  while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
    if (done != child) continue;
    read_plan();
    if (plan_fd >= 0) close(plan_fd);
    plan_fd = -1;
    child = 0;
    int handed_over = parse_plan();
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (handed_over && clean && !forwarded) {
      if (startup_ms < 0) startup_ms = now_ms() - node_started_ms;
      begin_waiting();
      continue;
    }
    if (handed_over) { /* interrupted (or failed) just after handing over: the ticket must not stay */
      if (forwarded) leave_with(128 + forwarded);
      char path[PATH_MAX + 300];
      snprintf(path, sizeof path, "%s/%s", tickets_dir, own_name);
      unlink(path);
    }
    end_like(status);
  }
}

int launch_handshake(void) {
  printf("seq-test-subreaper launch %d ready\n", LAUNCH_PROTOCOL);
  return fflush(stdout) == 0 ? 0 : LAUNCH_FAILED;
}

/* argv: <node> <script> <args...>; every signal is already blocked (main()), `original` is the mask to restore. */
int launch_main(int argc, char **argv, const sigset_t *original) {
  if (argc < 2 || argv[0][0] != '/') {
    fprintf(stderr, "seq-test: launcher: usage: seq-test-subreaper --launch <absolute node path> <script> [args...]\n");
    return LAUNCH_FAILED;
  }
  node_argv = argv;
  original_mask = original;
  self_pid = getpid();
  /* Job control acts on the launcher itself; crashes keep their default. Everything else is taken from a
   * signalfd and forwarded or handled. */
  sigset_t own;
  sigemptyset(&own);
  int defaults[] = {SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) sigaddset(&own, defaults[i]);
  sigprocmask(SIG_UNBLOCK, &own, NULL);
  sigset_t taken;
  sigfillset(&taken);
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) sigdelset(&taken, defaults[i]);
  int signals = signalfd(-1, &taken, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signals < 0) {
    perror("seq-test: launcher: signalfd");
    return LAUNCH_FAILED;
  }
  start_node(NULL);
  struct pollfd fds[3 + MAX_WATCHED];
  for (;;) {
    nfds_t count = 0;
    fds[count++] = (struct pollfd){.fd = signals, .events = POLLIN};
    if (plan_fd >= 0) fds[count++] = (struct pollfd){.fd = plan_fd, .events = POLLIN};
    int timeout = -1;
    nfds_t first_watch = count;
    if (waiting) {
      if (inotify_fd >= 0) fds[count++] = (struct pollfd){.fd = inotify_fd, .events = POLLIN};
      for (int i = 0; i < pidfd_count; i++) fds[count++] = (struct pollfd){.fd = pidfds[i], .events = POLLIN};
      if (inotify_fd < 0 || !watched_all) timeout = FALLBACK_POLL_MS;
    }
    int ready = poll(fds, count, timeout);
    if (ready < 0 && errno != EINTR) {
      perror("seq-test: launcher: poll");
      if (waiting) leave_with(LAUNCH_FAILED);
      return LAUNCH_FAILED;
    }
    if (plan_fd >= 0 && fds[1].revents) read_plan();
    struct signalfd_siginfo info;
    while (read(signals, &info, sizeof info) == (ssize_t)sizeof info) handle_signal(&info);
    reap_child();
    if (!waiting) continue;
    int recheck = ready == 0; /* the fallback poll */
    int take_over = 0;
    for (nfds_t i = first_watch; i < count; i++) {
      if (!fds[i].revents) continue;
      if (fds[i].fd != inotify_fd) {
        recheck = 1; /* an owner ahead ended */
        continue;
      }
      int changed = tickets_changed();
      if (changed < 0) recheck = 1;
      else take_over |= changed;
    }
    if (recheck ? recount() : take_over) {
      stop_waiting();
      start_node(own_name);
    }
  }
}
