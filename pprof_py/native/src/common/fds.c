/*
 * Our libraries' file descriptors, kept out of the program's way (the
 * sampler's profile file and perf events, the helper threads' /proc file:
 * helper_threads.c).
 *
 * A profiled program owns its descriptor numbers: daemons and test
 * harnesses close every inherited descriptor above 2 and then expect
 * open() to return 3, 4, ...  A descriptor of ours at 3 would be closed by
 * the program and the number reused for its own file, and every later write
 * of ours would go into the program's data.  So:
 *
 *   - each descriptor we keep is moved (F_DUPFD_CLOEXEC) to a number in the
 *     upper half of the program's limit, at most 4096 (well above
 *     FD_SETSIZE, so a program using select() keeps the low numbers), and
 *     is close-on-exec;
 *   - we remember what it refers to (device and inode of the profile file)
 *     and check with fstat before writing that it still does;
 *   - we close only descriptors that still are ours.
 *
 * perf event descriptors all share one anonymous inode, so they are
 * identified by their event id (PERF_EVENT_IOC_ID) instead (threads.c).
 */
#include "fds.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The soft RLIMIT_NOFILE, as the program sees it now. */
long pp_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 1L << 20;
  return (long)rl.rlim_cur;
}

/* Lowest number our descriptors are moved to. */
long pp_fd_floor(void) {
  long lim = pp_fd_limit();
  long floor = lim / 2;
  if (floor > 4096) floor = 4096;
  return floor;
}

int pp_fd_park(int fd) {
  if (fd < 0) return fd;
  long floor = pp_fd_floor();
  if (fd >= floor) return fd;
  int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)floor);
  if (high < 0) return fd; /* no free number up there: keep it where it is */
  close(fd);
  return high;
}

int pp_fd_identify(int fd, struct pp_fd_id *id) {
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 0;
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  return 1;
}

int pp_fd_is(int fd, const struct pp_fd_id *id) {
  struct pp_fd_id now;
  return pp_fd_identify(fd, &now) && now.dev == id->dev && now.ino == id->ino;
}
