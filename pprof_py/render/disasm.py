"""`--disasm=<regexp>`: per-instruction flat and cumulative values of every
matching routine, with the source lines interleaved, like gperftools'
pprof (PrintDisassembledFunction):

    ROUTINE ====================== spin
        65     65 samples (flat, cumulative) 100.0% of total
    -------------------- fixtures/src/chain.c
        65     65    13: x = x * 6364136223846793005UL + 1442695040888963407UL;
         .      .      401145: movabs $0x5851f42d4c957f2d,%rsi
        49     49      40115d: add    %rcx,%rax

Each run of consecutive instructions with the same source line is preceded
by that line (leading white space removed) and the sum of the run's values;
a "----" header names the file whenever it changes.  Line numbers are the
ones `objdump -l` prints (innermost, inlined code included); like pprof, a
line-table row with a discriminator does not change the current line.

Instructions are decoded by capstone and printed in objdump's style; the
text can differ from objdump's in details (see docs/disasm.md), the
addresses and values do not.
"""
from typing import NamedTuple

from pprof_py.render.listing import clean_disassembly, each_routine, instruction_counts, unparse_address
from pprof_py.symbolize import short_function_name
from pprof_py.units import unparse, units


class _Sources:
    """pprof's SourceLine: lines of a file, 1-based, cached; a file that
    cannot be read is reported once."""

    def __init__(self, notes, tool):
        self.notes = notes
        self.tool = tool
        self.files = {}

    def line(self, path, number):
        lines = self.files.get(path)
        if lines is None:
            read = self.tool.source_lines(path)
            if read is None:
                self.notes.append(f"{path}: No such file or directory")
                read = []
                lines = self.files[path] = []
            else:
                lines = self.files[path] = [b""] + read
        if number < 0 or number > len(lines) - 1:
            return None
        return lines[number]


class DisasmRoutine(NamedTuple):
    """One routine of --disasm as data (the web UI's disassembly view draws
    the same rows): `groups` are the runs of instructions with one source
    line, each (file header or None, line number, source text or None,
    flat sum, cum sum, [(flat, cum, address text, instruction text)])."""
    name: str
    flat: float
    cum: float
    share: str
    groups: list


def disasm_routines(prepared):
    """The routines --disasm=<re> selects, in pprof's order."""
    opts = prepared.options
    tool = prepared.objtool()
    sources = _Sources(prepared.notes, tool)
    total = None
    for r, flat, cum, keys in each_routine(prepared, "disasm"):
        routine, offset = r.name, r.offset
        if total is None:
            total = sum(flat.values())
        insns = tool.instructions(r, top_level=False)
        counts = [instruction_counts(e, flat, cum, keys) for e in insns]
        flat_total = sum(c[0] for c in counts)
        cum_total = sum(c[1] for c in counts)
        share = "%.1f%%" % (cum_total * 100.0 / total) if total else "nan%"
        groups = []
        current_file = ""
        i = 0
        while i < len(insns):
            e = insns[i]
            header = None
            if e[1] != current_file:
                current_file = e[1]
                header = current_file[2:] if current_file.startswith("./") else current_file
                if len(header) >= 58:
                    header = "..." + header[-55:]
            line_no = e[2]
            flat_sum = cum_sum = 0
            first = i
            while i < len(insns) and insns[i][2] == line_no:
                flat_sum += counts[i][0]
                cum_sum += counts[i][1]
                i += 1
            text = sources.line(current_file, line_no)
            if text is not None:
                text = text.lstrip(b" \t\n\r\f\v").decode("utf-8", "surrogateescape")
            rows = [(counts[x][0], counts[x][1], unparse_address(offset, insns[x][0]),
                     clean_disassembly(insns[x][3])) for x in range(first, i)]
            groups.append((header, line_no, text, flat_sum, cum_sum, rows))
        yield DisasmRoutine(short_function_name(routine, opts.strip_templates),
                            flat_total, cum_total, share, groups)


def render_disasm(prepared):
    out = []
    kind, opts = prepared.kind, prepared.options

    def alt(v):
        return "." if v == 0 else unparse(v, kind, opts)

    for r in disasm_routines(prepared):
        out.append("ROUTINE ====================== %s\n%6s %6s %s (flat, cumulative) %s of total\n" % (
            r.name, unparse(r.flat, kind, opts), unparse(r.cum, kind, opts), units(kind, opts), r.share))
        for header, line_no, text, flat_sum, cum_sum, rows in r.groups:
            if header is not None:
                out.append("-------------------- %s\n" % header)
            if text is not None:
                # The source text keeps its own newline, as pprof prints it.
                out.append("%6s %6s %5d: %s" % (alt(flat_sum), alt(cum_sum), line_no, text))
            for f, c, address, asm in rows:
                out.append("%6s %6s    %8s: %6s\n" % (alt(f), alt(c), address, asm))
    return "".join(out)
