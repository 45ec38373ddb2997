"""The object files behind --list, --disasm and --weblist, in one place
(as google/pprof keeps binutils behind its ObjTool interface): the routines
of an object (from its symbol table, the way gperftools' pprof reads
`nm -n`), their instructions disassembled in process with capstone and
printed the way objdump prints them (branch targets named from the symbol
table and the PLT), the source line of each instruction (DWARF line
tables, as `objdump -l` and addr2line give them), and source files read
the way pprof's Perl reads them.  Renderers ask an `ObjTool` (the report
makes one: report.Report.objtool) and never open a file themselves.
"""
import bisect
import re
import threading

from pprof_py.errors import PprofError, SymbolizationError
from pprof_py.files import MAX_SOURCE_BYTES, read_regular
from pprof_py.symbolize.demangle import demangle
from pprof_py.symbolize import debugging_library, short_function_name
from pprof_py.symbolize import cache as symcache
from pprof_py.symbolize.objfile import SHF_EXECINSTR, ObjectFile


class ObjectCache:
    """Opens each object file once per report."""

    def __init__(self):
        self._objects = {}

    def get(self, path):
        if path not in self._objects:
            try:
                self._objects[path] = ObjectFile(path)
            except SymbolizationError:
                self._objects[path] = None
        return self._objects[path]


def routines(obj, regex):
    """Routines of `obj` whose nm name (tagged ``name<start>``) matches:
    [(full name, start, end)], sorted by short name like pprof's ByName.
    The last symbol of the table has no known size (start == end)."""
    starts, ends, full = obj.nm_table()
    result = []
    for i, name in enumerate(full):
        if regex.search(name):
            result.append((name, int(starts[i]), int(ends[i])))
    result.sort(key=lambda r: (short_function_name(r[0]), r[0]))
    return result


# ---- disassembly --------------------------------------------------------

_SUFFIXED = {"mov", "add", "sub", "imul", "cmp", "test", "and", "or", "xor", "lea", "push", "pop",
             "inc", "dec", "neg", "not", "shl", "shr", "sar", "sal", "rol", "ror", "adc", "sbb",
             "xchg", "movabs", "bsf", "bsr", "bt", "bts", "btr", "popcnt", "tzcnt", "lzcnt", "xadd",
             "cmpxchg", "mul", "div", "idiv", "btc", "bswap", "blsmsk", "blsr", "blsi", "bzhi",
             "sarx", "shlx", "shrx", "movbe", "shld", "shrd", "andn", "bextr", "pdep", "pext",
             "rorx", "mulx", "adcx", "adox", "cmpxchg8b", "cmpxchg16b"}
_ALWAYS_PLAIN = {"retq": "ret", "callq": "call", "jmpq": "jmp", "leaveq": "leave", "pushfq": "pushf",
                 "popfq": "popf"}
_DECIMAL_IMM = re.compile(r"\$(\d+)\b")
_NEGATIVE_IMM = re.compile(r"\$-(0x[0-9a-f]+|\d+)\b")
_SIZE_BITS = {"b": 8, "w": 16, "l": 32, "q": 64}
_PREFIXES = {"rep", "repne", "repe", "lock", "notrack", "bnd", "xacquire", "xrelease"}
_STRING_OPS = {"stos", "lods", "scas", "movs", "cmps"}
_CONVERSIONS = {"cvtsi2sd", "cvtsi2ss", "vcvtsi2sd", "vcvtsi2ss"}
_REX = {bytes([b]) for b in range(0x40, 0x50)}


def _operands(ops):
    """Split an operand list at the commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in ops:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _register_operands(ops):
    """(general registers, vector or x87 registers) among the operands; a
    memory operand such as `0x1(%rcx,%rax,2)` or `%es:(%rdi)` is neither."""
    regs = [o for o in _operands(ops) if re.fullmatch(r"%[a-z0-9]+", o)]
    vector = [r for r in regs if re.match(r"%(xmm|ymm|zmm|mm|st)", r)]
    return [r for r in regs if r not in vector], vector


def _has_register_operand(ops):
    """True if a general register gives the operand size and no vector or
    x87 register is involved (objdump keeps `movq %rax,%xmm0`)."""
    general, vector = _register_operands(ops)
    return bool(general) and not vector


def _operand_bits(size_letter, ops):
    """Width objdump sign-extends a negative immediate to: the mnemonic's
    size suffix, else the register operand's size."""
    if size_letter:
        return _SIZE_BITS[size_letter]
    m = re.search(r"%(\w+)\s*$", ops)
    reg = m.group(1) if m else ""
    if re.fullmatch(r"r(\w\w|\d+)", reg) and not reg.endswith(("d", "w", "b")):
        return 64
    if reg.startswith("e") or reg.endswith("d"):
        return 32
    if reg.endswith("l") or reg.endswith("b"):
        return 8
    return 16 if reg else 32
_DECIMAL_DISP = re.compile(r"(?<![\w$.])(-?)(\d+)\(")


_MEM_OPERAND = re.compile(r"(%[a-z]+:)?(-?0x[0-9a-f]+|-?\d+)?\((%[a-z0-9]+)?(?:,\s*(%[a-z0-9]+)(?:,\s*(\d))?)?\)")


def _objdump_memory(insn, ops):
    """Memory operands as objdump spells them: a displacement that is
    encoded is printed even when zero (`0x0(%rax)`: ModRM mod 01 or 10), and
    an index register always comes with its scale (`(%rax,%rax,1)`)."""
    if "(" not in ops:
        return ops
    try:
        modrm = insn.modrm or 0
    except Exception:         # not x86
        modrm = 0
    encoded_disp = (modrm >> 6) in (1, 2)

    def fix(m):
        seg, disp, base, index, scale = m.groups()
        if disp is None and ((encoded_disp and base and base != "%rip") or (index and not base)):
            disp = "0x0"              # (no base register: a 32-bit displacement is always encoded)
        inner = base or ""
        if index:
            inner += ",%s,%s" % (index, scale or "1")
        return "%s%s(%s)" % (seg or "", disp or "", inner)
    return _MEM_OPERAND.sub(fix, ops)


def _objdump_style(insn, describe_target):
    """Make capstone's AT&T text read like objdump's: mnemonic padded to six
    columns, no space after commas, hexadecimal immediates and
    displacements, memory operands spelled like objdump's, size suffixes
    only where no register gives the size, a segment prefix on a nop
    written before the mnemonic (`cs nopw`), and branch targets as
    `addr <symbol+off>` (PLT entries as `name@plt`)."""
    mnemonic, ops = insn.mnemonic, insn.op_str
    code = bytes(insn.bytes)
    if code == b"\x66\x90":
        return "xchg   %ax,%ax"
    rep = ""
    while mnemonic.split(" ", 1)[0] in _PREFIXES and " " in mnemonic:
        prefix, mnemonic = mnemonic.split(" ", 1)
        rep += prefix + " "
    size_letter = mnemonic[-1:] if mnemonic[-1:] in _SIZE_BITS else ""
    if mnemonic in _ALWAYS_PLAIN:
        mnemonic = _ALWAYS_PLAIN[mnemonic]
    elif mnemonic[:-1] in _STRING_OPS and size_letter:
        # string instructions: objdump names the segments of %rsi and %rdi,
        # and drops the suffix only where a register operand gives the size
        ops = re.sub(r"(?<!:)\(%([er]di)\)", r"%es:(%\1)", ops)
        ops = re.sub(r"(?<!:)\(%([er]si)\)", r"%ds:(%\1)", ops)
        if _has_register_operand(ops):
            mnemonic = mnemonic[:-1]
    elif mnemonic in ("pushq", "popq"):
        mnemonic = mnemonic[:-1]                  # 64 bits is their default size
    elif size_letter and mnemonic[:-1] in _CONVERSIONS:
        if _register_operands(ops)[0]:
            mnemonic = mnemonic[:-1]              # cvtsi2sd %rdx,%xmm1: the GPR gives the size
    elif size_letter and (mnemonic[:-1] in _SUFFIXED or mnemonic[:-1].startswith("cmov")):
        # a general register operand gives the size (not an xmm register:
        # objdump keeps "movq ...,%xmm0")
        if _has_register_operand(ops):
            mnemonic = mnemonic[:-1]
    mnemonic = rep + mnemonic
    opcode = code.lstrip(b"\x66\xf2\xf3")
    if opcode[:1] in _REX:
        opcode = opcode[1:]
    if opcode[:1] in (b"\xd0", b"\xd1"):
        ops = re.sub(r"^\$(0x)?1,\s*", "", ops)    # shift by one: objdump omits the count
    ops = ops.replace(", ", ",").replace(" {", "{")
    ops = re.sub(r"(%[a-z]s:)(\d+)\b(?!\()", lambda m: "%s0x%x" % (m.group(1), int(m.group(2))), ops)
    ops = _NEGATIVE_IMM.sub(lambda m: "$0x%x" % ((1 << _operand_bits(size_letter, ops)) - int(m.group(1), 0)), ops)
    ops = _DECIMAL_IMM.sub(lambda m: "$0x%x" % int(m.group(1)), ops)
    ops = _DECIMAL_DISP.sub(lambda m: "%s0x%x(" % (m.group(1), int(m.group(2))), ops)
    ops = _objdump_memory(insn, ops)
    # an absolute address operand (no parentheses) in hexadecimal
    ops = ",".join("0x%x" % int(o) if o.isdigit() else o for o in _operands(ops)) if ops else ops
    if mnemonic.startswith("nop") and ops.startswith("%cs:"):
        # 66 66 ... 2e 0f 1f: objdump spells each extra operand-size prefix
        extra = len(code) - len(code.lstrip(b"\x66")) - 1
        mnemonic, ops = "data16 " * max(extra, 0) + "cs " + mnemonic, ops[4:]
    if re.fullmatch(r"0x[0-9a-f]+", ops) and (mnemonic.startswith("j") or mnemonic.startswith("call")
                                              or mnemonic.startswith("loop")):
        target = int(ops, 16)
        ops = "%x" % target
        label = describe_target(target)
        if label:
            ops += " <%s>" % label
    if not ops:
        return mnemonic
    return "%-6s %s" % (mnemonic, ops)


# capstone is imported when this module is, not in the middle of a listing:
# its package initialisation iterates its own globals, and imported late in
# some runs it failed with "dictionary changed size during iteration"
# (found by tests/hardening/fuzz.py; reproducible, cause inside capstone).
try:
    import capstone
except ImportError:         # reported when --list/--disasm need it
    capstone = None


def _capstone_for(obj):
    if capstone is None:
        raise PprofError("--list and --disasm need the capstone package (pip install capstone)")
    machine = obj.elf["e_machine"]
    if machine == "EM_X86_64":
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        md.syntax = capstone.CS_OPT_SYNTAX_ATT
    elif machine == "EM_386":
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)
        md.syntax = capstone.CS_OPT_SYNTAX_ATT
    elif machine == "EM_AARCH64":
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    else:
        raise PprofError(f"{obj.path}: cannot disassemble {machine} code")
    md.skipdata = False
    md.detail = True          # ModRM byte: objdump prints encoded zero displacements
    return md


def _plt_entries(obj):
    """{entry address: "name@plt"} for the PLT stubs of `obj`, as objdump
    synthesizes them: each stub of .plt / .plt.sec ends in
    `[endbr64] [bnd] jmp *disp(%rip)`; the GOT slot it jumps through is the
    r_offset of a .rela.plt relocation, whose symbol names the stub."""
    slots = {}
    elf = obj.elf
    # .rela.plt: JUMP_SLOT relocations of .plt/.plt.sec stubs; .rela.dyn:
    # GLOB_DAT ones, whose stubs are in .plt.got (e.g. __cxa_finalize)
    for rela_name in (".rela.plt", ".rela.dyn"):
        try:
            rela = elf.get_section_by_name(rela_name)
        except symcache.DWARF_DAMAGE:       # a damaged section table: no stub names
            return {}
        if rela is None or not hasattr(rela, "iter_relocations"):
            continue
        try:
            symtab = elf.get_section(rela["sh_link"])
            for r in rela.iter_relocations():
                sym = symtab.get_symbol(r["r_info_sym"]) if r["r_info_sym"] else None
                if sym is not None and sym.name:
                    slots.setdefault(r["r_offset"], demangle(sym.name))
        except Exception:                 # a damaged table only loses the names
            continue
    if not slots:
        return {}
    entries = {}
    for name, stride in ((".plt", 16), (".plt.sec", 16), (".plt.got", 8)):
        sec = elf.get_section_by_name(name)
        if sec is None or sec["sh_size"] == 0:
            continue
        data, base = sec.data(), sec["sh_addr"]
        if stride == 8 and data[:4] == b"\xf3\x0f\x1e\xfa":
            stride = 16                   # IBT: endbr64 makes the entries 16 bytes
        for off in range(0, len(data) - 5, stride):
            i = off
            if data[i:i + 4] == b"\xf3\x0f\x1e\xfa":      # endbr64
                i += 4
            if data[i:i + 1] == b"\xf2":                 # bnd
                i += 1
            if data[i:i + 2] != b"\xff\x25" or i + 6 > len(data):
                continue
            disp = int.from_bytes(data[i + 2:i + 6], "little", signed=True)
            got = base + i + 6 + disp
            if got in slots:
                entries[base + off] = slots[got] + "@plt"
    return entries


def _target_namer(obj):
    """describe(address) -> "symbol+0xoff" for branch targets of `obj`, built
    once per object (a --disasm report disassembles many routines of it)."""
    namer = getattr(obj, "_branch_target_namer", None)
    if namer is None:
        namer = obj._branch_target_namer = _build_target_namer(obj)
    return namer


def _build_target_namer(obj):
    """objdump labels a branch target with the closest symbol at or below it
    (`name+0xoff`), or the lowest symbol above it (`name-0xoff`) when none
    is below.  With a .symtab our nm table gives the same names.  A
    stripped object has only .dynsym, whose names objdump spells with BFD's
    version strings (`stripped_round@@Base`, `stdout@GLIBC_2.2.5`), and the
    synthetic `name@plt` stubs count as symbols too: code outside any
    exported function is labelled from the nearest of them
    (`__cxa_finalize@plt+0x133`)."""
    plt = _plt_entries(obj)
    plt_starts = sorted(plt)
    plt_sections = [(sec["sh_addr"], sec["sh_addr"] + sec["sh_size"]) for sec in obj._sections
                    if sec.name in (".plt", ".plt.sec", ".plt.got") and sec["sh_size"]]
    symtab = obj._raw_symbols(".symtab")
    if symtab is not None and len(symtab[0]) > 1:
        starts, _ends, full = obj.nm_table()
        starts_list = [int(s) for s in starts]
        names = [re.sub(r"<[0-9a-f]*>$", "", f) for f in full]
        below_first = False          # as before: no label below the first symbol
    else:
        labels = []
        dynsym = obj._raw_symbols(".dynsym")
        if dynsym is not None:
            syms, strtab, _ = dynsym
            versions = obj._versions(len(syms))
            for i in range(1, len(syms)):
                shndx, info = int(syms["shndx"][i]), int(syms["info"][i])
                kind = info & 0xf
                if shndx == 0 or shndx == 0xfff2 or kind in (3, 4) or not syms["name"][i]:
                    continue                  # undefined, common, section, file
                name = obj._name(strtab, int(syms["name"][i]))
                if versions is not None:
                    raw_versions, vnames = versions
                    v = int(raw_versions[i])
                    ndx = v & 0x7fff
                    hidden = bool(v & 0x8000)
                    if ndx == 1:
                        name += "@" * (1 + (not hidden)) + "Base"
                    elif ndx in vnames and not (shndx == 0xfff1 and vnames[ndx][0] == name):
                        vname, needed = vnames[ndx]
                        name += ("@" if needed or hidden else "@@") + vname
                # objdump's compare_symbols among symbols at one address:
                # functions, then objects, then globals, then larger, then by name
                bind = info >> 4
                labels.append((int(syms["value"][i]), kind != 2, kind != 1, bind == 0,
                               -int(syms["size"][i]), name.encode("utf-8", "surrogateescape"), name))
        labels += [(address, True, True, True, 0, stub.encode(), stub) for address, stub in plt.items()]
        labels.sort()
        starts_list, names = [], []
        for label in labels:
            if starts_list and starts_list[-1] == label[0]:
                continue                      # the first in objdump's order wins
            starts_list.append(label[0])
            names.append(label[-1])
        below_first = True

    def describe(address):
        stub = plt.get(address)
        if stub:
            return stub
        if plt_starts and any(lo <= address < hi for lo, hi in plt_sections):
            # inside a PLT stub: relative to its start (the PLT header keeps
            # the ordinary symbol-table name, as objdump's does in most files)
            j = bisect.bisect_right(plt_starts, address) - 1
            if j >= 0 and address - plt_starts[j] < 16:
                return "%s+0x%x" % (plt[plt_starts[j]], address - plt_starts[j])
        i = bisect.bisect_right(starts_list, address) - 1
        if i < 0:
            if not (below_first and starts_list):
                return None
            return "%s-0x%x" % (names[0], starts_list[0] - address)
        off = address - starts_list[i]
        return names[i] if off == 0 else "%s+0x%x" % (names[i], off)
    return describe


def disassemble(obj, start, end):
    """Instructions starting in [start, end) of the executable sections of
    `obj` (file addresses): [(address, text)], like `objdump -d
    --start-address --stop-address` lists them."""
    if end <= start:
        return []
    md = _capstone_for(obj)
    describe = _target_namer(obj)
    result = []
    for sec in obj._sections:
        if not (sec["sh_flags"] & SHF_EXECINSTR) or sec["sh_type"] != "SHT_PROGBITS":
            continue
        lo, hi = sec["sh_addr"], sec["sh_addr"] + sec["sh_size"]
        if hi <= start or lo >= end:
            continue
        data = sec.data()
        pos = max(start, lo)
        stop = min(end, hi)
        while pos < stop:
            chunk = data[pos - lo:stop - lo + 16]
            for insn in md.disasm(chunk, pos):
                if insn.address >= stop:
                    pos = stop
                    break
                result.append((insn.address, _objdump_style(insn, describe)))
                pos = insn.address + insn.size
            if pos < stop:
                # capstone stops at bytes it cannot decode; objdump says "(bad)"
                result.append((pos, "(bad)"))
                pos += 1
    return result


# ---- line information -----------------------------------------------------

class LineInfo:
    """Per file address of one object: addr2line's frames (outermost
    frame's file:line = what `--list` uses) and the discriminator of the
    innermost line-table row (`objdump -l` prints "file:N (discriminator
    D)" for those rows, which `--disasm` must know)."""

    def __init__(self, obj, use_cache=True):
        self.obj = obj
        self.use_cache = use_cache
        dwarf_obj = obj.dwarf_object()
        self._dwarf = None
        if dwarf_obj is not None:
            try:
                self._dwarf = dwarf_obj.elf.get_dwarf_info(relocate_dwarf_sections=False)
            except symcache.DWARF_DAMAGE:
                # pyelftools reads every section header first and gives
                # up on any damaged one (a .symtab whose size is not a
                # multiple of its entries'); the lines then come from the
                # symbolizer alone (frames()), without discriminators.
                self._dwarf = None
        self._aranges = None
        self._sequences = {}        # CU offset -> [(start, end, addresses, discriminators)]

    def frames(self, addresses):
        """{address: [(function, "file:line")] innermost first}."""
        result = symcache.object_symbols(self.obj, list(addresses), self.use_cache)
        if isinstance(result, dict):        # {address: (frames, nm name)}
            return {a: frames for a, (frames, _nm) in result.items()}
        addrs, answers = result[0], result[1]      # (addresses, answers, nm names)
        return dict(zip(addrs, answers))

    def _sequences_of(self, cu):
        seqs = self._sequences.get(cu.cu_offset)
        if seqs is not None:
            return seqs
        seqs = []
        lineprog = self._dwarf.line_program_for_CU(cu)
        if lineprog is not None:
            addresses, discs = [], []
            for entry in lineprog.get_entries():
                state = entry.state
                if state is None:
                    continue
                if state.end_sequence:
                    if addresses:
                        seqs.append((addresses[0], state.address, addresses, discs))
                    addresses, discs = [], []
                    continue
                if addresses and addresses[-1] == state.address:
                    discs[-1] = state.discriminator      # the last row at an address wins
                else:
                    addresses.append(state.address)
                    discs.append(state.discriminator)
        self._sequences[cu.cu_offset] = seqs
        return seqs

    def _units_for(self, address):
        if self._aranges is None:
            try:
                self._aranges = self._dwarf.get_aranges() or False
            except Exception:       # a broken .debug_aranges: scan every unit
                self._aranges = False
        if self._aranges:
            offset = self._aranges.cu_offset_at_addr(address)
            if offset is not None:
                return [self._dwarf.get_CU_at(offset)]
        return list(self._dwarf.iter_CUs())

    def discriminator(self, address):
        if self._dwarf is None:
            return 0
        try:
            for cu in self._units_for(address):
                for start, end, addresses, discs in self._sequences_of(cu):
                    if start <= address < end:
                        i = bisect.bisect_right(addresses, address) - 1
                        if i >= 0:
                            return discs[i]
        except symcache.DWARF_DAMAGE:
            self._dwarf = None      # damaged debug info: no discriminators, as objdump
        return 0


def split_file_line(fileline):
    m = re.match(r"^(.*):(\d+)$", fileline)
    if m:
        return m.group(1), int(m.group(2))
    return None


def instructions(obj, path, offset, start, end, line_info, top_level):
    """pprof's Disassemble (+ GetTopLevelLineNumbers when `top_level`):
    [[address, file, line, text, limit]] with addresses in profile space.

    Without `top_level`, file/line are what `objdump -l` prints before the
    instruction (the innermost line; rows with a discriminator print as
    "file:N (discriminator D)", which pprof does not recognise, so they
    leave the previous location in place).  With it, they are replaced by
    the outermost addr2line frame's file:line."""
    decoded = disassemble(obj, start, end)
    if not decoded:
        return []
    frames = line_info.frames([a for a, _ in decoded])
    result = []
    filename, linenumber = "", -1
    last = None
    for address, text in decoded:
        innermost = frames[address][0][1] if frames.get(address) else "??:0"
        parsed = split_file_line(innermost)
        if parsed and parsed != ("??", 0) and line_info.discriminator(address) == 0:
            filename, linenumber = parsed
        k = address + offset
        if last is not None:
            last[4] = k
        last = [k, filename, linenumber, text, end]
        result.append(last)
    if top_level:
        for e in result:
            fr = frames.get(e[0] - offset)
            if fr:
                parsed = split_file_line(fr[-1][1])
                if parsed:
                    e[1], e[2] = parsed
    return result


def perl_lines(path):
    """The lines of a text file as Perl's `while (<FILE>)` reads them
    (bytes, each with its newline), or None if it cannot be opened."""
    try:
        # DWARF may name a FIFO or /dev/zero: regular files only, bounded.
        data = read_regular(path, MAX_SOURCE_BYTES)
    except (OSError, ValueError):
        return None
    lines = data.split(b"\n")
    result = [line + b"\n" for line in lines[:-1]]
    if lines[-1]:
        result.append(lines[-1])
    return result


class Routine:
    """One routine a listing shows: where its object sits in the profile's
    address space (`offset` = load address - file address), its nm name and
    its [start, end) in file addresses."""

    __slots__ = ("path", "symbols_object", "offset", "name", "start", "end")

    def __init__(self, path, symbols_object, offset, name, start, end):
        self.path, self.symbols_object = path, symbols_object      # symbols may come from a debug file
        self.offset, self.name, self.start, self.end = offset, name, start, end


class ObjTool:
    """What listings ask of the profile's object and source files.
    `libraries` is [(path, start, limit, offset)] as pprof's $libs (see
    Symbolizer.libraries); each file is opened once."""

    def __init__(self, libraries, use_cache=True):
        self.libraries = libraries
        self.use_cache = use_cache
        self._objects = ObjectCache()
        self._line_infos = {}
        self._sources = {}
        # One ObjTool serves every report of a set of inputs, and the web UI
        # asks from several threads: pyelftools reads through one file
        # position per object, so calls take turns.
        self._lock = threading.RLock()

    def routines(self, regex):
        """A Routine for every routine of every library whose nm name
        matches `regex`, in pprof's order (libraries as listed, routines by
        short name)."""
        with self._lock:
            return list(self._routines(regex))

    def _routines(self, regex):
        for path, lib_start, _limit, lib_offset in self.libraries:
            image = debugging_library(path) or path
            obj = self._objects.get(image)
            if obj is None:
                continue
            offset = lib_start - lib_offset
            for name, start, end in routines(obj, regex):
                yield Routine(path, obj, offset, name, start, end)

    def instructions(self, routine, top_level):
        """instructions() of the routine: [[address, file, line, text,
        limit]] in profile addresses."""
        # The code is read from the object itself; its symbols may have
        # come from a separate debug file, which lacks the code.
        with self._lock:
            obj = self._objects.get(routine.path) or routine.symbols_object
            info = self._line_infos.get(obj.path)
            if info is None:
                info = self._line_infos[obj.path] = LineInfo(obj, self.use_cache)
            return instructions(obj, routine.path, routine.offset, routine.start, routine.end, info,
                                top_level)

    def disassemble(self, path, start, end):
        """disassemble() of the object at `path` (file addresses)."""
        with self._lock:
            obj = self._objects.get(path)
            return disassemble(obj, start, end) if obj is not None else []

    def source_lines(self, path):
        """perl_lines(path), cached per report: None if it cannot be read."""
        with self._lock:
            if path not in self._sources:
                self._sources[path] = perl_lines(path)
            return self._sources[path]

    def named_by_nearest_export(self, addresses):
        """The addresses (profile addresses) that lie in a stripped object
        (names from .dynsym only: ObjectFile.names_only_exported) outside
        the extent of every exported function: nm, and so pprof, names
        them after the exported symbol before them.  --json marks them."""
        stripped = []
        for path, start, limit, offset in self.libraries:
            obj = self._objects.get(debugging_library(path) or path)
            if obj is not None and obj.names_only_exported():
                stripped.append((start, limit, start - offset, obj))
        result = set()
        if not stripped:
            return result
        for address in addresses:
            for lo, hi, bias, obj in stripped:
                if lo <= address <= hi:
                    if not obj.in_sized_symbol(address - bias):
                        result.add(address)
                    break
        return result
