"""The pipeline that every report runs: read -> combine -> symbolize ->
filter -> reduce.  The CLI builds `Options`, calls `prepare`, and hands the
result to a renderer from pprof_py.render."""
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

from pprof_py import filter as filters
from pprof_py import graph
from pprof_py.errors import PprofError
from pprof_py.formats import read_profile
from pprof_py.symbolize import Symbolizer, symbols_from_names

HEAP_COLUMNS = {"inuse_objects": 0, "inuse_space": 1, "alloc_objects": 2, "alloc_space": 3}
CONTENTION_COLUMNS = {"total_delay": 0, "contentions": 1, "mean_delay": 2}


@dataclass
class Options:
    granularity: str = "functions"
    cum: bool = False
    focus: Optional[str] = None
    ignore: Optional[str] = None
    sample_index: str = "inuse_space"          # heap profiles only
    show_bytes: bool = False
    drop_negative: bool = False
    base: Optional[str] = None
    lib_prefixes: List[str] = field(default_factory=list)
    nodecount: int = 80
    nodefraction: float = 0.005
    edgefraction: float = 0.001
    maxdegree: int = 8
    show_addresses: bool = False
    strip_templates: bool = True
    no_auto_signal_frames: bool = False
    contention_index: str = "total_delay"      # contention profiles only
    stacks: bool = False
    use_cache: bool = True
    # Issue 5 (list/disasm/proto/json/markdown/CI gate/interactive):
    output_regex: Optional[str] = None          # the <regexp> of --list / --disasm
    output_path: Optional[str] = None           # -o/--output FILE
    fail_over: Optional[float] = None           # --fail-over threshold, in percent points


@dataclass
class Prepared:
    """Everything a renderer needs."""

    kind: str
    options: Options
    program: Optional[str]
    total: float                  # before frame removal and focus (pprof's Total:)
    profile: dict                 # address stacks after filters
    symbols: dict                 # address -> [(short, file:line, full)] outermost first
    reduced: dict                 # key stacks at the granularity
    flat: dict
    cum: dict
    width: int
    heap_records: Optional[list]
    profiles: list
    notes: List[str]


def compile_regex(pattern, what):
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PprofError(f"bad --{what} regular expression {pattern!r}: {exc}") from None


def _address_profile(profile, column):
    result = {}
    addresses = [loc.address for loc in profile.locations]
    values = profile.values[:, column].tolist()
    for row, stack in enumerate(profile.stacks()):
        key = tuple(addresses[i] for i in stack)
        result[key] = result.get(key, 0) + values[row]
    return result


def _column(profile, options):
    if profile.kind in ("heap", "growth"):
        return HEAP_COLUMNS.get(options.sample_index, 1)
    if profile.kind == "contention":
        return CONTENTION_COLUMNS[options.contention_index]
    return 0


def prepare(program, profile_paths, options, notes=None, progress=None, symbol_memo=None):
    """Run the pipeline.  `notes` collects what pprof would print on stderr;
    `progress(label)` may return a progress reporter for slow symbolization.
    `symbol_memo` (a dict kept by the caller, e.g. the web UI's server) holds
    the symbols of the first call for the later ones on the same profiles."""
    notes = notes if notes is not None else []
    if program is not None and not os.path.exists(program):
        raise PprofError(f"{program}: no such file (the program the profile was taken from)")
    # The first profile's memory map (and highest address) drive
    # symbolization, as in gperftools' pprof; the others are added to it.
    profiles = [read_profile(p, notes) for p in profile_paths]
    main = profiles[0]
    kind = main.kind
    width = main.address_width
    stacks = _address_profile(main, _column(main, options))
    for extra in profiles[1:]:
        stacks = filters.add_profiles(stacks, _address_profile(extra, _column(extra, options)))
    if options.base:
        base = read_profile(options.base, notes)
        profiles.append(base)
        stacks = filters.subtract_profile(stacks, _address_profile(base, _column(base, options)),
                                          options.drop_negative)
    total = filters.total(stacks)

    addresses = set()
    for p in profiles:
        addresses.update(loc.address for loc in p.locations)
    if getattr(main, "proto_symbols", None) is not None:
        # profile.proto input: its locations name themselves (formats/proto.py).
        symbols = {}
        for p in profiles:
            symbols.update(getattr(p, "proto_symbols", None) or {})
        for a in addresses:
            symbols.setdefault(a, [("%0*x" % (width, a), "??:0", "%0*x" % (width, a))])
    elif main.embedded_symbols is not None:
        embedded = {}
        for p in profiles:
            embedded.update(p.embedded_symbols or {})
        symbols = symbols_from_names(addresses, embedded, width, options.strip_templates)
        if kind == "folded":
            # Other profilers' frame names are shown as written, except that
            # pprof's own "name<address>" tags are shortened (formats/folded.py).
            symbols = {a: [(short if re.search(r"<[0-9a-fA-F]+>$", full) else full, "??:0", full)
                           for short, _fl, full in triples]
                       for a, triples in symbols.items()}
    elif symbol_memo is not None and "symbols" in symbol_memo:
        symbols = symbol_memo["symbols"]
    else:
        symbolizer = Symbolizer(program, options.lib_prefixes, options.strip_templates,
                                warn=notes.append, use_cache=options.use_cache, width=width,
                                progress=progress)
        max_pc = max((loc.address for loc in main.locations), default=0)
        symbols = symbolizer.symbolize(addresses, main.mappings, max_pc)
        if symbol_memo is not None:
            symbol_memo["symbols"] = symbols

    stacks = filters.remove_uninteresting_frames(stacks, symbols, kind, notes,
                                                options.no_auto_signal_frames)
    if options.focus:
        stacks = filters.focus_profile(stacks, symbols, compile_regex(options.focus, "focus"), width)
    if options.ignore:
        stacks = filters.ignore_profile(stacks, symbols, compile_regex(options.ignore, "ignore"), width)
    reduced = graph.reduce_profile(stacks, symbols, options.granularity, width, options.show_addresses)
    flat, cum = graph.flat_and_cumulative(reduced)
    return Prepared(kind=kind, options=options, program=program, total=total, profile=stacks,
                    symbols=symbols, reduced=reduced, flat=flat, cum=cum, width=width,
                    heap_records=main.heap_records if len(profiles) == 1 else None,
                    profiles=profiles, notes=notes)
