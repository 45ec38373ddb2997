/* Linked against the sampler with its header: profiles only a region with
 * ProfilerStart/ProfilerStop, checks the state API, flushes mid-run, and
 * runs a second profile whose filter rejects every sample.
 * Usage: sampler_region OUT.prof FILTERED.prof */
#include <profiler.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

volatile long sink;

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define BURN(name)                                            \
  __attribute__((noinline)) void name(double s) {             \
    double start = cpu_seconds();                             \
    while (cpu_seconds() - start < s)                         \
      for (long i = 0; i < 100000; i++) sink += i;            \
  }

BURN(outside_before)
BURN(region_work)
BURN(outside_after)
BURN(filtered_work)

static int reject_all(void *arg) {
  (void)arg;
  return 0;
}

#define CHECK(cond)                                              \
  do {                                                           \
    if (!(cond)) {                                               \
      fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
      return 1;                                                  \
    }                                                            \
  } while (0)

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  struct ProfilerState st;
  ProfilerGetCurrentState(&st);
  CHECK(!st.enabled && !ProfilingIsEnabledForAllThreads());
  outside_before(0.3);
  CHECK(ProfilerStart(argv[1]));
  CHECK(!ProfilerStart(argv[1])); /* already running */
  ProfilerRegisterThread();
  ProfilerEnable();
  region_work(0.25);
  ProfilerFlush();
  region_work(0.25);
  ProfilerGetCurrentState(&st);
  CHECK(st.enabled && ProfilingIsEnabledForAllThreads());
  CHECK(strcmp(st.profile_name, argv[1]) == 0);
  CHECK(st.samples_gathered > 10);
  CHECK(st.start_time > 0);
  void *pcs[32];
  int depth = ProfilerGetStackTrace(pcs, 32, 0, NULL);
  CHECK(depth >= 1);
  ProfilerStop();
  ProfilerGetCurrentState(&st);
  CHECK(!st.enabled && st.profile_name[0] == 0);
  outside_after(0.3);

  struct ProfilerOptions opts;
  memset(&opts, 0, sizeof opts);
  opts.filter_in_thread = reject_all;
  CHECK(ProfilerStartWithOptions(argv[2], &opts));
  filtered_work(0.3);
  ProfilerGetCurrentState(&st);
  CHECK(st.samples_gathered == 0);
  ProfilerStop();
  printf("ok\n");
  return 0;
}
