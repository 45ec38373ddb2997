/* Heap profiler fixture: two allocation sites with a known 10:1 byte ratio.
 *
 *   big_site   allocates 10 * N blocks of 1000 bytes  (10 MB when N = 1000)
 *   small_site allocates      N blocks of 1000 bytes  ( 1 MB)
 * Half of each site's blocks are freed again, so in-use shares match too.
 * Optional argv[1] = N (default 2000).  With argv[2] = "api" the program
 * drives the heap-profiler.h API itself (Start/Dump/GetHeapProfile/Stop).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *keep[1 << 16];
static int nkeep;

__attribute__((noinline)) void *big_site(size_t n) { return malloc(n); }
__attribute__((noinline)) void *small_site(size_t n) { return malloc(n); }

__attribute__((noinline)) static void work(int n) {
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 10; k++) {
            void *p = big_site(1000);
            memset(p, 1, 1000);
            if (k % 2) free(p); else keep[nkeep++ % (1 << 16)] = p;
        }
        void *q = small_site(1000);
        memset(q, 2, 1000);
        if (i % 2) free(q); else keep[nkeep++ % (1 << 16)] = q;
    }
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    if (argc > 2 && strcmp(argv[2], "api") == 0) {
        void (*start)(const char *) = (void (*)(const char *))dlsym(RTLD_DEFAULT, "HeapProfilerStart");
        void (*stop)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "HeapProfilerStop");
        void (*dump)(const char *) = (void (*)(const char *))dlsym(RTLD_DEFAULT, "HeapProfilerDump");
        int (*running)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "IsHeapProfilerRunning");
        char *(*get)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "GetHeapProfile");
        if (!start || !stop || !dump || !running || !get) { fprintf(stderr, "API missing\n"); return 2; }
        if (running()) { fprintf(stderr, "running before start\n"); return 2; }
        start(argc > 3 ? argv[3] : "/tmp/heapsites-api");
        if (!running()) { fprintf(stderr, "not running after start\n"); return 2; }
        work(n);
        dump("from the test");
        char *text = get();
        if (!text || strncmp(text, "heap profile:", 13) != 0) { fprintf(stderr, "bad GetHeapProfile\n"); return 2; }
        fputs(text, stdout);
        free(text);
        stop();
        if (running()) { fprintf(stderr, "running after stop\n"); return 2; }
        return 0;
    }
    work(n);
    printf("done %d\n", nkeep);
    return 0;
}
