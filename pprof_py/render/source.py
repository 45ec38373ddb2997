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
from pprof_py.render.listing import clean_file_name, each_routine, instruction_counts
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


class Listing:
    """One routine's annotated source, as pprof's PrintSource computes it:
    the values per source line, and (for weblist) the instructions whose
    values each line received."""

    def __init__(self, routine, filename):
        self.routine, self.filename = routine, filename
        self.firstline = self.lastline = self.oldlastline = 0
        self.lines = None                 # the file's lines (bytes), None if unreadable
        self.flat, self.cum = {}, {}      # line -> value
        self.insns = {}                   # line -> [(instruction, flat, cum)]
        self.total_flat = self.total_cum = 0
        self.offset = 0                   # object's load offset (addresses as profiled)

    def shown_lines(self):
        """(number, text) of the lines pprof prints: five of context around
        the routine's own lines [firstline, lastline]."""
        for l, raw in enumerate(self.lines or (), 1):
            if l >= self.firstline - 5 and (l <= self.oldlastline + 5 or l <= self.lastline):
                yield l, _chop(raw.replace(b"\r", b"")).decode("utf-8", "surrogateescape")


def each_listing(prepared):
    """A Listing for every routine --list=<re> selects, in pprof's order."""
    tool = prepared.objtool()
    for routine, flat, cum, keys in each_routine(prepared, "list"):
        insns = tool.instructions(routine, top_level=True)
        listing = _listing(routine.name, insns, flat, cum, keys, prepared.notes, tool)
        if listing is not None:
            listing.offset = routine.offset
            yield listing


def render_list(prepared):
    out = []
    kind, opts = prepared.kind, prepared.options
    for li in each_listing(prepared):
        out.append("ROUTINE ====================== %s in %s\n%6s %6s Total %s (flat / cumulative)\n" % (
            short_function_name(li.routine, opts.strip_templates), clean_file_name(li.filename),
            unparse(li.total_flat, kind, opts), unparse(li.total_cum, kind, opts), units(kind, opts)))
        if li.lines is None:
            prepared.notes.append(f"{li.filename}: No such file or directory")
            continue
        for l, text in li.shown_lines():
            if l == li.firstline:
                out.append("---\n")
            out.append("%6s %6s %4d: %s\n" % (_alt(li.flat.get(l, 0), prepared),
                                               _alt(li.cum.get(l, 0), prepared), l, text))
            if l == li.lastline:
                out.append("---\n")
    return "".join(out)


def _listing(routine, insns, flat, cum, keys, notes, tool):
    filename = None
    for e in insns:
        if e[2] >= 0:
            filename = e[1]
            break
    if filename is None:
        notes.append(f"no filename found in {routine}")
        return None
    li = Listing(routine, filename)

    lastline = 0
    for e in insns:
        if e[1] == filename and e[2] > lastline:
            lastline = e[2]
    firstline = 1
    for e in insns:
        if e[1] == filename:
            firstline = e[2]
            break

    lines = tool.source_lines(filename)
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

    # Values of instructions outside [firstline, lastline] run on to the
    # next instruction inside it (or to the last line).
    samples1, samples2, attributed = li.flat, li.cum, li.insns
    running1 = running2 = 0
    pending = []
    for e in insns:
        c1, c2 = instruction_counts(e, flat, cum, keys)
        running1 += c1
        running2 += c2
        li.total_flat += c1
        li.total_cum += c2
        pending.append((e, c1, c2))
        if e[1] == filename and firstline <= e[2] <= lastline:
            samples1[e[2]] = samples1.get(e[2], 0) + running1
            samples2[e[2]] = samples2.get(e[2], 0) + running2
            attributed.setdefault(e[2], []).extend(pending)
            running1 = running2 = 0
            pending = []
    samples1[lastline] = samples1.get(lastline, 0) + running1
    samples2[lastline] = samples2.get(lastline, 0) + running2
    if pending:
        attributed.setdefault(lastline, []).extend(pending)
    li.firstline, li.lastline, li.oldlastline, li.lines = firstline, lastline, oldlastline, lines
    return li
