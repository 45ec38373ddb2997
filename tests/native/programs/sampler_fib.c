/* Recursive functions for the unwinder: built with -O2 and no frame
 * pointers, most samples land in prologues and epilogues (push/pop/ret),
 * where the CFA rule changes from one instruction to the next, and in
 * PLT stubs.  Runs for the CPU seconds given as argv[1]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile int sink;

__attribute__((noinline)) long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* Early returns: epilogues in the middle of the function, which GCC
 * brackets with remember_state/restore_state. */
__attribute__((noinline)) long walk(int n, long acc) {
  char buf[64];
  if (n <= 0) return acc;
  memset(buf, n, sizeof buf);
  sink = buf[n & 63];
  if (n & 1) return walk(n - 1, acc + buf[3]) + 1;
  long r = walk(n - 2, acc ^ buf[5]);
  long q = walk(n - 1, r);
  if (q & 1) return q * 3;
  return q + r;
}

/* Calls into libc through the PLT: samples in the stub, whose CFA rule
 * is a DWARF expression, must still unwind. */
__attribute__((noinline)) long parse(int n) {
  static const char *words[] = {"12", "7f", "-3", "42"};
  long s = 0;
  for (int i = 0; i < n; i++) s += strtol(words[i & 3], NULL, 16);
  return s;
}

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  double want = argc > 1 ? atof(argv[1]) : 1.0;
  double start = cpu_seconds();
  long s = 0;
  while (cpu_seconds() - start < want) s += fib(26) + walk(32, 0) + parse(20000);
  printf("%ld\n", s & 1);
  return 0;
}
