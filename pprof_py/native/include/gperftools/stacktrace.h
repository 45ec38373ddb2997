/* pprof_py: gperftools-compatible stack traces of the calling thread.
 *
 * result[i] are return addresses, innermost first: result[0] is in the
 * function that called GetStackTrace (skip_count = 0).  Unwinding uses the
 * DWARF call-frame tables of the loaded objects (so code without frame
 * pointers unwinds), falling back to frame pointers.  The WithContext forms
 * start from a signal handler's ucontext_t (its third argument) instead;
 * uc == NULL means the calling thread's own stack.  sizes[i] is the stack
 * frame size of frame i in bytes (0 when not known).  Return the number of
 * entries stored.  C++ linkage, like gperftools'. */
#ifndef PPROFPY_GPERFTOOLS_STACKTRACE_H_
#define PPROFPY_GPERFTOOLS_STACKTRACE_H_

#ifndef PERFTOOLS_DLL_DECL
#define PERFTOOLS_DLL_DECL
#endif

extern PERFTOOLS_DLL_DECL int GetStackFrames(void **result, int *sizes, int max_depth, int skip_count);
extern PERFTOOLS_DLL_DECL int GetStackFramesWithContext(void **result, int *sizes, int max_depth, int skip_count,
                                                        const void *uc);
extern PERFTOOLS_DLL_DECL int GetStackTrace(void **result, int max_depth, int skip_count);
extern PERFTOOLS_DLL_DECL int GetStackTraceWithContext(void **result, int max_depth, int skip_count,
                                                       const void *uc);

#endif
