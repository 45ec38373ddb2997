"""`--list=<regexp>`: annotated source of every matching routine.

    ROUTINE ====================== spin in fixtures/src/chain.c
        65     65 Total samples (flat / cumulative)
         .      .    9: __attribute__((noinline)) unsigned long spin(...)
    ---
        16     16   12:     for (unsigned long i = 0; i < n; i++)
    ...

As in gperftools' pprof (PrintSource): the routine's instructions are
attributed to the source lines of the function being listed (for inlined
code, the line of the call in the listed function).  The listed file is
the first one met among the instructions; lines run from the first line met
in it to the largest, extended downwards while the indentation stays at
least that of the first line.  Values of instructions outside that range
go to the next instruction inside it (or to the last line).  Five lines of
context are printed on each side, the routine's own lines between "---"
markers; zero values print as ".".

Unlike pprof, a routine whose source file cannot be read still gets its
header and totals (the file name goes to stderr).
"""
from pprof_py.render.routines import (LineInfo, clean_file_name, each_routine, instruction_counts,
                                      instructions, perl_lines)
from pprof_py.symbolize import short_function_name
from pprof_py.units import unparse, units


def _indentation(line):
    """pprof's Indentation: width of the leading white space, -1 for a blank
    line."""
    stripped = line.lstrip(b" \t\n\r\f\v")
    if not stripped:
        return -1
    return len(line) - len(stripped)


def _alt(value, prepared):
    return "." if value == 0 else unparse(value, prepared.kind, prepared.options)


def _chop(line):
    return line[:-1] if line else line


def render_list(prepared):
    out = []
    notes = prepared.notes
    line_infos = {}
    for path, obj, offset, routine, start, end, flat, cum, keys in each_routine(prepared, "list"):
        info = line_infos.get(obj.path)
        if info is None:
            info = line_infos[obj.path] = LineInfo(obj, prepared.options.use_cache)
        insns = instructions(obj, path, offset, start, end, info, top_level=True)
        _print_source(prepared, routine, insns, flat, cum, keys, out, notes)
    return "".join(out)


def _print_source(prepared, routine, insns, flat, cum, keys, out, notes):
    filename = None
    for e in insns:
        if e[2] >= 0:
            filename = e[1]
            break
    if filename is None:
        notes.append(f"no filename found in {routine}")
        return

    lastline = 0
    for e in insns:
        if e[1] == filename and e[2] > lastline:
            lastline = e[2]
    firstline = 1
    for e in insns:
        if e[1] == filename:
            firstline = e[2]
            break

    lines = perl_lines(filename)
    oldlastline = lastline
    if lines is not None:
        first_indentation = -1
        for l, raw in enumerate(lines, 1):
            text = raw.replace(b"\r", b"")
            indent = _indentation(text)
            if l >= firstline and first_indentation < 0 and indent >= 0:
                first_indentation = indent
                if first_indentation == 0:
                    break
            if l >= lastline and indent >= 0:
                if indent >= first_indentation:
                    lastline = l + 1
                else:
                    break

    samples1, samples2 = {}, {}
    running1 = running2 = total1 = total2 = 0
    for e in insns:
        c1, c2 = instruction_counts(e, flat, cum, keys)
        running1 += c1
        running2 += c2
        total1 += c1
        total2 += c2
        if e[1] == filename and firstline <= e[2] <= lastline:
            samples1[e[2]] = samples1.get(e[2], 0) + running1
            samples2[e[2]] = samples2.get(e[2], 0) + running2
            running1 = running2 = 0
    samples1[lastline] = samples1.get(lastline, 0) + running1
    samples2[lastline] = samples2.get(lastline, 0) + running2

    kind, opts = prepared.kind, prepared.options
    out.append("ROUTINE ====================== %s in %s\n%6s %6s Total %s (flat / cumulative)\n" % (
        short_function_name(routine, opts.strip_templates), clean_file_name(filename),
        unparse(total1, kind, opts), unparse(total2, kind, opts), units(kind, opts)))
    if lines is None:
        notes.append(f"{filename}: No such file or directory")
        return
    for l, raw in enumerate(lines, 1):
        if l >= firstline - 5 and (l <= oldlastline + 5 or l <= lastline):
            text = _chop(raw.replace(b"\r", b"")).decode("utf-8", "surrogateescape")
            if l == firstline:
                out.append("---\n")
            out.append("%6s %6s %4d: %s\n" % (_alt(samples1.get(l, 0), prepared),
                                               _alt(samples2.get(l, 0), prepared), l, text))
            if l == lastline:
                out.append("---\n")
