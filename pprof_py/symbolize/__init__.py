"""Symbolization: give every location of a Profile its frames.

This reproduces what gperftools' pprof computes with nm and addr2line, using
pyelftools only:

1. Object files come from the profile's executable mappings: paths that look
   like shared libraries, plus the mapping whose path is the main program
   given on the command line.  Each is searched under ``--lib_prefix``
   prefixes, and replaced by ``/usr/lib/debug<path>[.debug]`` when present.
   The mapping offset is corrected by .text's (vma - file offset).  The main
   program also gets a catch-all range [0, highest sampled address] with
   offset 0, so non-PIE executables need no mapping at all.
2. Addresses are assigned to objects by range, highest start first, so
   libraries win over the catch-all range.
3. For each address: the addr2line answer (DWARF functions with inlining,
   else the ELF symbol) and the nm answer (symbol ranges); pprof prefers
   nm's name when it agrees with addr2line's, because nm's names carry the
   symbol's start address and so tell apart same-named functions.
4. Names are shortened like pprof (argument lists, template arguments and
   return types removed); short names that stand for different symbols are
   displayed with ``@<address>`` appended in report keys (Symbols.display).

Each object file is opened once; DWARF is decoded only for compile units
that contain sampled addresses; results per object are cached on disk
(symbolize/cache.py).
"""
import bisect
import functools
import operator
import os
import re
import struct
from itertools import islice

from elftools.common.exceptions import DWARFError, ELFError

from pprof_py.errors import SymbolizationError
from pprof_py.formats.procmaps import SHARED_LIBRARY
from pprof_py.model import NO_LINE, Frame
from pprof_py.symbolize import cache as symcache
from pprof_py.symbolize import coldjobs, namecache
from pprof_py.symbolize.objfile import NOT_IN_TABLE, SHF_EXECINSTR, ObjectFile

# Frame((a, b, c)) without NamedTuple's Python-level __new__ (a third of
# the time of naming 100,000 distinct answers).
_make_frame = Frame._make
_ARGS = re.compile(r"\([^()]*\)(\s*const)?")
_TAG = re.compile(r"<[0-9a-f]*>$")
_TEMPLATE = re.compile(r"<[^<>]*>")
_LEADING_TYPE = re.compile(r"^.*\s+(\w+::)")


@functools.lru_cache(maxsize=1 << 18)
def short_function_name(name, strip_templates=True):
    """pprof's ShortFunctionName."""
    while True:
        new = _ARGS.sub("", name)
        if new == name:
            break
        name = new
    name = _TAG.sub("", name)
    if strip_templates:
        while True:
            new = _TEMPLATE.sub("", name)
            if new == name:
                break
            name = new
    return _LEADING_TYPE.sub(r"\1", name, count=1)


def find_library(path, prefixes):
    """pprof's FindLibrary: try each prefix with shorter and shorter suffixes
    of `path`; fall back to `path`."""
    suffix = path
    while True:
        for prefix in prefixes:
            candidate = prefix + suffix
            if os.path.exists(candidate):
                return candidate
        m = re.match(r"^/[^/]+(/.*)$", suffix)
        if not m:
            break
        suffix = m.group(1)
    return path


def debugging_library(path):
    if path.startswith("/"):
        for candidate in ("/usr/lib/debug" + path, "/usr/lib/debug" + path + ".debug"):
            if os.path.isfile(candidate):
                return candidate
    return None


class Symbolizer:
    def __init__(self, program, lib_prefixes=(), strip_templates=True, warn=None, use_cache=True,
                 width=16, progress=None, add_lib=None):
        self.program = program
        self.add_lib = add_lib          # --add_lib: see libraries()
        self.width = width
        self.progress = progress        # callable(label) -> object with update(done, total)
        self.lib_prefixes = list(lib_prefixes)
        self.strip_templates = strip_templates
        self.warn = warn or (lambda msg: None)
        self.use_cache = use_cache
        self._objects = {}

    def _open(self, path):
        if path not in self._objects:
            try:
                self._objects[path] = ObjectFile(path)
            except SymbolizationError as exc:
                # Like pprof, go on without names for this object; unlike
                # pprof, say so when it is the program the user named.
                if self.program and os.path.realpath(path) == os.path.realpath(self.program):
                    self.warn(f"warning: {exc}; frames in it are shown as addresses")
                self._objects[path] = None
        return self._objects[path]

    def libraries(self, mappings, max_pc):
        """pprof's ParseLibraries: [(path, start, limit, offset)].

        With no program on the command line (``pprof --text cpu.prof``, an
        extension over gperftools' pprof) the main executable is taken from
        the profile's first mapping that is not a shared library."""
        return [(path, start, limit, offset + (self._text_adjustment(path) if adjust else 0))
                for path, start, limit, offset, adjust in self._library_ranges(mappings, max_pc)]

    def _library_ranges(self, mappings, max_pc):
        """libraries() without opening the libraries: (path, start, limit,
        mapping offset, whether pprof adds .text's vma - file offset).  The
        ranges alone decide which object an address belongs to, so
        symbolize() opens only the objects that hold sampled addresses (a
        profile maps dozens of libraries; reading each one's section headers
        was half of a warm run on a small profile)."""
        if self.program is None:
            for m in mappings:
                if (m.path.startswith("/") and not SHARED_LIBRARY.match(m.path)
                        and os.path.isfile(m.path)):
                    self.program = m.path
                    break
        program = os.path.realpath(self.program) if self.program else None
        if program:
            self._check_program(program, mappings)
        result = []
        for m in mappings:
            if not (SHARED_LIBRARY.match(m.path) or (program and m.path == program)):
                continue
            if "\0" in m.path:       # no file has that name (a damaged proto mapping)
                continue
            path = find_library(m.path, self.lib_prefixes)
            result.append((path, m.start, m.limit, m.offset, not debugging_library(path)))
        if self.add_lib:
            # --add_lib: one more library, not relocated: the addresses of
            # its .text section (as linked) name its code, before the main
            # program's catch-all range (pprof's opt_lib entry).
            obj = self._open(self.add_lib)
            text = obj.headers.section_by_name(".text") if obj is not None else None
            if text is not None:
                start = text["sh_addr"]
                result.append((self.add_lib, start, start + text["sh_size"], start, False))
        if self.program:
            result.append((self.program, 0, max_pc, 0, False))
        return result

    def _text_adjustment(self, path):
        """pprof adds .text's (vma - file offset) of a library to its
        mapping offset (from `objdump -h`)."""
        obj = self._open(path)
        return obj.text_vma_minus_offset() if obj is not None else 0

    def symbolize(self, addresses, mappings, max_pc):
        """Map each address (int) to a list of (short name, file:line, full
        name) triples, outermost first, like pprof's $symbols.  `max_pc` ends
        the main program's catch-all range: pprof takes it from the first
        profile it reads only, so addresses of other profiles above it stay
        unnamed."""
        symbols = Symbols()
        if not addresses:
            return symbols
        pending = list(addresses)
        if not all(map(operator.lt, pending, islice(pending, 1, None))):
            pending = sorted(set(pending))
        libs = self._library_ranges(mappings, max_pc)
        jobs = []           # (object file to read, bias, its addresses, the program's path or None)
        # Highest start first; Python's sort is stable like Perl's mergesort.
        for path, start, limit, offset, adjust in sorted(libs, key=lambda l: -l[1]):
            # `pending` is sorted: the addresses in [start, limit] are one slice of it.
            lo, hi = bisect.bisect_left(pending, start), bisect.bisect_right(pending, limit)
            if lo >= hi:
                continue
            contained = pending[lo:hi]
            del pending[lo:hi]
            if adjust:
                offset += self._text_adjustment(path)
            is_program = bool(self.program) and os.path.realpath(path) == os.path.realpath(self.program)
            jobs.append((debugging_library(path) or path, start - offset, contained,
                         path if is_program else None))
        done = coldjobs.run_cold_jobs_in_parallel(self, jobs)
        if not done and len(jobs) > 1:
            coldjobs.prefetch_cold(self, jobs)
        for k, (image, bias, contained, program_path) in enumerate(jobs):
            self._map_to_symbols(image, bias, contained, symbols, done.get(k))
            if program_path is not None:
                self._check_addresses(program_path, contained, bias, symbols)
        _disambiguate(symbols)
        return symbols

    def object_answers(self, obj, image, bias, pcs, progress=True):
        """symcache.object_symbols of one object's addresses, with a
        progress bar when the Symbolizer has one."""
        bar = self.progress(f"symbolizing {os.path.basename(image)}") if self.progress and progress else None
        try:
            return symcache.object_symbols(obj, [pc - bias for pc in pcs], self.use_cache,
                                           bar.update if bar else None, warn=self.warn)
        finally:
            if bar is not None:
                bar.close()

    def _map_to_symbols(self, image, bias, pcs, symbols, answered=None):
        """Name `pcs` (addresses of `image` mapped at `bias`) into `symbols`.
        `answered`: (object_answers' result, DWARF damage note, the warnings
        it gave) when coldjobs made it already."""
        obj = self._open(image)
        if obj is None:
            return
        if answered is None and self.use_cache:
            # The last big query of this object, if it asked about these
            # very addresses (namecache.py): its finished frames.
            named = namecache.load(obj, [pc - bias for pc in pcs], self.strip_templates, _make_frame, self.warn)
            if named is not None:
                symbols.update(zip(pcs, named))
                return
        if answered is not None:
            for message in answered[2]:
                self.warn(message)
        try:
            rels, answers, nm_names = answered[0] if answered else self.object_answers(obj, image, bias, pcs)
        except (ELFError, DWARFError, ValueError, IndexError, KeyError, struct.error, OSError) as exc:
            # A damaged object file: report it and leave its frames unnamed
            # rather than stop the whole report.
            self.warn(f"warning: cannot read symbols of {image}: {exc}; its frames are shown as addresses")
            return
        if getattr(obj, "dwarf_damage", None):
            self.warn(f"warning: damaged debug info in {image} ({obj.dwarf_damage}); "
                      f"using its symbol table only")
        # Equal (answer, nm name) pairs give equal triples: build each once
        # and share the list, so later stages can memoize on identity.
        keys = list(zip(map(id, answers), nm_names))
        if len(rels) == len(pcs) and NOT_IN_TABLE not in set(nm_names):
            # (pcs are sorted and unique, so rels are pcs - bias in order.)
            # One Python call per distinct pair, the rest in C: a big
            # profile has 700,000 addresses and 110,000 distinct pairs.
            made = {key: self._triples(frames, key[1], False)
                    for key, frames in dict(zip(keys, answers)).items()}
            named = list(map(made.__getitem__, keys))
            symbols.update(zip(pcs, named))
            if self.use_cache and not getattr(obj, "dwarf_damage", None):
                namecache.store(obj, rels, self.strip_templates, named)
            return
        memo = {}
        for rel, frames, nm_full in zip(rels, answers, nm_names):
            pc = rel + bias
            if nm_full == NOT_IN_TABLE:
                symbols[pc] = self._triples(frames, "0x%0*x" % (self.width, pc), True)
                continue
            key = (id(frames), nm_full)
            triples = memo.get(key)
            if triples is None:
                triples = memo[key] = self._triples(frames, nm_full, False)
            symbols[pc] = triples

    def _triples(self, frames, nm_full, nm_is_address):
        """pprof's MapToSymbols for one address: addr2line's lines, with
        nm's name preferred where it agrees (nm tags names with their start
        address, which tells same-named functions apart)."""
        if nm_full is not None:
            nm_short = nm_full if nm_is_address else short_function_name(nm_full, self.strip_templates)
        triples = []
        for fullfunction, fileline in frames:      # innermost first
            function = short_function_name(fullfunction, self.strip_templates)
            if nm_full is not None and (fullfunction == "??" or nm_full.startswith(function)):
                function, fullfunction = nm_short, nm_full
            triples.append(_make_frame((function, fileline, fullfunction)))
        triples.reverse()                          # outermost first
        return tuple(triples)

    def _main_mapping(self, program, mappings):
        """The profile's mapping of the program: one with the program's
        path, else one with its file name, else the profile's first
        executable mapping that is not a shared library (the program the
        profile was recorded from); None when the profile has no maps."""
        base = os.path.basename(program)
        candidates = [m for m in mappings if m.path.startswith("/") and not SHARED_LIBRARY.match(m.path)]
        for test in (lambda m: m.path == program, lambda m: os.path.basename(m.path) == base, lambda m: True):
            for m in candidates:
                if test(m):
                    return m
        return None

    def _check_program(self, program, mappings):
        """Warn (once, one line) when the program given is not the build
        the profile was recorded from, by build-id: the one a mapping
        carries (profile.proto), or else that of the file the profile's
        mapping names when it is another file than the one given.  Where
        neither can be compared: the layout of the program's code against
        the profile's mapping of it, and then symbolize() looks at the
        sampled addresses (_check_addresses)."""
        self._mismatch_checked = False
        main = self._main_mapping(program, mappings)
        if main is None:
            return
        mine = self._open(program)
        if mine is None or not mine.build_id:
            return
        theirs_id, theirs_path = main.build_id, main.path
        if not theirs_id and main.path != program and os.path.isfile(main.path):
            theirs = self._open(main.path)
            theirs_id = theirs.build_id if theirs is not None else ""
        if not theirs_id:
            if not self._layout_matches(mine, main):
                self._mismatch_checked = True
                self.warn(f"warning: the code of {self.program} is not laid out as the profile's mapping "
                          f"of {main.path} ({main.limit - main.start:#x} bytes at file offset {main.offset:#x}"
                          f", address {main.start:#x}): is it the binary the profile was recorded from?")
            return
        self._mismatch_checked = True
        if theirs_id.lower() != mine.build_id.lower():
            self.warn(f"warning: {self.program} (build-id {mine.build_id[:12]}) is not the binary "
                      f"the profile was recorded from ({theirs_path}, build-id {theirs_id[:12]}); "
                      f"names may be wrong")

    @staticmethod
    def _layout_matches(obj, mapping):
        """Could `mapping` (an executable mapping from /proc/self/maps) be
        one of obj's executable PT_LOAD segments?  The kernel maps a segment
        from its file offset rounded down to a page, to its end rounded up;
        an ET_EXEC program is mapped at its own addresses.  Page sizes of
        4, 16 and 64 KiB are tried (the profile may come from another
        machine).  Mappings without a file offset (pprof's "cooked" maps)
        are not judged."""
        if mapping.offset == 0 and mapping.start == 0:
            return True
        try:
            segments = [seg for seg in obj.load_bias_candidates() if seg["p_flags"] & 1]
            fixed = obj.headers.e_type == "ET_EXEC"
        except Exception:       # an unusual ELF: no verdict
            return True
        if not segments:
            return True
        for seg in segments:
            for page in (0x1000, 0x4000, 0x10000):
                first = seg["p_offset"] & ~(page - 1)
                end = (seg["p_offset"] + seg["p_filesz"] + page - 1) & ~(page - 1)
                if mapping.offset != first or mapping.limit - mapping.start != end - first:
                    continue
                if not fixed or mapping.start == seg["p_vaddr"] & ~(page - 1):
                    return True
        return False

    def _check_addresses(self, program, contained, bias, symbols):
        """For profiles without build-ids: warn when none of the sampled
        addresses the program was asked to name lies in its code, or none
        got a symbol from it (a program with no symbols at all is not
        judged by names)."""
        # Once: the first range of the program symbolize() names is its own
        # mapping (PIE) or the catch-all range (non-PIE).
        if getattr(self, "_mismatch_checked", True):
            return
        self._mismatch_checked = True
        obj = self._open(program)
        if obj is None or not contained:
            return
        in_code = 0
        for pc in contained:
            i = obj.section_index_of(pc - bias)
            if i is not None and obj._sections[i]["sh_flags"] & SHF_EXECINSTR:
                in_code += 1
        if in_code == 0:
            self.warn(f"warning: none of the {len(contained)} sampled addresses of the program is in "
                      f"the code of {self.program}: is it the binary the profile was recorded from?")
            return
        named = any(any(short != "??" and not short.startswith("0x") for short, _fl, _full in symbols.get(pc, ()))
                    for pc in contained)
        # Only when nothing got a name is the nm table built (a third of a
        # warm run on cc1) to tell "no symbols at all" from a wrong binary.
        if not named and len(obj.nm_table()[2]):
            self.warn(f"warning: none of the {len(contained)} sampled addresses of the program resolves "
                      f"to a symbol of {self.program}: is it the binary the profile was recorded from?")


class Symbols(dict):
    """address -> [(short name, file:line, full name)], outermost first, as
    pprof's $symbols holds them, plus ``display``: pprof's
    fullname-to-shortname map ({full name: "short@address"}, see
    _disambiguate).  Like pprof, only the report keys (graph.py, pprof's
    TranslateStack) use the map; --stacks, --collapsed, callgrind, focus
    and ignore see the plain short names."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.display = {}


def _disambiguate(symbols):
    """pprof's FillFullnameToShortnameMap: short names shared by symbols at
    different addresses (full names tagged ``<address>`` by the nm table)
    are displayed as ``name@address``.  Fills ``symbols.display``; the
    triples themselves keep the plain short names."""
    unique = list({id(t): t for t in symbols.values()}.values())
    seen_once = {}
    ambiguous = set()
    for triples in unique:
        short, _, full = triples[0]
        if not re.search(r"<[0-9a-fA-F]+>$", full):
            continue
        if short in seen_once and seen_once[short] != full:
            ambiguous.add(short)
        else:
            seen_once[short] = full
    if not ambiguous:
        return
    for triples in unique:
        short, _, full = triples[0]
        if full in symbols.display:
            continue
        if short in ambiguous:
            m = re.search(r"<0*([^>]*)>$", full)
            if m:
                symbols.display[full] = f"{short}@{m.group(1)}"


def symbols_from_names(addresses, names, width, strip_templates=True):
    """Symbols of a symbolized (`--raw`) profile: each address's names as the
    file lists them ("outer--inlined"), file:line unknown ("?"); addresses
    the file does not name are named by their value, as pprof does."""
    symbols = Symbols()
    for address in addresses:
        text = names.get(address)
        if text is None:
            text = "0x%0*x" % (width, address)
        symbols[address] = tuple(Frame(short_function_name(full, strip_templates), NO_LINE, full)
                                 for full in text.split("--"))
    _disambiguate(symbols)
    return symbols
