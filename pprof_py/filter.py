"""Profile-level filters, in pprof's order: combine profiles (sum, base
subtraction), drop uninteresting frames, focus, ignore.

They work on an "address profile": a dict from a stack (tuple of addresses,
leaf first) to a value, like gperftools' pprof's own profile hash, so each
rule can be written exactly as pprof applies it.
"""
import re

# Frames pprof drops from heap/growth profiles: the allocator's own functions.
HEAP_SKIP = {
    "calloc", "cfree", "malloc", "free", "memalign", "posix_memalign", "pvalloc", "valloc",
    "realloc", "tc_calloc", "tc_cfree", "tc_malloc", "tc_free", "tc_memalign",
    "tc_posix_memalign", "tc_pvalloc", "tc_valloc", "tc_realloc", "tc_new", "tc_delete",
    "tc_newarray", "tc_deletearray", "tc_new_nothrow", "tc_newarray_nothrow", "do_malloc",
    "::do_malloc", "::do_malloc_or_cpp_alloc", "DoSampledAllocation", "simple_alloc::allocate",
    "__malloc_alloc_template::allocate", "__builtin_delete", "__builtin_new",
    "__builtin_vec_delete", "__builtin_vec_new", "operator new", "operator new[]",
    "malloc_zone_malloc", "malloc_zone_calloc", "malloc_zone_valloc", "malloc_zone_realloc",
    "malloc_zone_memalign", "malloc_zone_free", "__start_google_malloc", "__stop_google_malloc",
    "__start_malloc_hook", "__stop_malloc_hook",
}
HEAP_SKIP |= {"_" + n for n in HEAP_SKIP}
HEAP_SKIP_RE = re.compile(r"TCMalloc|^tcmalloc::")
CPU_SKIP = {"ProfileData::Add", "ProfileData::prof_handler", "CpuProfiler::prof_handler",
            "__FRAME_END__", "__pthread_sighandler", "__restore"}
CONTENTION_SKIP = {"base::RecordLockProfileData", "base::SubmitMutexProfileData",
                   "base::SubmitSpinLockProfileData", "Mutex::Unlock", "Mutex::UnlockSlow",
                   "Mutex::ReaderUnlock", "MutexLock::~MutexLock", "SpinLock::Unlock",
                   "SpinLock::SlowUnlock", "SpinLockHolder::~SpinLockHolder"}


def add_entry(profile, key, value):
    profile[key] = profile.get(key, 0) + value


def add_profiles(a, b):
    if not a:
        return dict(b)          # (the first profile of a sum: no per-stack work)
    result = dict(a)
    for k, v in b.items():
        add_entry(result, k, v)
    return result


def subtract_profile(a, b, drop_negative=False):
    result = {}
    for k, v in a.items():
        v = v - b.get(k, 0)
        if v < 0 and drop_negative:
            v = 0
        add_entry(result, k, v)
    if not drop_negative:
        for k, v in b.items():
            if k not in a:
                add_entry(result, k, -v)
    return result


def total(profile):
    return sum(profile.values())


def _second_frame_always_same(stacks):
    """The second frame of every (key, position of its second frame) stack
    when it is the same for all, else None."""
    second = None
    for k, pos in stacks:
        if len(k) - pos + 1 < 2:
            return None
        if second is None:
            second = k[pos]
        elif second != k[pos]:
            return None
    return second


def skipped_functions(kind, keep_signal_frames=False):
    """(names, regex or None) of the functions whose frames pprof drops
    from every stack of a `kind` profile."""
    if kind in ("heap", "growth"):
        return HEAP_SKIP, HEAP_SKIP_RE
    if kind == "contention":
        return CONTENTION_SKIP, None
    if kind == "cpu" and not keep_signal_frames:
        return CPU_SKIP, None
    return set(), None


def dropped_addresses(symbols, kind, keep_signal_frames=False):
    """The addresses whose frames pprof drops: those naming a skipped
    function.  Decided from the symbol table (which names every address
    of the stacks) once per function name; most CPU profiles have none."""
    skip, skip_re = skipped_functions(kind, keep_signal_frames)
    if not skip and skip_re is None:
        return set()
    names = {sym[0][0] for sym in symbols.values() if sym}
    skipped = {f for f in names if f in skip or (skip_re is not None and skip_re.search(f))}
    if not skipped:
        return set()
    return {a for a, sym in symbols.items() if sym and sym[0][0] in skipped}


def note_common_second_frame(address, symbols, notes, keep_signal_frames):
    """pprof's words when every stack's second frame is `address`; returns
    whether that frame is removed (not with --no-auto-signal-frm)."""
    name = symbols[address][0][0] if address in symbols else "%016x" % address
    if keep_signal_frames:
        notes.append(f"All second stack frames are same: `{name}'.")
        notes.append("Might be stack trace capturing bug.")
        return False
    notes.append(f"Removing {name} from all stack traces.")
    return True


def remove_uninteresting_frames(profile, symbols, kind, notes, keep_signal_frames=False):
    """pprof's RemoveUninterestingFrames.  `notes` collects what pprof
    prints on stderr.  `keep_signal_frames` is --no-auto-signal-frm: CPU
    profiles then keep the profiler's signal-handler frames and a second
    frame common to every stack.  (bigprofile.py does the same on arrays.)"""
    if kind == "cpu":
        # pprof removes the second frame of every stack again and again while
        # it is the same everywhere.  Each stack is kept as its key and the
        # position of its current second frame (removing a frame moves the
        # position) rather than copied per removal: linear in the stack
        # depth, not quadratic (a 65,536-frame stack took minutes).
        stacks = [(k, 1) for k in profile]
        while True:
            second = _second_frame_always_same(stacks)
            if not second:     # pprof treats address 0 as "not the same" too
                break
            if not note_common_second_frame(second, symbols, notes, keep_signal_frames):
                break
            moved = []
            for k, pos in stacks:
                pos += 1
                if len(k) - pos + 1 > 2 and k[pos] + 1 == k[0]:
                    pos += 1
                moved.append((k, pos))
            stacks = moved
        if any(pos > 1 for _k, pos in stacks):
            result = {}
            for (k, pos), count in zip(stacks, profile.values()):
                add_entry(result, k[:1] + k[pos:], count)
            profile = result
    dropped = dropped_addresses(symbols, kind, keep_signal_frames)
    if not dropped:
        return dict(profile)
    result = {}
    for k, count in profile.items():
        if not dropped.isdisjoint(k):
            k = tuple(a for a in k if a not in dropped)
        add_entry(result, k, count)
    return result


def _symbol_matches(triples, regex):
    if triples:
        for short, fileline, _ in triples:
            if regex.search(short) or regex.search(fileline):
                return True
    return False


def _address_matches(address, symbols, regex, width):
    return bool(regex.search("%0*x" % (width, address))) or _symbol_matches(symbols.get(address), regex)


def focus_profile(profile, symbols, regex, width):
    result = {}
    memo = {}
    for k, count in profile.items():
        for a in k:
            hit = memo.get(a)
            if hit is None:
                hit = memo[a] = _address_matches(a, symbols, regex, width)
            if hit:
                add_entry(result, k, count)
                break
    return result


def ignore_profile(profile, symbols, regex, width):
    result = {}
    memo = {}
    for k, count in profile.items():
        matched = False
        for a in k:
            hit = memo.get(a)
            if hit is None:
                hit = memo[a] = _address_matches(a, symbols, regex, width)
            if hit:
                matched = True
                break
        if not matched:
            add_entry(result, k, count)
    return result


def _frame_matches(frame, regex):
    return bool(regex.search(frame[0]) or regex.search(frame[2]))


def hide_show(profile, symbols, hide, show, width):
    """Go pprof's --hide / --show: drop the frames whose function matches
    `hide`, or does not match `show`, from every location; a location left
    without frames leaves the stacks.  Unnamed locations are matched by
    their address.  Returns (profile, symbols) with the narrowed frames."""
    def keep(frame):
        if hide is not None and _frame_matches(frame, hide):
            return False
        return show is None or _frame_matches(frame, show)

    view = type(symbols)()
    if hasattr(symbols, "display"):          # symbolize.Symbols: name@address keys
        view.display = symbols.display
    shared = {}
    gone = set()
    for address, frames in symbols.items():
        if not frames:
            continue            # unnamed: matched by its address below
        kept = shared.get(id(frames))
        if kept is None:
            kept = shared[id(frames)] = tuple(f for f in frames if keep(f))
        if len(kept) == len(frames):
            view[address] = frames
        elif kept:
            view[address] = kept
        else:
            gone.add(address)

    def unnamed_kept(address):
        text = "%0*x" % (width, address)
        if hide is not None and hide.search(text):
            return False
        return show is None or bool(show.search(text))

    result = {}
    memo = {}
    for stack, value in profile.items():
        path = []
        for a in stack:
            ok = memo.get(a)
            if ok is None:
                ok = memo[a] = (a not in gone) and (a in view or unnamed_kept(a))
            if ok:
                path.append(a)
        add_entry(result, tuple(path), value)
    return result, view


def show_from(profile, symbols, regex, width):
    """Go pprof's --show_from: in each stack, drop the callers above the
    outermost frame matching `regex`; stacks with no match are dropped."""
    result = {}
    memo = {}
    for stack, value in profile.items():
        for i in range(len(stack) - 1, -1, -1):          # outermost first
            a = stack[i]
            hit = memo.get(a)
            if hit is None:
                hit = memo[a] = _address_matches(a, symbols, regex, width)
            if hit:
                add_entry(result, stack[:i + 1], value)
                break
    return result
