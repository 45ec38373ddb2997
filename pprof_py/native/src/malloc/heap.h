/* Declarations shared by the heap profiler's files (not the allocator's):
 *
 *   heapprof.c   allocation map and stack buckets, profile dumps, the
 *                heap-profiler.h API, HEAPPROFILE / HEAPCHECK start-up
 *   heapcheck.c  the leak checker (HEAPCHECK): roots, flood, report
 *   stackwalk.c  allocation stacks (DWARF CFI, frame pointers) and the live
 *                stack boundary the leak checker scans from
 *   heapfmt.c    text buffers on mmap, sorting, profile lines, files
 *   env.c        environment variables without malloc
 *
 * Entry points the allocator (and the C++ HeapLeakChecker) call are in
 * internal.h.  Nothing here calls libc malloc.
 */
#ifndef PPROFPY_MALLOC_HEAP_H
#define PPROFPY_MALLOC_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

/* ---- allocation map and stack buckets (heapprof.c) ---- */
typedef struct bucket {
    struct bucket *next;
    uint64_t hash;
    size_t alloc_objs, alloc_bytes, free_objs, free_bytes;
    int depth;
    uint8_t startup_known, startup;   /* leak checker's cache: allocated during start-up */
    void *pcs[MAX_STACK_DEPTH];
} bucket_t;

typedef struct node {
    struct node *next;
    uintptr_t ptr;
    size_t size;
    bucket_t *bucket;
} node_t;

#define MAP_HEADS (1 << 20)
extern PP_HIDDEN node_t **pp_map_heads;      /* NULL until the first record */
PP_HIDDEN void pp_map_lock_all(void);        /* every stripe: the map stops changing */
PP_HIDDEN void pp_map_unlock_all(void);

extern PP_HIDDEN char pp_prof_prefix[1024];  /* HEAPPROFILE prefix, "" when none */

/* ---- environment (env.c) ---- */
PP_HIDDEN size_t pp_env_size(const char *name, size_t dflt);
PP_HIDDEN long pp_env_long(const char *name, long dflt);
PP_HIDDEN int pp_env_bool(const char *name, int dflt);
PP_HIDDEN int pp_env_unique_path(const char *name, char *out, size_t n);
PP_HIDDEN int pp_env_mark_inherited(const char *name);

/* ---- stacks (stackwalk.c) ---- */
/* Allocation stack from the entry point's frame (see stackwalk.c). */
PP_HIDDEN int pp_walk_stack(void *frame, uintptr_t lo, uintptr_t hi, void **pcs, int max);

/* The calling thread's live stack as the program sees it, for the leak
 * checker: the stack pointer of the first frame that is the program's
 * (past our own frames and, with through_exit, past libc's exit() and the
 * exit handlers that called us), and the callee-saved registers as that
 * frame holds them (recovered from where the frames below saved them).
 * Returns the number of registers stored in regs (at most PP_LIVE_REGS);
 * 0 when the stack could not be unwound, and then *sp is our own stack
 * pointer (a conservative boundary: nothing live is missed). */
#define PP_LIVE_REGS 6
PP_HIDDEN int pp_live_boundary(int through_exit, uintptr_t *sp, uintptr_t regs[PP_LIVE_REGS]);

/* ---- text buffers, sorting, files (heapfmt.c) ---- */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

PP_HIDDEN void sb_add(sbuf_t *b, const char *s, size_t n);
PP_HIDDEN void sb_str(sbuf_t *b, const char *s);
PP_HIDDEN void sb_num(sbuf_t *b, size_t v, int width);
PP_HIDDEN void sb_hex(sbuf_t *b, uintptr_t v);          /* 0x... */
PP_HIDDEN void sb_free(sbuf_t *b);
PP_HIDDEN void sb_file(sbuf_t *b, const char *path);
PP_HIDDEN void sb_counts(sbuf_t *b, size_t io, size_t ib, size_t ao, size_t ab);
PP_HIDDEN void sb_pcs(sbuf_t *b, void *const *pcs, int depth);
PP_HIDDEN void sb_shell_quoted(sbuf_t *b, const char *s);

typedef struct {
    uint64_t key;
    void *val;
    size_t extra, extra2;
} item_t;
PP_HIDDEN void sort_items(item_t *a, size_t n);         /* by key, ascending */
PP_HIDDEN void *big_alloc(size_t bytes);                /* private mmap; NULL on failure */

/* Writes a whole file; returns 0, or an errno value. */
PP_HIDDEN int pp_write_file(const char *path, const char *data, size_t len);
/* Creates a new file that nobody else can have prepared: O_EXCL|O_NOFOLLOW,
   mode 0600.  The 6 characters at path + x_at are replaced by a unique
   part (as mkstemp does; mkstemp itself may allocate).  Returns 0 or an
   errno value. */
PP_HIDDEN int pp_write_new_file(char *path, size_t x_at, const char *data, size_t len);
PP_HIDDEN const char *pp_errno_text(int err);   /* strerror that never allocates */

#endif
