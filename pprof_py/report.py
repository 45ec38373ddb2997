"""The analysis pipeline every output runs, in one direction:

    read      formats.read_profile: bytes -> Profile (one per file)
    combine   combine.py: later profiles' addresses into the first one's map
    symbolize symbolize/profiles.py: every location gets its frames
    filter    filter.py: pprof's frame removal, focus, ignore, hide, show,
              show_from; the base subtracted
    reduce    graph.py: stacks of keys at a granularity, flat and cumulative

`load()` runs the first three stages once (they depend only on the files
and the symbolization options) and returns `Inputs`; `analyze()` runs the
rest for one set of report options and returns a `Report`.  `prepare()` is
both.  The CLI, every renderer, the interactive shell, the CI gate,
`--proto` and the web UI get a Report and ask it for anything else they
need (the base side alone, another value column, a narrower report), so the
filter chain exists once, here.

Stacks between the stages are "address profiles": {tuple of addresses,
leaf first: value}, like gperftools' pprof's own profile hash, so every rule
of pprof can be applied exactly as pprof applies it.
"""
import dataclasses
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional


from pprof_py import bigprofile
from pprof_py import filter as filters
from pprof_py import graph
from pprof_py.combine import CombinedMap, translate
from pprof_py.errors import PprofError
from pprof_py.formats import read_profile
from pprof_py.lazynp import np
from pprof_py.model import Profile, ProfileKind, location_addresses

_OBJTOOL_LOCK = threading.RLock()
HEAP_COLUMNS = {"inuse_objects": 0, "inuse_space": 1, "alloc_objects": 2, "alloc_space": 3}
CONTENTION_COLUMNS = {"total_delay": 0, "contentions": 1, "mean_delay": 2}


@dataclass
class Options:
    # What to read and how to name it (used by load()).
    base: Optional[str] = None
    lib_prefixes: List[str] = field(default_factory=list)
    strip_templates: bool = True
    use_cache: bool = True
    # What to report (used by analyze()).
    granularity: str = "functions"
    cum: bool = False
    focus: Optional[str] = None
    ignore: Optional[str] = None
    hide: Optional[str] = None                 # drop frames matching (Go pprof's -hide)
    show: Optional[str] = None                 # keep only frames matching (-show)
    show_from: Optional[str] = None            # drop callers above the outermost match (-show_from)
    sample_index: str = "inuse_space"          # heap profiles only
    contention_index: str = "total_delay"      # contention profiles only
    show_bytes: bool = False
    drop_negative: bool = False
    nodecount: int = 80
    nodefraction: float = 0.005
    edgefraction: float = 0.001
    maxdegree: int = 8
    show_addresses: bool = False
    no_auto_signal_frames: bool = False
    heapcheck: bool = False                    # --dot: mark direct leak sites
    stacks: bool = False
    output_regex: Optional[str] = None         # the <regexp> of --list / --disasm / --weblist
    output_path: Optional[str] = None          # -o/--output FILE
    fail_over: Optional[float] = None          # --fail-over threshold, in percent points
    add_lib: Optional[str] = None              # --add_lib: an unrelocated library's symbols
    scale: int = 0                             # --scale: passed to gv by --gv


def compile_regex(pattern, what):
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PprofError(f"bad --{what} regular expression {pattern!r}: {exc}") from None


def value_column(kind, options):
    """Which column of Profile.values the report shows."""
    if kind.is_heap:
        return HEAP_COLUMNS.get(options.sample_index, 1)
    if kind == ProfileKind.CONTENTION:
        return CONTENTION_COLUMNS[options.contention_index]
    return 0


def _address_profile(profile, addresses, column):
    """{stack of addresses: value} of one profile; `addresses` are its
    locations' addresses in the combined space."""
    values = profile.column(column)
    starts = profile.starts()
    flat = list(map(addresses.__getitem__, profile.location_indices()))   # every stack's addresses, end to end
    keys = [tuple(flat[starts[i]:starts[i + 1]]) for i in range(len(starts) - 1)]
    result = dict(zip(keys, values))
    if len(result) != len(keys):
        # Two stacks became one (translated addresses met): add them up.
        result = {}
        for key, value in zip(keys, values):
            result[key] = result.get(key, 0) + value
    return result


def _check_kinds(profiles, paths):
    first = profiles[0]
    for profile, path in zip(profiles[1:], paths[1:]):
        if profile.kind != first.kind:
            raise PprofError(f"cannot combine {paths[0]} ({first.kind.description}) with {path} "
                             f"({profile.kind.description}): profiles of different kinds")


def _warn_truncated(profile, path, notes):
    if profile.truncated is None:
        return
    offset, map_missing = profile.truncated
    samples = int(sum(profile.column(0)))
    notes.append(f"warning: {path}: truncated CPU profile (the program may have crashed or been killed): "
                 f"data ends at byte offset {offset}, "
                 f"{'the memory map is missing, ' if map_missing else ''}"
                 f"{samples} sample{'' if samples == 1 else 's'} read")


@dataclass
class Inputs:
    """The profiles of one command line, read, combined into one address
    space and named: what does not change from one report to the next."""

    program: Optional[str]
    kind: ProfileKind
    width: int
    profiles: List[Profile]                 # the ones summed (not the base)
    base: Optional[Profile]
    addresses: List[list]                   # per profile (then base): its locations' combined addresses
    mappings: list                          # the combined memory map
    symbols: Dict[int, tuple]               # address -> frames, outermost first
    notes: List[str]
    libraries: Optional[list] = None        # pprof's $libs, made on first use (Report.libraries)
    objtool: object = None                  # symbolize.objtool.ObjTool, made on first use
    paths: List[str] = field(default_factory=list)   # the files of `profiles`, as given
    _stacks: dict = field(default_factory=dict, repr=False)

    def stacks(self, side, column):
        """The address profile of one side before any filter: "new" (the
        profiles summed) or "base"."""
        key = (side, column)
        cached = self._stacks.get(key)
        if cached is None:
            if side == "base":
                cached = _address_profile(self.base, self.addresses[-1], column) if self.base else {}
            else:
                cached = {}
                for profile, addrs in zip(self.profiles, self.addresses):
                    cached = filters.add_profiles(cached, _address_profile(profile, addrs, column))
            self._stacks[key] = cached
        return cached


def load(program, profile_paths, options, notes=None, progress=None):
    """Read, combine and symbolize.  `notes` collects what pprof would print
    on stderr; `progress(label)` may return a reporter for slow symbolization."""
    from pprof_py.symbolize.profiles import name_profiles

    notes = notes if notes is not None else []
    if program is not None and not os.path.exists(program):
        raise PprofError(f"{program}: no such file (the program the profile was taken from)")
    paths = list(profile_paths) + ([options.base] if options.base else [])
    every = [read_profile(p, notes) for p in paths]
    _check_kinds(every, paths)
    for profile, path in zip(every, paths):
        _warn_truncated(profile, path, notes)
        if profile.truncated is None and not profile.any_value():
            # Header, trailer and map only (a run killed before its first
            # flush, or too short to be sampled): say so, as the report is empty.
            notes.append(f"warning: {path}: the profile has no samples")
    main = every[0]
    combined = CombinedMap(main.mappings)
    addresses = [location_addresses(main)]
    for profile in every[1:]:
        raw = np.array(location_addresses(profile), dtype=np.uint64)
        addresses.append(translate(raw, profile.mappings, combined).tolist())
    # The main program's catch-all range ends at the first profile's highest
    # address, as in gperftools' pprof.
    max_pc = max(addresses[0], default=0)
    symbols = name_profiles(every, addresses, program, options, main.address_width,
                            combined.mappings, max_pc, notes.append, progress)
    base = every[-1] if options.base else None
    return Inputs(program=program, kind=main.kind, width=main.address_width,
                  profiles=every[:-1] if options.base else every, base=base,
                  addresses=addresses, mappings=combined.mappings, symbols=symbols, notes=notes,
                  paths=list(profile_paths))


@dataclass
class Report:
    """Everything a renderer needs: the filtered stacks and their reduction."""

    inputs: Inputs
    options: Options
    total: float                  # before frame removal and focus (pprof's Total:)
    symbols: dict                 # address -> frames, after --hide/--show
    flat: dict                    # key at the granularity -> flat value
    cum: dict                     # key -> cumulative value
    notes: List[str]
    # The address stacks after every filter (new minus base); None when the
    # totals came from arrays (bigprofile.py): then made on first read of
    # `profile`, for the outputs that walk the stacks.
    stacks: Optional[dict] = None

    @property
    def profile(self):
        """{stack of addresses (leaf first): value} after every filter."""
        if self.stacks is None:
            stacks = _combined_stacks(self.inputs, self.options, self.column)
            self.stacks, _ = _filter(stacks, self.inputs.symbols, self.kind, self.options, self.width, [])
        return self.stacks

    # ---- what the inputs say -------------------------------------------------
    @property
    def kind(self):
        return self.inputs.kind

    @property
    def program(self):
        return self.inputs.program

    @property
    def width(self):
        return self.inputs.width

    @property
    def profiles(self):
        """The profiles summed (the base is `inputs.base`)."""
        return self.inputs.profiles

    @property
    def main(self):
        return self.inputs.profiles[0]

    @property
    def program_name(self):
        """The program's name as the report prints it."""
        if self.program is not None:
            return self.program
        return self.main.program_name or ""

    @property
    def heap_records(self):
        # `--text --stacks` of a heap profile prints its records as read.
        if len(self.inputs.profiles) == 1 and self.inputs.base is None:
            return self.main.heap_records
        return None

    @property
    def column(self):
        return value_column(self.kind, self.options)

    # ---- other views of the same data ------------------------------------------
    def side(self, which, column=None):
        """The address stacks of one side alone ("new" or "base"), through
        the same filters (for the differential flame graph and the CI gate)."""
        column = self.column if column is None else column
        stacks, _ = _filter(self.inputs.stacks(which, column), self.inputs.symbols, self.kind,
                            self.options, self.width, [])
        return stacks

    def for_column(self, column):
        """The report's address stacks for another value column (heap
        profiles carry four; --proto writes them all)."""
        if column == self.column:
            return self.profile
        stacks, _ = _filter(_combined_stacks(self.inputs, self.options, column), self.inputs.symbols,
                            self.kind, self.options, self.width, [])
        return stacks

    def narrowed(self, focus=None, ignore=None, **option_changes):
        """This report with a further focus / ignore on its stacks and other
        report options (the interactive shell's commands)."""
        stacks = self.profile
        if focus:
            stacks = filters.focus_profile(stacks, self.symbols, compile_regex(focus, "focus"), self.width)
        if ignore:
            stacks = filters.ignore_profile(stacks, self.symbols, compile_regex(ignore, "ignore"), self.width)
        options = dataclasses.replace(self.options, **option_changes)
        return _reduced(self.inputs, options, self.total, stacks, self.symbols, [])

    def with_options(self, **changes):
        """A new report of the same inputs with other report options."""
        return analyze(self.inputs, dataclasses.replace(self.options, **changes))

    # ---- the object files, for listings ----------------------------------------
    def libraries(self):
        """[(path, start, limit, offset)] like pprof's $libs: the shared
        libraries of the combined memory map (the first profile's, for one
        run), then the main program."""
        if self.inputs.libraries is None:
            from pprof_py.symbolize import Symbolizer
            opts = self.options
            symbolizer = Symbolizer(self.program, opts.lib_prefixes, opts.strip_templates,
                                    use_cache=opts.use_cache, width=self.width, add_lib=opts.add_lib)
            max_pc = max(self.inputs.addresses[0], default=0)
            self.inputs.libraries = symbolizer.libraries(self.inputs.mappings, max_pc)
        return self.inputs.libraries

    def objtool(self):
        """The ObjTool (symbolize/objtool.py) listings read object and source
        files through; one per set of inputs, so each file is opened once."""
        with _OBJTOOL_LOCK:          # the web UI asks from several threads
            if self.inputs.objtool is None:
                from pprof_py.symbolize.objtool import ObjTool
                self.inputs.objtool = ObjTool(self.libraries(), self.options.use_cache)
            return self.inputs.objtool


# Older name, kept for code written against it.
Prepared = Report


def _combined_stacks(inputs, options, column):
    stacks = inputs.stacks("new", column)
    if inputs.base is not None:
        stacks = filters.subtract_profile(stacks, inputs.stacks("base", column), options.drop_negative)
    return stacks


def _filter(stacks, symbols, kind, options, width, notes):
    """pprof's RemoveUninterestingFrames, --focus, --ignore, then Go pprof's
    --hide/--show and --show_from; returns (stacks, symbols)."""
    stacks = filters.remove_uninteresting_frames(stacks, symbols, kind, notes, options.no_auto_signal_frames)
    if options.focus:
        stacks = filters.focus_profile(stacks, symbols, compile_regex(options.focus, "focus"), width)
    if options.ignore:
        stacks = filters.ignore_profile(stacks, symbols, compile_regex(options.ignore, "ignore"), width)
    if options.hide or options.show:
        stacks, symbols = filters.hide_show(
            stacks, symbols, compile_regex(options.hide, "hide") if options.hide else None,
            compile_regex(options.show, "show") if options.show else None, width)
    if options.show_from:
        stacks = filters.show_from(stacks, symbols, compile_regex(options.show_from, "show_from"), width)
    return stacks, symbols


def _reduced(inputs, options, total, stacks, symbols, notes):
    reduced = graph.reduce_profile(stacks, symbols, options.granularity, inputs.width, options.show_addresses)
    flat, cum = graph.flat_and_cumulative(reduced)
    return Report(inputs=inputs, options=options, total=total, stacks=stacks, symbols=symbols,
                  flat=flat, cum=cum, notes=notes)


def analyze(inputs, options, notes=None):
    """The report of `inputs` for `options`."""
    notes = notes if notes is not None else []
    column = value_column(inputs.kind, options)
    if bigprofile.applies(inputs, options, inputs.profiles[0]):
        made = bigprofile.totals(inputs, options, column, notes)
        if made is not None:
            total, flat, cum = made
            return Report(inputs=inputs, options=options, total=total, symbols=inputs.symbols,
                          flat=flat, cum=cum, notes=notes)
    stacks = _combined_stacks(inputs, options, column)
    total = filters.total(stacks)
    stacks, symbols = _filter(stacks, inputs.symbols, inputs.kind, options, inputs.width, notes)
    return _reduced(inputs, options, total, stacks, symbols, notes)


def prepare(program, profile_paths, options, notes=None, progress=None):
    """load() then analyze(): the report of one command line."""
    notes = notes if notes is not None else []
    inputs = load(program, profile_paths, options, notes, progress)
    return analyze(inputs, options, notes)


__all__ = ["Options", "Inputs", "Report", "Prepared", "load", "analyze", "prepare", "compile_regex",
           "value_column", "HEAP_COLUMNS", "CONTENTION_COLUMNS"]
