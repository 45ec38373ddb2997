/* pprof_py: jemalloc's nallocx as gperftools provides it. */
#ifndef PPROFPY_GPERFTOOLS_NALLOCX_H_
#define PPROFPY_GPERFTOOLS_NALLOCX_H_

#include <stddef.h>

#ifndef PERFTOOLS_DLL_DECL
#define PERFTOOLS_DLL_DECL
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* log2 of the alignment, in the low 6 bits of flags */
#define MALLOCX_LG_ALIGN(la) ((int)(la))

/* The usable size malloc (or an aligned allocation, with flags) would give
 * a request of size bytes; allocates nothing. */
PERFTOOLS_DLL_DECL size_t nallocx(size_t size, int flags);
PERFTOOLS_DLL_DECL size_t tc_nallocx(size_t size, int flags);

#ifdef __cplusplus
}
#endif

#endif
