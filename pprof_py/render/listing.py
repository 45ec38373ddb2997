"""The listing view model --list, --disasm and --weblist share (and the
web UI's source and disassembly views): per-address flat and cumulative
values, the routines pprof prints, and the value of each instruction.

gperftools' pprof reduces the profile to bare addresses for these modes
(each address counted once per stack), walks the libraries of the profile
(shared libraries from the memory map, then the main program with offset
0), and for every routine whose nm name matches the regular expression and
that contains a sampled address, prints one block.  The object files are
read through the report's ObjTool (symbolize/objtool.py).
"""
import bisect
import os
import re

from pprof_py.errors import PprofError
from pprof_py.report import compile_regex


def address_values(prepared):
    """pprof's flat and cumulative profiles at bare-address granularity:
    ({address: value}, {address: value}).  An address seen twice in one
    stack (recursion) counts once; addresses above 0x7fffffffffffffff are
    dropped, as pprof drops them."""
    flat, cum = {}, {}
    for stack, count in prepared.profile.items():
        seen = set()
        first = True
        for a in stack:
            if a > 0x7fffffffffffffff or a in seen:
                continue
            seen.add(a)
            if first:
                flat[a] = flat.get(a, 0) + count
                first = False
            cum[a] = cum.get(a, 0) + count
    return flat, cum


def regex_of(prepared, what):
    pattern = prepared.options.output_regex
    if pattern is None:
        raise PprofError(f"--{what} needs a regular expression")
    return compile_regex(pattern, what)


def each_routine(prepared, what, require_match=False):
    """Yield (routine, flat, cum, sorted addresses) for every routine pprof
    prints in --list / --disasm mode, in pprof's order; `routine` is a
    symbolize.objtool.Routine.  With `require_match` (the CLI's and the
    shell's reports), selecting nothing is the one-line error
    no_routine_matched(); the web UI's views say so on their page instead."""
    regex = regex_of(prepared, what)
    flat, cum = address_values(prepared)
    keys = sorted(cum)
    matched = 0
    for routine in prepared.objtool().routines(regex):
        lo, hi = routine.start + routine.offset, routine.end + routine.offset
        i = bisect.bisect_left(keys, lo)
        if routine.end > routine.start and i < len(keys) and keys[i] < hi:
            matched += 1
            yield routine, flat, cum, keys
    if require_match and not matched:
        raise no_routine_matched(prepared.options.output_regex)


def no_routine_matched(pattern):
    """The one-line error for a --list/--disasm/--weblist regexp (or the
    shell's list/disasm/weblist argument) that selects nothing to print.
    gperftools' pprof prints nothing and exits 0 there, which reads like
    success; the commonest cause is `pprof --list ./prog prof`, which takes
    the program for the regexp."""
    message = f"no routine with samples matches '{pattern}'"
    if os.path.isfile(pattern):
        message += (f" ('{pattern}' is a file: the option takes a regular expression,"
                    " e.g. --list=main ./prog prof)")
    return PprofError(message)


def instruction_counts(e, flat, cum, sorted_keys):
    """Sum of flat and cumulative values over [e[0], e[4])."""
    c1 = c2 = 0
    lo, hi = e[0], e[4]
    if hi <= lo:
        return 0, 0
    i = bisect.bisect_left(sorted_keys, lo)
    while i < len(sorted_keys) and sorted_keys[i] < hi:
        a = sorted_keys[i]
        c1 += flat.get(a, 0)
        c2 += cum.get(a, 0)
        i += 1
    return c1, c2


def unparse_address(offset, address):
    text = "%x" % (address - offset) if address >= offset else "-%x" % (offset - address)
    return text.lstrip("0")


def clean_disassembly(text):
    while True:
        new = re.sub(r"\([^()%]*\)(\s*const)?", "", text)
        if new == text:
            break
        text = new
    while True:
        new = re.sub(r"(\w+)<[^<>]*>", r"\1", text)
        if new == text:
            break
        text = new
    return text


def clean_file_name(name):
    name = re.sub(r"^/proc/self/cwd/", "", name)
    return re.sub(r"^\./", "", name)
