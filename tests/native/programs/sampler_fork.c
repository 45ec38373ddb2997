/* A profiled process forks; the child works in child_work and exits with
 * exit() (running destructors), the parent works in parent_work before and
 * after.  The parent's profile must stay valid and hold only parent work. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void parent_work(double s) {
  double start = cpu_seconds();
  while (cpu_seconds() - start < s)
    for (long i = 0; i < 100000; i++) sink += i;
}

__attribute__((noinline)) void child_work(double s) {
  double start = cpu_seconds();
  while (cpu_seconds() - start < s)
    for (long i = 0; i < 100000; i++) sink += i;
}

int main(void) {
  parent_work(0.25);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    child_work(0.4);
    exit(0);
  }
  parent_work(0.25);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "child failed: %d\n", status);
    return 1;
  }
  printf("done\n");
  return 0;
}
