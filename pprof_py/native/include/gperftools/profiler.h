/* pprof_py: <gperftools/profiler.h> is pprof_py's sampler interface. */
#include "../profiler.h"
