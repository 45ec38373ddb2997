#!/usr/bin/env bash
# Checks pprof_py's allocator with tools that cannot simply wrap a malloc
# replacement:
#
# 1. UndefinedBehaviorSanitizer: the allocator sources and the torture
#    program (tests/native/programs/malloc_stress.c) are compiled into ONE
#    executable with -fsanitize=undefined; the executable's malloc/free
#    override glibc's at link time, so every allocation of the program (and
#    of the UBSan runtime) goes through our code while UBSan checks it.
#    AddressSanitizer and ThreadSanitizer are not used: both replace malloc
#    themselves and conflict with an allocator that does.
# 2. Valgrind memcheck on the real shared library: the library is preloaded
#    and valgrind is told not to intercept malloc outside libc
#    (--soname-synonyms=somalloc=nouserintercepts), so our allocator runs
#    under memcheck, which then checks the allocator's own memory accesses
#    (uninitialised values, accesses outside its mmap'ed regions) in the
#    torture modes, the heap profiler and the leak checker.
#
# Exit status: 0 when every run is clean.  Run from anywhere; needs gcc and
# valgrind, and the package built (pip install -e .).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SRC="$ROOT/pprof_py/native/src/malloc"
INC="$ROOT/pprof_py/native/include"
PROG="$HERE/programs"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sanitize_malloc.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

fail=0
step() { printf '\n== %s\n' "$*"; }
check() {
    local name="$1"; shift
    if "$@" >"$WORK/out.txt" 2>&1; then
        echo "ok    $name"
    else
        echo "FAIL  $name (exit $?)"
        tail -n 30 "$WORK/out.txt"
        fail=1
    fi
}

# The allocator's sources compiled once with UBSan into $WORK/alloc/*.o.
# The .cc files are the gperftools C++ layer; as in setup.py they are
# compiled as C++ without exceptions, except the one *_eh.cc file that
# catches them, and linked without libstdc++; -fno-sanitize=vptr because
# that check needs the C++ runtime.
UBSAN_FLAGS=(-O1 -g -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
             -fno-builtin -fno-optimize-sibling-calls -pthread -ftls-model=initial-exec
             -Wno-alloc-size-larger-than -Wno-free-nonheap-object -fno-sanitize=vptr
             -I"$INC" -I"$SRC" -I"$SRC/../common")
mkdir -p "$WORK/alloc"
for src in "$SRC"/*.c "$SRC"/../common/*.c "$SRC"/*.cc; do
    obj="$WORK/alloc/$(basename "$src").o"
    case "$src" in
        *_eh.cc) gcc "${UBSAN_FLAGS[@]}" -std=c++17 -fexceptions -c "$src" -o "$obj" ;;
        *.cc) gcc "${UBSAN_FLAGS[@]}" -std=c++17 -fno-exceptions -fno-threadsafe-statics -c "$src" -o "$obj" ;;
        *) gcc "${UBSAN_FLAGS[@]}" -c "$src" -o "$obj" ;;
    esac
done
# link_ubsan PROGRAM.c OUTPUT: the program and the allocator in one executable
link_ubsan() {
    gcc "${UBSAN_FLAGS[@]}" -rdynamic "$1" "$WORK"/alloc/*.o -o "$2" -ldl -lm
}

step "UBSan: allocator + torture program in one static-linked executable"
link_ubsan "$PROG/malloc_stress.c" "$WORK/stress_ubsan"
for mode in "stress 4 4000" "stress 1 20000" fork threadexit edge xthread stats; do
    # shellcheck disable=SC2086
    check "ubsan $mode" timeout 300 env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$WORK/stress_ubsan" $mode
done
# the realloc, limits and release programs, each linked with the allocator
for prog in malloc_realloc malloc_limits malloc_release malloc_lines lastexit malloc_busy_threads; do
    link_ubsan "$PROG/$prog.c" "$WORK/${prog}_ubsan"
done
for run in "malloc_realloc grow 4096 16777216" "malloc_realloc grow 100 4194304" "malloc_realloc inplace" \
           "malloc_limits huge" "malloc_limits mallinfo" "malloc_release reuse" "malloc_release idle" \
           malloc_lines "lastexit 0.1" malloc_busy_threads; do
    set -- $run
    prog="$1"; shift
    check "ubsan $run" timeout 300 env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        PPROFPY_MALLOC_DECAY_MS=100 "$WORK/${prog}_ubsan" "$@"
done
check "ubsan bad free aborts" bash -c \
    "! timeout 60 '$WORK/stress_ubsan' badfree 2>&1 | grep -q 'runtime error' && \
     timeout 60 '$WORK/stress_ubsan' badfree 2>&1 | grep -q 'pprof_py malloc: free(): invalid pointer'"

step "valgrind memcheck: the preloaded library itself"
if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed (apt-get install valgrind)"
    exit 1
fi
LIB="$(cd "$ROOT" && python3 -c 'from pprof_py.native import libpath; print(libpath("malloc"))')"
gcc -O1 -g -fno-builtin -fno-omit-frame-pointer -pthread -Wno-alloc-size-larger-than \
    -Wno-free-nonheap-object "$PROG/malloc_stress.c" -o "$WORK/stress" -ldl
gcc -O0 -g -fno-builtin -fno-omit-frame-pointer "$PROG/malloc_heapsites.c" -o "$WORK/heapsites" -ldl
gcc -O0 -g -fno-builtin -fno-omit-frame-pointer -pthread "$PROG/malloc_leaky.c" -o "$WORK/leaky"
VG=(valgrind -q --error-exitcode=99 --soname-synonyms=somalloc=nouserintercepts)
for mode in "stress 2 3000" edge threadexit stats; do
    # shellcheck disable=SC2086
    check "memcheck $mode" timeout 600 env LD_PRELOAD="$LIB" "${VG[@]}" "$WORK/stress" $mode
done
for prog in malloc_realloc malloc_limits malloc_release malloc_lines lastexit malloc_busy_threads; do
    gcc -O1 -g -fno-builtin -fno-omit-frame-pointer -pthread "$PROG/$prog.c" -o "$WORK/$prog"
done
for run in "malloc_realloc grow 4096 8388608" "malloc_realloc inplace" "malloc_limits huge" \
           "malloc_limits mallinfo" "malloc_release reuse" malloc_lines "lastexit 0.1" malloc_busy_threads; do
    # shellcheck disable=SC2086
    check "memcheck $run" timeout 600 env LD_PRELOAD="$LIB" PPROFPY_MALLOC_DECAY_MS=100 "${VG[@]}" "$WORK"/$run
done
check "memcheck heap profiler" timeout 600 env LD_PRELOAD="$LIB" HEAPPROFILE="$WORK/hp" \
    "${VG[@]}" "$WORK/heapsites" 300
check "memcheck sampled heap profiler" timeout 600 env LD_PRELOAD="$LIB" HEAPPROFILE="$WORK/hs" \
    PPROF_PY_HEAP_SAMPLE_PARAMETER=4096 "${VG[@]}" "$WORK/heapsites" 300
check "memcheck leak checker (clean)" timeout 600 env LD_PRELOAD="$LIB" HEAPCHECK=normal \
    "${VG[@]}" "$WORK/leaky" clean
# leaky runs end in exit status 1 (leaks found), not valgrind's 99: the
# report path (live-stack boundary, symbolizer child, dump file) under memcheck
gcc -O0 -g -fno-builtin -pthread "$PROG/heapcheck_deadframe.c" -o "$WORK/deadframe"
leaks_found() { "$@"; [ $? -eq 1 ]; }
check "memcheck leak checker (leaky, symbolized)" leaks_found timeout 600 env LD_PRELOAD="$LIB" \
    HEAPCHECK=normal HEAP_CHECK_DUMP_DIRECTORY="$WORK" "${VG[@]}" "$WORK/leaky" leak
check "memcheck leak checker (dead frames, other thread)" leaks_found timeout 600 env LD_PRELOAD="$LIB" \
    HEAPCHECK=normal HEAP_CHECK_DUMP_DIRECTORY="$WORK" PPROF_PATH= "${VG[@]}" "$WORK/deadframe" thread 40x400
check "memcheck leak checker (exit, register)" leaks_found timeout 600 env LD_PRELOAD="$LIB" \
    HEAPCHECK=normal HEAP_CHECK_DUMP_DIRECTORY="$WORK" PPROF_PATH= "${VG[@]}" "$WORK/deadframe" exitreg 5x4096

if [ "$fail" -ne 0 ]; then
    echo; echo "sanitize_malloc: FAILED"; exit 1
fi
echo; echo "sanitize_malloc: all clean"
