/* pprof_py: <gperftools/heap-profiler.h> is pprof_py's heap profiler interface. */
#include "../heap-profiler.h"
