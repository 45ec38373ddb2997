/* Leak checker fixture.
 *
 *   malloc_leaky leak    leaks 7 blocks of 3000 bytes from leak_site();
 *                        everything else stays reachable: from a global,
 *                        through a heap-allocated linked list, through an
 *                        interior pointer, from a thread's stack-held global
 *   malloc_leaky clean   the same reachable structures, no leak
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; char payload[100]; };

static struct node *list_head;      /* reachable chain */
static char *interior;              /* points into the middle of a block */
static void *global_block;
static volatile unsigned long sink;

__attribute__((noinline)) void *leak_site(size_t n) {
    void *p = malloc(n);
    memset(p, 0x11, n);
    return p;
}

__attribute__((noinline)) void leak_some(void) {
    for (int i = 0; i < 7; i++) {
        void *p = leak_site(3000);
        sink += (unsigned long)((char *)p)[10];   /* use it, then drop the pointer */
    }
}

__attribute__((noinline)) void keep_reachable(void) {
    for (int i = 0; i < 50; i++) {
        struct node *n = malloc(sizeof *n);
        memset(n, 0, sizeof *n);
        n->next = list_head;
        list_head = n;
    }
    char *b = malloc(5000);
    memset(b, 0, 5000);
    interior = b + 1234;
    global_block = malloc(300000);
    memset(global_block, 0, 300000);
    void *tmp = malloc(777);      /* allocated and freed: not a leak */
    free(tmp);
}

static void *thread_fn(void *arg) {
    (void)arg;
    void *p = malloc(100);
    free(p);
    return NULL;
}

/* overwrite the dead stack frames leak_some() left below main's frame, so no
   stale copy of a leaked pointer survives (a real program's later calls do
   the same) */
__attribute__((noinline)) static void scrub_stack(void) {
    volatile char scrub[65536];
    memset((char *)scrub, 0, sizeof scrub);
}

int main(int argc, char **argv) {
    int leak = argc > 1 && strcmp(argv[1], "leak") == 0;
    keep_reachable();
    pthread_t t;
    pthread_create(&t, NULL, thread_fn, NULL);
    pthread_join(t, NULL);
    if (leak) leak_some();
    scrub_stack();
    printf("done %s\n", leak ? "leak" : "clean");
    return 0;
}
