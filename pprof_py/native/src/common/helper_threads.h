/*
 * Our helper threads and the end of the program (helper_threads.c).
 *
 * Both libraries run a thread of their own: the allocator's release thread
 * ("pprof_py-release") and the sampler's writer ("pprof_py-writer").  A
 * process ends when its last thread does (glibc calls exit(0) as the last
 * thread returns), so a program whose main thread calls pthread_exit() --
 * as a forked child of a Python thread does -- would be kept alive by ours
 * forever once its own threads are gone, and, every signal being blocked
 * in our threads, even SIGTERM would stay pending.  Each helper therefore
 * asks pp_program_threads_gone() now and then and, when it says yes, ends
 * itself; the last one to end runs glibc's exit(0), as the program's last
 * thread would have.
 */
#ifndef PPROFPY_HELPER_THREADS_H
#define PPROFPY_HELPER_THREADS_H

/* The name every helper thread gives itself starts with this. */
#define PP_HELPER_PREFIX "pprof_py-"

/* 1 when every thread of the process that has not exited is one of our
 * helpers (a name starting with PP_HELPER_PREFIX); 0 when a program thread
 * is still running or /proc cannot say.  No allocation, no lock: while
 * the main thread runs, one pread of its /proc stat line through a
 * descriptor kept open at a high number (so nothing is opened while the
 * program may be opening files itself); after it has ended, a look at
 * /proc/self/task and each task's stat line. */
__attribute__((visibility("hidden"))) int pp_program_threads_gone(void);

/* The path of the process's memory map as the calling thread can read
 * it.  /proc/self/maps is empty once the main thread has ended (its task,
 * which /proc/self names, has no memory any more), so a profile written
 * after main() called pthread_exit had no map; /proc/thread-self/maps
 * (Linux 3.17) lists the same mappings.  Falls back to /proc/self/maps. */
__attribute__((visibility("hidden"))) const char *pp_maps_path(void);

#endif
