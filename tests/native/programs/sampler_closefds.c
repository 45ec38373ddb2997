/* A program that closes every inherited descriptor above 2 (as daemons
 * and test harnesses do), then opens its data file, which must be fd 3.
 * It writes numbered lines while burning CPU, forks a child that appends
 * through the same fd 3, and finally checks that the file holds exactly
 * what the two wrote.  argv[1]: data file, argv[2]: CPU seconds.
 * Prints "ok <lines> cpu=<seconds>". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void closefds_work(void) {
  for (long i = 0; i < 200000; i++) sink += i;
}

static char expected[1 << 20];
static size_t expected_len;

static int put(int fd, const char *line) {
  size_t n = strlen(line);
  if (write(fd, line, n) != (ssize_t)n) return 0;
  memcpy(expected + expected_len, line, n);
  expected_len += n;
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  for (int fd = 3; fd < 8192; fd++) close(fd);
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd != 3) {
    fprintf(stderr, "data file got fd %d, not 3\n", fd);
    return 2;
  }
  double want = atof(argv[2]), start = cpu_seconds();
  char line[64];
  int lines = 0;
  while (cpu_seconds() - start < want && expected_len < sizeof expected - 64) {
    closefds_work();
    snprintf(line, sizeof line, "record %d\n", lines++);
    if (!put(fd, line)) return 3;
    if (lines == 20) {
      pid_t pid = fork();
      if (pid == 0) {
        /* the fork handler must have left our fd 3 alone */
        _exit(write(3, "child\n", 6) == 6 ? 0 : 4);
      }
      int status;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child could not write to fd 3\n");
        return 4;
      }
      memcpy(expected + expected_len, "child\n", 6);
      expected_len += 6;
    }
  }
  static char got[sizeof expected + 4096];
  ssize_t n = pread(fd, got, sizeof got, 0);
  if (n != (ssize_t)expected_len || memcmp(got, expected, expected_len) != 0) {
    fprintf(stderr, "data file changed: %zd bytes, expected %zu\n", n, expected_len);
    return 5;
  }
  printf("ok %d cpu=%.3f\n", lines, cpu_seconds());
  return 0;
}
