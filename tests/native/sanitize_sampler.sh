#!/usr/bin/env bash
# The CPU sampler under AddressSanitizer + UndefinedBehaviorSanitizer.
#
# The sampler sources are compiled together with each test program from
# tests/native/programs (so the signal handler, the writer thread and the
# pthread_create wrapper are all instrumented), then the programs run with
# CPUPROFILE set at 1000 Hz in several modes.  Any sanitizer report aborts
# the program with a non-zero status and fails this script.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
src="$root/pprof_py/native/src/profiler"
inc="$root/pprof_py/native/include"
progs="$here/programs"
work="$(mktemp -d "${TMPDIR:-/tmp}/pprof_sanitize_sampler.XXXXXX")"
trap 'rm -rf "$work"' EXIT

CC="${CC:-gcc}"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
export ASAN_OPTIONS="halt_on_error=1:exitcode=86:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"

fail=0
build() {  # name
    "$CC" -O1 -g $SAN -fno-inline -pthread -I"$inc" -I"$src" -I"$src/../common" \
        "$progs/$1.c" "$src"/*.c "$src"/../common/*.c -o "$work/$1" -ldl -lrt || { echo "build of $1 failed"; exit 1; }
}

check_profile() {  # file
    python3 - "$1" <<'PY' || return 1
import struct, sys
data = open(sys.argv[1], "rb").read()
assert struct.unpack_from("<5Q", data)[:3] == (0, 3, 0), "bad header"
pos, words = 5, len(data) // 8
while True:
    count, depth = struct.unpack_from("<2Q", data, pos * 8)
    if count == 0 and depth == 1:
        break
    assert count > 0 and 0 < depth <= 256, "bad record"
    pos += 2 + depth
    assert pos < words, "no trailer"
PY
}

run() {  # description, profile, command..., with env already set by caller
    local what="$1" prof="$2"
    shift 2
    if ! "$@" >"$work/out.txt" 2>"$work/err.txt"; then
        echo "FAIL ($what): exit status $?"
        cat "$work/err.txt"
        fail=1
        return
    fi
    if grep -q -E "runtime error|AddressSanitizer|LeakSanitizer" "$work/err.txt"; then
        echo "FAIL ($what): sanitizer report"
        cat "$work/err.txt"
        fail=1
        return
    fi
    if [ -n "$prof" ] && ! check_profile "$prof"; then
        echo "FAIL ($what): invalid profile $prof"
        fail=1
        return
    fi
    echo "ok   $what"
}

# Like run, for a program that must end by a signal: exit status 128+sig.
run_killed() {  # description, profile, expected status, command...
    local what="$1" prof="$2" want="$3"
    shift 3
    "$@" >"$work/out.txt" 2>"$work/err.txt"
    local got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL ($what): exit status $got, expected $want"
        cat "$work/err.txt"
        fail=1
        return
    fi
    if grep -q -E "runtime error|AddressSanitizer|LeakSanitizer" "$work/err.txt"; then
        echo "FAIL ($what): sanitizer report"
        cat "$work/err.txt"
        fail=1
        return
    fi
    if ! check_profile "$prof"; then
        echo "FAIL ($what): invalid profile $prof"
        fail=1
        return
    fi
    echo "ok   $what"
}

for p in sampler_weights sampler_threads sampler_fork sampler_region sampler_toggle sampler_ownhandler \
         sampler_closefds sampler_manythreads sampler_selfkill sampler_alarm sampler_execpending lastexit; do
    build "$p"
done

# each exec wrapper (the list forms gather their arguments on the stack)
for form in execve execv execvp execvpe execl execlp execle; do
    CPUPROFILE="$work/x.prof" CPUPROFILE_FREQUENCY=1000 run "signal pending at $form" "" \
        "$work/sampler_execpending" 0.05 "$form"
done
# main() calls pthread_exit: the process ends with its worker (helper_threads.h)
CPUPROFILE="$work/le.prof" CPUPROFILE_FREQUENCY=1000 run "main thread calls pthread_exit" "$work/le.prof" \
    timeout 20 "$work/lastexit" 0.2
CPUPROFILE="$work/w.prof" CPUPROFILE_FREQUENCY=1000 run "single thread, perf/default" "$work/w.prof" "$work/sampler_weights" 0.5
CPUPROFILE="$work/wi.prof" CPUPROFILE_FREQUENCY=1000 PPROF_PY_CPU_TIMER=itimer \
    run "single thread, itimer" "$work/wi.prof" "$work/sampler_weights" 0.3
CPUPROFILE="$work/t.prof" CPUPROFILE_FREQUENCY=1000 run "two threads, perf/default" "$work/t.prof" "$work/sampler_threads" 0.3
CPUPROFILE="$work/tp.prof" CPUPROFILE_FREQUENCY=1000 CPUPROFILE_PER_THREAD_TIMERS=1 \
    run "two threads, per-thread timers" "$work/tp.prof" "$work/sampler_threads" 0.3
CPUPROFILE="$work/f.prof" CPUPROFILE_FREQUENCY=1000 run "fork" "$work/f.prof" "$work/sampler_fork"
CPUPROFILE_FREQUENCY=1000 run "start/stop/flush/filter API" "$work/r.prof" "$work/sampler_region" "$work/r.prof" "$work/rf.prof"
CPUPROFILE="$work/g.prof" CPUPROFILE_FREQUENCY=1000 CPUPROFILESIGNAL=12 \
    run "CPUPROFILESIGNAL toggle" "$work/g.prof.1" "$work/sampler_toggle"
CPUPROFILE="$work/o.prof" CPUPROFILE_FREQUENCY=1000 run "program replaces SIGPROF handler" "$work/o.prof" "$work/sampler_ownhandler"
CPUPROFILE="$work/rt.prof" CPUPROFILE_FREQUENCY=1000 CPUPROFILE_REALTIME=1 \
    run "realtime" "$work/rt.prof" "$work/sampler_weights" 0.3
CPUPROFILE="$work/c.prof" CPUPROFILE_FREQUENCY=1000 \
    run "program closes our descriptors" "$work/c.prof" "$work/sampler_closefds" "$work/data.txt" 0.3
CPUPROFILE="$work/o2.prof" CPUPROFILE_FREQUENCY=1000 PPROF_PY_CPU_TIMER=posix \
    run "program takes SIGPROF over, own timer" "$work/o2.prof" "$work/sampler_ownhandler" 100
CPUPROFILE="$work/m.prof" CPUPROFILE_FREQUENCY=4000 \
    run "200 threads at 4000 Hz" "$work/m.prof" bash -c "ulimit -n 256 && exec '$work/sampler_manythreads' 200"
CPUPROFILE="$work/k.prof" CPUPROFILE_FREQUENCY=1000 \
    run_killed "SIGTERM written then re-raised" "$work/k.prof" 143 "$work/sampler_selfkill" 15 0.3
CPUPROFILE="$work/a.prof" CPUPROFILE_FREQUENCY=1000 CPUPROFILE_REALTIME=1 \
    run_killed "realtime, program's alarm fires" "$work/a.prof" 142 "$work/sampler_alarm" 20

if [ "$fail" != 0 ]; then
    echo "sampler sanitizer runs: FAILED"
    exit 1
fi
echo "sampler sanitizer runs: passed"
