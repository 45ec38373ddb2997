"""What `--list` and `--disasm` share: per-address flat/cumulative values,
the object files of a profile with their load offsets, the routines of an
object (from its symbol table, the way gperftools' pprof reads `nm -n`),
and the instructions of a routine, disassembled in-process with capstone.

gperftools' pprof reduces the profile to bare addresses for these two modes
(each address counted once per stack), walks the libraries of the first
profile (shared libraries from its memory map, then the main program with
offset 0), and for every routine whose nm name matches the regular
expression and that contains a sampled address, prints one block.
"""
import bisect
import re

from pprof_py.errors import PprofError, SymbolizationError
from pprof_py.report import compile_regex
from pprof_py.symbolize import Symbolizer, debugging_library, short_function_name
from pprof_py.symbolize import cache as symcache
from pprof_py.symbolize.objfile import SHF_EXECINSTR, ObjectFile

PERL_SPACE = b" \t\n\r\f\v"


def address_values(prepared):
    """pprof's flat and cumulative profiles at bare-address granularity:
    ({address: value}, {address: value}).  An address seen twice in one
    stack (recursion) counts once; addresses above 0x7fffffffffffffff are
    dropped, as pprof drops them."""
    flat, cum = {}, {}
    for stack, count in prepared.profile.items():
        seen = set()
        first = True
        for a in stack:
            if a > 0x7fffffffffffffff or a in seen:
                continue
            seen.add(a)
            if first:
                flat[a] = flat.get(a, 0) + count
                first = False
            cum[a] = cum.get(a, 0) + count
    return flat, cum


def regex_of(prepared, what):
    pattern = prepared.options.output_regex
    if pattern is None:
        raise PprofError(f"--{what} needs a regular expression")
    return compile_regex(pattern, what)


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


def libraries(prepared):
    """[(path, start, limit, offset)] like pprof's $libs: the shared
    libraries of the first profile's memory map, then the main program."""
    opts = prepared.options
    main = prepared.profiles[0]
    program = prepared.program
    symbolizer = Symbolizer(program, opts.lib_prefixes, opts.strip_templates,
                            use_cache=opts.use_cache, width=prepared.width)
    max_pc = max((loc.address for loc in main.locations), default=0)
    return symbolizer.libraries(main.mappings, max_pc)


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
             "cmpxchg", "mul", "div", "idiv"}
_ALWAYS_PLAIN = {"retq": "ret", "callq": "call", "jmpq": "jmp", "leaveq": "leave", "pushfq": "pushf",
                 "popfq": "popf"}
_DECIMAL_IMM = re.compile(r"\$(\d+)\b")
_DECIMAL_DISP = re.compile(r"(?<![\w$.])(-?)(\d+)\(")


def _objdump_style(insn, describe_target):
    """Make capstone's AT&T text read like objdump's: mnemonic padded to six
    columns, no space after commas, hexadecimal immediates and
    displacements, size suffixes only where no register gives the size,
    and branch targets as `addr <symbol+off>`."""
    mnemonic, ops = insn.mnemonic, insn.op_str
    if mnemonic in _ALWAYS_PLAIN:
        mnemonic = _ALWAYS_PLAIN[mnemonic]
    elif mnemonic[-1:] in ("b", "w", "l", "q") and mnemonic[:-1] in _SUFFIXED:
        if re.search(r"(^|,\s*)%", ops):          # a register operand gives the size
            mnemonic = mnemonic[:-1]
    ops = ops.replace(", ", ",")
    ops = _DECIMAL_IMM.sub(lambda m: "$0x%x" % int(m.group(1)), ops)
    ops = _DECIMAL_DISP.sub(lambda m: "%s0x%x(" % (m.group(1), int(m.group(2))), ops)
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


def _capstone_for(obj):
    try:
        import capstone
    except ImportError:
        raise PprofError("--list and --disasm need the capstone package (pip install capstone)") from None
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
    return md


def _target_namer(obj):
    starts, _ends, full = obj.nm_table()
    starts_list = [int(s) for s in starts]

    def describe(address):
        i = bisect.bisect_right(starts_list, address) - 1
        if i < 0:
            return None
        name = re.sub(r"<[0-9a-f]*>$", "", full[i])
        off = address - starts_list[i]
        return name if off == 0 else "%s+0x%x" % (name, off)
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
        self._dwarf = dwarf_obj.elf.get_dwarf_info(relocate_dwarf_sections=False) \
            if dwarf_obj is not None else None
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
        for cu in self._units_for(address):
            for start, end, addresses, discs in self._sequences_of(cu):
                if start <= address < end:
                    i = bisect.bisect_right(addresses, address) - 1
                    if i >= 0:
                        return discs[i]
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


def instruction_counts(e, flat, cum, sorted_keys):
    """Sum of flat and cumulative values over [e[0], e[4])."""
    c1 = c2 = 0
    lo, hi = e[0], e[4]
    if hi <= lo:
        return 0, 0
    i = bisect.bisect_left(sorted_keys, lo)
    while i < len(sorted_keys) and sorted_keys[i] < hi:
        a = sorted_keys[i]
        c1 += flat.get(a, 0)
        c2 += cum.get(a, 0)
        i += 1
    return c1, c2


def each_routine(prepared, what):
    """Yield (path, object, offset, full name, start, end) for every routine
    pprof prints in --list / --disasm mode, in pprof's order."""
    regex = regex_of(prepared, what)
    flat, cum = address_values(prepared)
    keys = sorted(cum)
    objects = ObjectCache()
    for path, lib_start, _limit, lib_offset in libraries(prepared):
        image = debugging_library(path) or path
        obj = objects.get(image)
        if obj is None:
            continue
        offset = lib_start - lib_offset
        for name, start, end in routines(obj, regex):
            lo, hi = start + offset, end + offset
            i = bisect.bisect_left(keys, lo)
            if end > start and i < len(keys) and keys[i] < hi:
                code = objects.get(path) or obj
                yield path, code, offset, name, start, end, flat, cum, keys


def unparse_address(offset, address):
    text = "%x" % (address - offset) if address >= offset else "-%x" % (offset - address)
    return text.lstrip("0")


def clean_disassembly(text):
    while True:
        new = re.sub(r"\([^()%]*\)(\s*const)?", "", text)
        if new == text:
            break
        text = new
    while True:
        new = re.sub(r"(\w+)<[^<>]*>", r"\1", text)
        if new == text:
            break
        text = new
    return text


def clean_file_name(name):
    name = re.sub(r"^/proc/self/cwd/", "", name)
    return re.sub(r"^\./", "", name)


def perl_lines(path):
    """The lines of a text file as Perl's `while (<FILE>)` reads them
    (bytes, each with its newline), or None if it cannot be opened."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    lines = data.split(b"\n")
    result = [line + b"\n" for line in lines[:-1]]
    if lines[-1]:
        result.append(lines[-1])
    return result

