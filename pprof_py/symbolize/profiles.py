"""Naming every location of the profiles a report reads.

Three sources of names, decided per location:

* frames the input carried (profile.proto): used as they are;
* full names the input carried without lines (``pprof --raw``, folded
  stacks): shortened and disambiguated as pprof does (symbols_from_names);
* everything else: the ELF/DWARF symbolizer, run once over the combined
  memory map (pprof_py/combine.py) of all profiles.

The result is one table {address: (Frame, ...)} (outermost first; equal
tuples shared, so later stages memoize on identity) in the combined address
space, and every Location's ``frames`` is set from it, so the model and the
renderers see the same names.
"""
import re

from pprof_py.model import UNKNOWN_LINE, Frame, LocationTable
from pprof_py.symbolize import Symbolizer, Symbols, symbols_from_names

_PPROF_TAG = re.compile(r"<[0-9a-fA-F]+>$")


def name_profiles(profiles, translated, program, options, width, combined_mappings, max_pc,
                  warn, progress=None):
    """{address: frames} for every address of `profiles`; `translated[i]`
    lists profile i's location addresses in the combined space."""
    carried = {}        # address -> frames (proto)
    named = {}          # address -> "outer--inner" (raw, folded)
    addresses = set()
    for profile, addrs in zip(profiles, translated):
        addresses.update(addrs)
        if profile.named_by == "elf":
            continue                    # nothing carried: all from the symbolizer
        for loc, address in zip(profile.locations, addrs):
            if loc.frames is not None:
                carried.setdefault(address, loc.frames)
            elif loc.names is not None:
                named.setdefault(address, "--".join(loc.names))
    style = profiles[0].named_by
    symbols = Symbols(carried)
    rest = addresses.difference(carried)
    if style == "proto":
        for a in rest:
            hexa = "%0*x" % (width, a)
            symbols[a] = (Frame(hexa, UNKNOWN_LINE, hexa),)
    elif style in ("raw", "folded"):
        table = symbols_from_names(rest, named, width, options.strip_templates)
        if style == "folded":
            # Other profilers' frame names are shown as written, except that
            # pprof's own "name<address>" tags are shortened (formats/folded.py).
            display = table.display
            table = Symbols({a: tuple(Frame(short if _PPROF_TAG.search(full) else full, UNKNOWN_LINE, full)
                                       for short, _fl, full in triples)
                             for a, triples in table.items()})
            table.display = display
        symbols.update(table)
        symbols.display.update(table.display)
    else:
        symbolizer = Symbolizer(program, options.lib_prefixes, options.strip_templates, warn=warn,
                                use_cache=options.use_cache, width=width, progress=progress,
                                add_lib=options.add_lib)
        table = symbolizer.symbolize(rest, combined_mappings, max_pc)
        symbols.update(table)
        symbols.display.update(table.display)
    for profile, addrs in zip(profiles, translated):
        if isinstance(profile.locations, LocationTable):
            profile.locations.set_frames(map(symbols.get, addrs))
            continue
        for loc, address in zip(profile.locations, addrs):
            loc.frames = symbols.get(address)
    return symbols

