"""One ELF object file: its symbol tables and identity, read once.

Two symbol views are built, because gperftools' pprof combines two tools and
we must give the same names it gives:

* ``nm_table``: what ``nm -n --demangle`` lists (``nm -D`` when the file has
  no .symtab), turned into address ranges the way pprof does: symbols sorted
  by address, one per address (the first by name, tagged ``name<hex
  start>``, unless a later one at that address is a text symbol ``t``/``T``,
  which replaces it untagged), each range running to the next symbol's
  address.
* ``function_symbol_at``: the symbol ``addr2line`` names when DWARF has no
  function for an address (BFD's elf_find_function: the closest preceding
  FUNC/NOTYPE/IFUNC symbol of the same section, ties broken by size).

Both are built from the raw symbol table in plain Python (struct unpacks the
table into columns; names are decoded only for the symbols kept).  numpy is
not used here: importing it costs more (50 ms) than building the tables of
a 20,000-symbol library, and a cold run of a small profile would pay it.
"""
import bisect
import os
import struct

from elftools.common.exceptions import ELFError

from pprof_py.errors import SymbolizationError
from pprof_py.files import open_regular
from pprof_py.symbolize.demangle import demangle
from pprof_py.symbolize.elfheaders import ElfHeaders

SHN_UNDEF = 0
SHN_ABS = 0xfff1
SHN_COMMON = 0xfff2
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_COMMON, STT_TLS = 0, 1, 2, 3, 4, 5, 6
STT_GNU_IFUNC = 10
STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
SHF_EXECINSTR = 0x4

# nm_lookup's answer for an address past the last symbol of a non-empty
# table: pprof then names the frame by its absolute address ("0x...").
NOT_IN_TABLE = ""

# ELF symbol table entries (Elf64_Sym, Elf32_Sym): field names and struct
# codes in file order.
SYM64 = (("name", "info", "other", "shndx", "value", "size"), "IBBHQQ")
SYM32 = (("name", "value", "size", "info", "other", "shndx"), "IIIBBH")


class SymbolColumns:
    """A raw ELF symbol table as columns: ``syms["value"][i]`` is symbol
    i's st_value (a tuple per field, in table order); len() is the number
    of entries, the null entry 0 included."""

    def __init__(self, data, is64, little_endian):
        fields, codes = SYM64 if is64 else SYM32
        fmt = ("<" if little_endian else ">") + codes
        size = struct.calcsize(fmt)
        count = len(data) // size
        rows = struct.iter_unpack(fmt, memoryview(data)[:count * size])
        columns = list(zip(*rows)) if count else [()] * len(fields)
        self._columns = dict(zip(fields, columns))
        self._count = count

    def __getitem__(self, field):
        return self._columns[field]

    def __len__(self):
        return self._count


class _NmTable:
    """ObjectFile.nm_table()'s (starts, ends, full names), built by `build`
    the first time it is unpacked or indexed."""

    def __init__(self, build):
        self._build = build
        self._value = None

    @property
    def built(self):
        return self._value is not None

    def _table(self):
        if self._value is None:
            self._value = self._build()
        return self._value

    def __iter__(self):
        return iter(self._table())

    def __getitem__(self, i):
        return self._table()[i]

    def __len__(self):
        return 3


class _DemangledNames:
    """The names of the nm table, each demangled when first read: a cold
    run reads a few hundred of them, and demangling all (28,000 in gcc's
    cc1) took a third of its time.  `entries` holds names and entries to
    make them from with `make`."""

    def __init__(self, entries, make):
        self._entries = entries
        self._make = make

    def __len__(self):
        return len(self._entries)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        name = self._entries[i]
        if not isinstance(name, str):
            name = self._entries[i] = self._make(name)
        return name

    def __iter__(self):
        return (self[i] for i in range(len(self._entries)))


class ObjectFile:
    def __init__(self, path):
        self.path = path
        try:
            # Never blocks (a map may name a FIFO) and refuses devices.
            self._file = open_regular(path)
        except OSError as exc:
            raise SymbolizationError(f"{path}: cannot open: {exc.strerror or exc}") from None
        try:
            # The headers are read with struct (elfheaders.py); pyelftools'
            # ELFFile is made on first use of `elf` (DWARF, versions, PLT).
            self.headers = ElfHeaders(self._file)
            self._sections = self.headers.sections
            self._check_sections(path)
        except OSError as exc:          # e.g. /proc/self/mem: EIO
            self._file.close()
            raise SymbolizationError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except (ELFError, struct.error, ValueError) as exc:
            self._file.close()
            raise SymbolizationError(f"{path}: not an ELF file or damaged ({exc})") from None
        self._elf = None
        self.is64 = self.headers.elfclass == 64
        self.hex_width = 16 if self.is64 else 8
        self._nm = None
        self._funcsyms = None
        self._has_fini = None           # see has_fini
        self._symtab_cache = {}

    def close(self):
        self._file.close()

    @property
    def elf(self):
        """pyelftools' ELFFile of this file, made (and pyelftools imported)
        on first use: a warm run never needs it."""
        if self._elf is None:
            from elftools.elf.elffile import ELFFile
            self._elf = ELFFile(self._file)
        return self._elf

    def _check_sections(self, path):
        """Every section with contents lies inside the file, so that no
        reader allocates or seeks by a damaged size (sh_size 2^40) or offset
        (2^50).  pyelftools reads what the section table says."""
        size = os.fstat(self._file.fileno()).st_size
        for sec in self._sections:
            if sec["sh_type"] == "SHT_NOBITS" or sec["sh_size"] == 0:
                continue
            if sec["sh_offset"] > size or sec["sh_size"] > size - sec["sh_offset"]:
                self._file.close()
                raise SymbolizationError(
                    f"{path}: damaged ELF file: section {sec.name or '#?'} (offset {sec['sh_offset']}, "
                    f"size {sec['sh_size']}) extends past the end of the file ({size} bytes)")
        entsize = self.headers.e_shentsize
        if self.headers.e_shnum and self.headers.e_shoff + self.headers.e_shnum * entsize > size:
            self._file.close()
            raise SymbolizationError(f"{path}: damaged ELF file: section table past the end of the file")

    # ---- identity -------------------------------------------------------
    @property
    def build_id(self):
        if not hasattr(self, "_build_id"):
            self._build_id = self.headers.build_id()
        return self._build_id

    def debuglink(self):
        sec = self.headers.section_by_name(".gnu_debuglink")
        if sec is None:
            return None
        data = sec.data()
        return data.split(b"\0", 1)[0].decode("utf-8", "replace")

    def has_dwarf(self):
        return self.headers.section_by_name(".debug_info") is not None

    def separate_debug_path(self):
        """Where addr2line (BFD) finds this file's separate debug info: by
        build-id under /usr/lib/debug/.build-id, else by .gnu_debuglink next
        to the file, in its .debug/ folder, or under /usr/lib/debug."""
        build_id = self.build_id
        candidates = []
        if build_id and len(build_id) > 2:
            candidates.append(f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug")
        link = self.debuglink()
        if link:
            directory = os.path.dirname(os.path.realpath(self.path))
            candidates += [os.path.join(directory, link), os.path.join(directory, ".debug", link),
                           "/usr/lib/debug" + directory + "/" + link]
        for candidate in candidates:
            if os.path.isfile(candidate) and os.path.realpath(candidate) != os.path.realpath(self.path):
                return candidate
        return None

    def dwarf_object(self):
        """The ObjectFile that carries this file's DWARF (itself, a separate
        debug file, or None)."""
        if not hasattr(self, "_dwarf_object"):
            self._dwarf_object = None
            if self.has_dwarf():
                self._dwarf_object = self
            else:
                path = self.separate_debug_path()
                if path:
                    try:
                        other = ObjectFile(path)
                        if other.has_dwarf():
                            self._dwarf_object = other
                    except SymbolizationError:
                        pass
        return self._dwarf_object

    def dwarf_sections(self):
        """This file's .debug_* sections (dwarfsections.DwarfSections), one
        reader per file, so that a section inflated ahead of time (see
        prefetch_debug_info) is there when the DWARF index reads it."""
        if not hasattr(self, "_dwarf_sections"):
            from pprof_py.symbolize.dwarfsections import DwarfSections
            self._dwarf_sections = DwarfSections(self.headers)
        return self._dwarf_sections

    def prefetch_debug_info(self):
        """Start inflating the .debug_info this file's DWARF lives in (in a
        thread; see DwarfSections.prefetch).  A damaged section is left for
        the reader to report."""
        dwarf = self.dwarf_object()
        if dwarf is not None:
            try:
                dwarf.dwarf_sections().prefetch(".debug_info")
            except ValueError:
                pass

    def text_vma_minus_offset(self):
        """pprof adjusts a mapping's offset by .text's (vma - file offset),
        as read from `objdump -h`."""
        sec = self.headers.section_by_name(".text")
        if sec is None:
            return 0
        return sec["sh_addr"] - sec["sh_offset"]

    def load_bias_candidates(self):
        return [seg for seg in self.headers.segments if seg["p_type"] == "PT_LOAD"]

    # ---- raw symbol tables ----------------------------------------------
    def _raw_symbols(self, section_name):
        """(array of symbols, string table bytes, section) or None."""
        if section_name in self._symtab_cache:
            return self._symtab_cache[section_name]
        sec = self.headers.section_by_name(section_name)
        result = None
        if sec is not None and sec["sh_size"] > 0 and sec["sh_type"] in ("SHT_SYMTAB", "SHT_DYNSYM"):
            strtab = self._sections[sec["sh_link"]]
            syms = SymbolColumns(sec.data(), self.is64, self.headers.little_endian)
            result = (syms, strtab.data(), sec)
        self._symtab_cache[section_name] = result
        return result

    @staticmethod
    def _name(strtab, offset):
        end = strtab.find(b"\0", offset)
        return strtab[offset:end if end >= 0 else None].decode("utf-8", "surrogateescape")

    def _versions(self, dynsym_count):
        """For .dynsym: (raw .gnu.version entries, {index: (name, hidden)}),
        the version suffixes `nm -D` prints ("@@V" default, "@V" hidden).

        Indices come from two tables: .gnu.version_d (versions this object
        defines; "@" only when the entry's hidden bit is set) and
        .gnu.version_r (versions it needs from other objects).  A *defined*
        symbol can carry a needed version: a copy-relocated libc variable
        such as stdout in a PIE (`stdout@GLIBC_2.2.5`); BFD always prints
        those with a single "@"."""
        versym = self.headers.section_by_name(".gnu.version")
        verdef = self.headers.section_by_name(".gnu.version_d")
        verneed = self.headers.section_by_name(".gnu.version_r")
        if versym is None or (verdef is None and verneed is None):
            return None
        order = "<" if self.headers.little_endian else ">"
        names = {}
        # Elf_Verdef: vd_version, vd_flags, vd_ndx, vd_cnt (u16), vd_hash,
        # vd_aux, vd_next (u32); its first Elf_Verdaux (vda_name, vda_next)
        # names the version.  sh_info entries, chained by vd_next.
        for ndx, _count, name in self._version_chain(verdef, order + "HHHHIII", (2, 3, 5, 6), order + "II", 0):
            if name is not None:
                names[ndx] = (name, False)
        # Elf_Verneed: vn_version, vn_cnt (u16), vn_file, vn_aux, vn_next
        # (u32); each of its vn_cnt Elf_Vernaux (vna_hash u32, vna_flags,
        # vna_other u16, vna_name, vna_next u32) names a needed version.
        if verneed is not None:
            for other, name in self._needed_versions(verneed, order):
                names.setdefault(other, (name, True))
        data = versym.data()
        count = min(dynsym_count, len(data) // 2)
        raw = struct.unpack_from(f"{order}{count}H", data) if count else ()
        return raw, names

    def _version_strings(self, sec):
        link = sec["sh_link"]
        return self._sections[link].data() if 0 < link < len(self._sections) else b""

    def _version_chain(self, sec, fmt, fields, aux_fmt, name_field):
        """(vd_ndx, vd_cnt, name of the first aux entry) of each Elf_Verdef."""
        if sec is None:
            return
        data, strings = sec.data(), self._version_strings(sec)
        ndx_at, cnt_at, aux_at, next_at = fields
        pos = 0
        for _ in range(min(sec["sh_info"], len(data))):
            if pos + struct.calcsize(fmt) > len(data):
                break
            entry = struct.unpack_from(fmt, data, pos)
            aux = pos + entry[aux_at]
            name = None
            if entry[cnt_at] and aux + struct.calcsize(aux_fmt) <= len(data):
                name = self._name(strings, struct.unpack_from(aux_fmt, data, aux)[name_field])
            yield entry[ndx_at], entry[cnt_at], name
            if not entry[next_at]:
                break
            pos += entry[next_at]

    def _needed_versions(self, sec, order):
        """(vna_other, name) of every Elf_Vernaux of .gnu.version_r."""
        data, strings = sec.data(), self._version_strings(sec)
        pos = 0
        for _ in range(min(sec["sh_info"], len(data))):
            if pos + 16 > len(data):
                break
            _version, count, _file, aux_off, next_off = struct.unpack_from(order + "HHIII", data, pos)
            aux = pos + aux_off
            for _ in range(min(count, len(data))):
                if aux + 16 > len(data):
                    break
                _hash, _flags, other, name, aux_next = struct.unpack_from(order + "IHHII", data, aux)
                yield other, self._name(strings, name)
                if not aux_next:
                    break
                aux += aux_next
            if not next_off:
                break
            pos += next_off

    # ---- nm view --------------------------------------------------------
    def nm_table(self):
        """(starts, ends, full names): pprof's ranges from nm output, sorted.

        Returned as an _NmTable that is built on first use (unpacking or
        indexing it): a caller that only asks for it without reading it, as
        the symbol cache's warm path does before reading has_fini, pays
        nothing; building it costs a third of a warm run's CPU time on a
        python3 profile (libpython: 20,000 symbols to name and demangle)."""
        if self._nm is None:
            self._nm = _NmTable(self._build_nm_table)
        return self._nm

    def _build_nm_table(self):
        table = self._nm_from("symtab")
        self.nm_source = "symtab"
        if table is None or not len(table[0]):
            table = self._nm_from("dynsym")
            self.nm_source = "dynsym"
        if table is None:
            table = ([], [], [])
        if self._has_fini is None:
            self._has_fini = False
        return table

    @property
    def has_fini(self):
        """Whether the nm listing pprof reads has a `_fini` line: pprof runs
        `addr2line -i` (inlined frames) only for such objects, using _fini's
        address as a separator.  Known from the nm table once it is built,
        and otherwise found without building it (_fini_in_nm_listing)."""
        if self._has_fini is None:
            if self._nm is not None and self._nm.built:
                self._has_fini = False
            else:
                self._has_fini = self._fini_in_nm_listing()
        return self._has_fini

    @staticmethod
    def _nm_kept(syms):
        """Indices of the symbols nm lists (and pprof reads): defined,
        named, not section or file symbols (entry 0 is the null symbol)."""
        return [i for i, (shndx, info, name) in enumerate(zip(syms["shndx"], syms["info"], syms["name"]))
                if i and shndx != SHN_UNDEF and name and (info & 0xf) not in (STT_SECTION, STT_FILE)]

    def _version_suffix(self, i, name, shndx, versions):
        """The version `nm -D` appends to dynamic symbol `i` ("" for none)."""
        if versions is None:
            return ""
        raw_versions, vnames = versions
        v = int(raw_versions[i])
        ndx = v & 0x7fff
        if ndx > 1 and ndx in vnames:
            vname, needed = vnames[ndx]
            if not (shndx == SHN_ABS and vname == name):
                return ("@" if needed or v & 0x8000 else "@@") + vname
        return ""

    def _fini_in_nm_listing(self):
        """has_fini without the nm table: some listed symbol is named
        `_fini` and is the first at its address in nm -n's (address, name)
        order (pprof only looks at the first line of an address)."""
        for which in (".symtab", ".dynsym"):
            raw = self._raw_symbols(which)
            if raw is None:
                continue
            syms, strtab, _ = raw
            keep = self._nm_kept(syms)
            if not keep:
                continue                  # nm_table falls back to .dynsym too
            versions = self._versions(len(syms)) if which == ".dynsym" else None
            # String tables share suffixes ("__libc_fini\0" holds "_fini\0"),
            # so a name is "_fini" when its offset is any occurrence of it.
            offsets = set()
            pos = strtab.find(b"_fini\0")
            while pos >= 0:
                offsets.add(pos)
                pos = strtab.find(b"_fini\0", pos + 1)

            def listed_name(j):
                name = self._name(strtab, int(syms["name"][j]))
                return name + self._version_suffix(j, name, int(syms["shndx"][j]), versions)
            name_offsets, values = syms["name"], syms["value"]
            for i in [i for i in keep if name_offsets[i] in offsets]:
                if listed_name(i) != "_fini":
                    continue
                same = [j for j in keep if values[j] == values[i]]
                if all(listed_name(j).encode("utf-8", "surrogateescape") >= b"_fini" for j in same):
                    return True
            return False
        return False

    def _nm_from(self, which):
        raw = self._raw_symbols(".symtab" if which == "symtab" else ".dynsym")
        if raw is None:
            return None
        syms, strtab, _ = raw
        idx = self._nm_kept(syms)
        if not idx:
            return ([], [], [])
        exec_sections = {i for i, sec in enumerate(self._sections) if sec["sh_flags"] & SHF_EXECINSTR}
        versions = self._versions(len(syms)) if which == "dynsym" else None
        all_names, all_shndx, all_info, all_values = syms["name"], syms["shndx"], syms["info"], syms["value"]

        names = []          # as nm prints them, before demangling
        suffixes = []       # version suffix ("@@V", "@V" or "")
        for i in idx:
            name = self._name(strtab, all_names[i])
            suffix = self._version_suffix(i, name, all_shndx[i], versions)
            names.append(name + suffix)
            suffixes.append(suffix)
        values = [all_values[i] for i in idx]
        # nm's t/T: a local or global symbol, not an IFUNC, in an executable section
        is_text = [all_shndx[i] in exec_sections and (all_info[i] >> 4) in (STB_LOCAL, STB_GLOBAL)
                   and (all_info[i] & 0xf) != STT_GNU_IFUNC for i in idx]

        def demangled(k):
            # nm --demangle demangles the name and keeps the version suffix
            suffix = suffixes[k]
            return demangle(names[k][:len(names[k]) - len(suffix)]) + suffix

        # nm -n: by address, then by (mangled) name.  pprof's
        # GetProcedureBoundariesViaNm reads that listing line by line:
        # the first symbol at an address is queued and tagged with its start
        # ("name<start>") when the next address comes; a later text symbol
        # (t/T) at the same address replaces it *untagged* (the tag is only
        # added on the first line of an address).  So of a C1/C2 constructor
        # pair only the plain name survives, and two such names (two
        # constructors of one class) are not told apart by
        # FillFullnameToShortnameMap: google-pprof reports them as one row.
        raw_names = [n.encode("utf-8", "surrogateescape") for n in names]
        order = sorted(range(len(names)), key=lambda k: (values[k], raw_names[k]))
        fmt = "%0" + str(self.hex_width) + "x"
        starts, full = [], []
        last = None
        for k in order:
            v = values[k]
            if v == last:
                if is_text[k]:
                    full[-1] = demangled(k)
                continue
            if names[k] == "_fini":
                self._has_fini = True
            last = v
            starts.append(v)
            full.append((k, "<" + (fmt % v) + ">"))     # "name<start>", demangled when read
        ends = starts[1:] + [starts[-1]]
        # pprof keeps the routines in a hash keyed by name: of two routines
        # with one (untagged) name only the last range survives, and the
        # addresses of the lost one fall to the next routine of the table.
        # (Tagged names are unique: each start is tagged once.)
        last_of = {name: j for j, name in enumerate(full) if isinstance(name, str)}
        if any(isinstance(name, str) and last_of[name] != j for j, name in enumerate(full)):
            keep_rows = [j for j, name in enumerate(full) if not isinstance(name, str) or last_of[name] == j]
            starts = [starts[j] for j in keep_rows]
            ends = [ends[j] for j in keep_rows]
            full = [full[j] for j in keep_rows]
        return (starts, ends, _DemangledNames(full, lambda entry: demangled(entry[0]) + entry[1]))

    def build_function_symbols(self):
        """Build addr2line's function-symbol table now (it is otherwise
        built on first use): a cold run does it while .debug_info inflates
        in its thread."""
        self._function_symbols()

    def names_only_exported(self):
        """True for a stripped object: nm's names come from .dynsym alone,
        so a function that is not exported is named after the exported
        symbol before it (which is what nm, and so pprof, print)."""
        self.nm_table()[0]            # builds the (lazy) table, which sets nm_source
        return self.nm_source == "dynsym" and self.dwarf_object() is None

    def nm_lookup(self, address):
        """pprof's MapSymbolsWithNM for one (file-relative) address: the full
        nm name (tagged with its start) or None."""
        starts, ends, full = self.nm_table()
        if not len(full):
            return None
        i = bisect.bisect_right(ends, address)
        if i >= len(full) - 1:
            i = len(full) - 1
        if address < ends[i]:
            return full[i]
        return NOT_IN_TABLE

    # ---- addr2line's symbol fallback -------------------------------------
    def _function_symbols(self):
        if self._funcsyms is not None:
            return self._funcsyms
        raw = self._raw_symbols(".symtab") or self._raw_symbols(".dynsym")
        entries = {}
        self._file_of = {}
        if raw is not None:
            syms, strtab, _ = raw
            # BFD names the source file of a local symbol after the STT_FILE
            # symbol that precedes it in the table.
            file_positions = []
            values, sizes = syms["value"], syms["size"]
            for i, (info, shndx, name) in enumerate(zip(syms["info"], syms["shndx"], syms["name"])):
                kind = info & 0xf
                if kind == STT_FILE:
                    file_positions.append(i)
                elif kind in (STT_FUNC, STT_NOTYPE, STT_GNU_IFUNC) and SHN_UNDEF < shndx < 0xff00 and name:
                    entries.setdefault(shndx, []).append((values[i], sizes[i], kind, i))
            for lst in entries.values():
                lst.sort()
            self._file_positions = file_positions
        self._funcsyms = (raw, entries)
        return self._funcsyms

    def section_index_of(self, address):
        """Index of the allocated section holding `address`, or None."""
        if not hasattr(self, "_alloc_sections"):
            spans = sorted((sec["sh_addr"], sec["sh_addr"] + sec["sh_size"], i)
                           for i, sec in enumerate(self._sections)
                           if sec["sh_flags"] & 0x2 and sec["sh_size"] > 0)
            self._alloc_sections = spans
            self._alloc_starts = [span[0] for span in spans]
        k = bisect.bisect_right(self._alloc_starts, address) - 1
        while k >= 0:
            lo, hi, i = self._alloc_sections[k]
            if lo <= address < hi:
                return i
            k -= 1
            if k >= 0 and self._alloc_sections[k][1] <= address and lo > self._alloc_sections[k][0]:
                break
        return None

    def in_sized_symbol(self, address):
        """Does a function symbol of the table (.symtab, else .dynsym)
        cover `address` with its st_size?  In a stripped object an address
        outside every exported function's extent is named after the
        nearest exported symbol before it only for want of another name."""
        raw, entries = self._function_symbols()
        shndx = self.section_index_of(address)
        if raw is None or shndx is None:
            return False
        lst = entries.get(shndx, [])
        for value, size, _type, _index in reversed(lst[:bisect.bisect_right(lst, (address, float("inf")))]):
            if address < value + size:
                return True
        return False

    def function_symbol_at(self, address):
        """(name, value, source file or None) of the symbol BFD's
        elf_find_function picks for `address`, or None."""
        raw, entries = self._function_symbols()
        shndx = self.section_index_of(address)
        if raw is None or shndx is None or shndx not in entries:
            return None
        lst = entries[shndx]
        hi = bisect.bisect_right(lst, (address, float("inf")))
        if hi == 0:
            return None
        best_off = lst[hi - 1][0]
        best = None
        # Among the symbols at the closest start, BFD's better_fit prefers the
        # one that covers the address, then the smaller, then FUNC over NOTYPE.
        j = hi - 1
        while j >= 0 and lst[j][0] == best_off:
            cand = lst[j]
            if best is None:
                best = cand
            else:
                best_covers = best[0] + best[1] > address
                cand_covers = cand[0] + cand[1] > address
                if cand_covers and not best_covers:
                    best = cand
                elif cand_covers == best_covers:
                    if cand_covers and cand[1] < best[1]:
                        best = cand
                    elif not cand_covers and cand[1] > best[1]:
                        best = cand
                    elif cand[1] == best[1] and cand[2] == STT_FUNC and best[2] != STT_FUNC:
                        best = cand
            j -= 1
        syms, strtab, _ = raw
        index = best[3]
        file_name = None
        if (syms["info"][index] >> 4) == STB_LOCAL and self._file_positions:
            k = bisect.bisect_left(self._file_positions, index) - 1
            if k >= 0:
                file_name = self._name(strtab, syms["name"][self._file_positions[k]])
        return self._name(strtab, syms["name"][index]), best[0], file_name
