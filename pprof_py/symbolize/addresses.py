"""`pprof --symbols <program>`: name the addresses given on standard input.

The input, as gperftools' pprof reads it: every line that holds a
hexadecimal number written ``0x...`` contributes its first such number as
an address to look up; all other lines together are a memory map in
/proc/self/maps form (the text that follows a CPU profile, or a heap
profile's ``MAPPED_LIBRARIES:`` section), which places shared libraries.
Without a map only the program itself is searched.

The output: one line per address, in input order, with the short name of
the function at that address (the outermost one where code was inlined), or
the address itself (``0x`` and 16 digits) when no object holds it.

With ``--lines`` (ours; gperftools' pprof has no such form) each line holds
every function at the address with its source position, innermost first,
separated by `` -- `` where code was inlined: ``leaf file.c:12 -- caller
file.c:30``.  The leak checker uses it to make its report readable.
"""
import re

from pprof_py.formats.procmaps import parse_maps
from pprof_py.symbolize import Symbolizer

_ADDRESS = re.compile(r"\b(0x[0-9a-f]+)\b", re.I)


def name_addresses(program, text, lib_prefixes=(), strip_templates=True, use_cache=True, warn=None, lines=False):
    """The lines `pprof --symbols` prints for input `text` (`lines`: with
    --lines, every inlined frame and its file:line)."""
    addresses = []
    map_lines = []
    for line in text.replace("\r", "").split("\n"):
        m = _ADDRESS.search(line)
        if m:
            addresses.append(int(m.group(1), 16))
        else:
            map_lines.append(line)
    if not addresses:
        return ""
    symbolizer = Symbolizer(program, lib_prefixes, strip_templates, warn=warn, use_cache=use_cache, width=16)
    symbols = symbolizer.symbolize(set(addresses), parse_maps("\n".join(map_lines)), max(addresses))
    out = []
    for a in addresses:
        triples = symbols.get(a)
        if not triples:
            out.append("0x%016x" % a)
        elif lines:
            out.append(" -- ".join(f"{name} {where}" if where else name for name, where, _ in reversed(triples)))
        else:
            out.append(triples[0][0])
    return "\n".join(out) + "\n"
