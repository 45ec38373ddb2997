"""A fast scanner for the function DIEs of one compile unit.

pyelftools builds an object per DIE and per attribute, which costs seconds on
the large units of a real program.  We only need subprogram and
inlined_subroutine DIEs that contain sampled addresses, so this scanner walks
.debug_info bytes directly (DWARF 2-5, 32- and 64-bit formats, section 7.5),
skipping every other DIE's attributes by form size and jumping over subtrees
with DW_AT_sibling when the producer wrote it.  Strings and indexed
addresses are read from dwarfsections.DwarfSections.
"""
from pprof_py.symbolize.leb128 import sleb, uleb

# Fixed sizes by form, for forms whose size does not depend on the unit.
_FIXED = {
    "DW_FORM_data1": 1, "DW_FORM_ref1": 1, "DW_FORM_flag": 1, "DW_FORM_strx1": 1, "DW_FORM_addrx1": 1,
    "DW_FORM_data2": 2, "DW_FORM_ref2": 2, "DW_FORM_strx2": 2, "DW_FORM_addrx2": 2,
    "DW_FORM_strx3": 3, "DW_FORM_addrx3": 3,
    "DW_FORM_data4": 4, "DW_FORM_ref4": 4, "DW_FORM_strx4": 4, "DW_FORM_addrx4": 4, "DW_FORM_ref_sup4": 4,
    "DW_FORM_data8": 8, "DW_FORM_ref8": 8, "DW_FORM_ref_sig8": 8, "DW_FORM_ref_sup8": 8,
    "DW_FORM_data16": 16,
    "DW_FORM_flag_present": 0, "DW_FORM_implicit_const": 0,
}
_OFFSET_SIZED = {"DW_FORM_strp", "DW_FORM_line_strp", "DW_FORM_sec_offset", "DW_FORM_strp_sup",
                 "DW_FORM_GNU_ref_alt", "DW_FORM_GNU_strp_alt"}
_LEB = {"DW_FORM_udata", "DW_FORM_sdata", "DW_FORM_ref_udata", "DW_FORM_strx", "DW_FORM_addrx",
        "DW_FORM_rnglistx", "DW_FORM_loclistx", "DW_FORM_GNU_addr_index", "DW_FORM_GNU_str_index"}
_BLOCK_LEB = {"DW_FORM_block", "DW_FORM_exprloc"}
_BLOCK_N = {"DW_FORM_block1": 1, "DW_FORM_block2": 2, "DW_FORM_block4": 4}

FUNCTION_TAGS = ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine")
# Containers whose children may be functions.
DESCEND_TAGS = {"DW_TAG_lexical_block", "DW_TAG_namespace", "DW_TAG_try_block",
                "DW_TAG_catch_block", "DW_TAG_module"}
WANTED_ATTRS = {"DW_AT_low_pc", "DW_AT_high_pc", "DW_AT_ranges", "DW_AT_name", "DW_AT_linkage_name",
                "DW_AT_MIPS_linkage_name", "DW_AT_abstract_origin", "DW_AT_specification",
                "DW_AT_call_file", "DW_AT_call_line"}


# DWARF 5 (section 7.5.6) and GNU codes, named as pyelftools names them.
# Every form has a name here (the readers dispatch on them); tags and
# attributes only those the readers compare against or decode: the others
# are named "DW_TAG_unknown_0x.." / "DW_AT_unknown_0x..".
_FORMS = {
    0x01: "DW_FORM_addr", 0x03: "DW_FORM_block2", 0x04: "DW_FORM_block4", 0x05: "DW_FORM_data2",
    0x06: "DW_FORM_data4", 0x07: "DW_FORM_data8", 0x08: "DW_FORM_string", 0x09: "DW_FORM_block",
    0x0a: "DW_FORM_block1", 0x0b: "DW_FORM_data1", 0x0c: "DW_FORM_flag", 0x0d: "DW_FORM_sdata",
    0x0e: "DW_FORM_strp", 0x0f: "DW_FORM_udata", 0x10: "DW_FORM_ref_addr", 0x11: "DW_FORM_ref1",
    0x12: "DW_FORM_ref2", 0x13: "DW_FORM_ref4", 0x14: "DW_FORM_ref8", 0x15: "DW_FORM_ref_udata",
    0x16: "DW_FORM_indirect", 0x17: "DW_FORM_sec_offset", 0x18: "DW_FORM_exprloc",
    0x19: "DW_FORM_flag_present", 0x1a: "DW_FORM_strx", 0x1b: "DW_FORM_addrx", 0x1c: "DW_FORM_ref_sup4",
    0x1d: "DW_FORM_strp_sup", 0x1e: "DW_FORM_data16", 0x1f: "DW_FORM_line_strp", 0x20: "DW_FORM_ref_sig8",
    0x21: "DW_FORM_implicit_const", 0x22: "DW_FORM_loclistx", 0x23: "DW_FORM_rnglistx",
    0x24: "DW_FORM_ref_sup8", 0x25: "DW_FORM_strx1", 0x26: "DW_FORM_strx2", 0x27: "DW_FORM_strx3",
    0x28: "DW_FORM_strx4", 0x29: "DW_FORM_addrx1", 0x2a: "DW_FORM_addrx2", 0x2b: "DW_FORM_addrx3",
    0x2c: "DW_FORM_addrx4", 0x1f01: "DW_FORM_GNU_addr_index", 0x1f02: "DW_FORM_GNU_str_index",
    0x1f20: "DW_FORM_GNU_ref_alt", 0x1f21: "DW_FORM_GNU_strp_alt",
}
_TAGS = {
    0x0b: "DW_TAG_lexical_block", 0x11: "DW_TAG_compile_unit", 0x1d: "DW_TAG_inlined_subroutine",
    0x1e: "DW_TAG_module", 0x25: "DW_TAG_catch_block", 0x2e: "DW_TAG_subprogram", 0x32: "DW_TAG_try_block",
    0x39: "DW_TAG_namespace", 0x41: "DW_TAG_type_unit", 0x3c: "DW_TAG_partial_unit",
    0x4a: "DW_TAG_skeleton_unit",
}
_ATTRS = {
    0x01: "DW_AT_sibling", 0x03: "DW_AT_name", 0x10: "DW_AT_stmt_list", 0x11: "DW_AT_low_pc",
    0x12: "DW_AT_high_pc", 0x13: "DW_AT_language", 0x1b: "DW_AT_comp_dir", 0x31: "DW_AT_abstract_origin",
    0x47: "DW_AT_specification", 0x55: "DW_AT_ranges", 0x58: "DW_AT_call_file", 0x59: "DW_AT_call_line",
    0x6e: "DW_AT_linkage_name", 0x72: "DW_AT_str_offsets_base", 0x73: "DW_AT_addr_base",
    0x74: "DW_AT_rnglists_base", 0x2007: "DW_AT_MIPS_linkage_name",
}


def enum_names():
    """({tag code: name}, {form code: name}, {attribute code: name})."""
    return _TAGS, _FORMS, _ATTRS


def parse_abbrev_table(data, offset):
    """One .debug_abbrev table (DWARF 5, section 7.5.3): {code: (tag,
    has_children, [(attribute, form, implicit constant)])}.  pyelftools
    builds these with construct, which is slow on large programs."""
    table = {}
    pos = offset
    while True:
        code, pos = uleb(data, pos)
        if code == 0:
            return table
        tag, pos = uleb(data, pos)
        has_children = data[pos] != 0
        pos += 1
        specs = []
        while True:
            attr, pos = uleb(data, pos)
            form, pos = uleb(data, pos)
            if attr == 0 and form == 0:
                break
            implicit = None
            form_name = _FORMS.get(form, "DW_FORM_unknown_%#x" % form)
            if form_name == "DW_FORM_implicit_const":
                implicit, pos = sleb(data, pos)
            specs.append((_ATTRS.get(attr, "DW_AT_unknown_%#x" % attr), form_name, implicit))
        table[code] = (_TAGS.get(tag, "DW_TAG_unknown_%#x" % tag), has_children, specs)


class ScannedDIE:
    """The attributes we decoded from a function DIE, in DIE order:
    ``attrs`` is a list of (name, form, value); references are absolute
    .debug_info offsets."""

    __slots__ = ("offset", "tag", "attrs", "has_children")

    def __init__(self, offset, tag, attrs, has_children):
        self.offset = offset
        self.tag = tag
        self.attrs = attrs
        self.has_children = has_children

    def get(self, name):
        for n, form, value in self.attrs:
            if n == name:
                return form, value
        return None


class UnitScanner:
    """Reads one unit's DIEs: in Python from the parsed abbreviation table
    `abbrevs`, or, given `native` (a dwarfnative.NativeUnit), with the C
    decoder, which then does die_at and scan instead."""

    def __init__(self, sections, cu, info_bytes, abbrevs, native=None):
        self.native = native
        self.sections = sections
        self.cu = cu
        self.data = info_bytes
        header = cu.header
        self.version = header["version"]
        self.address_size = header["address_size"]
        self.offset_size = 8 if cu.dwarf_format() == 64 else 4
        self.end = cu.cu_offset + cu.size
        self.little = sections.little_endian
        self._abbrevs = abbrevs
        self._layouts = {}
        self.str_offsets_base = 8
        self.addr_base = 8
        self.top = self.die_at(cu.cu_die_offset, everything=True)
        base = self.top.get("DW_AT_str_offsets_base")
        if base is not None:
            self.str_offsets_base = base[1]
        base = self.top.get("DW_AT_addr_base")
        if base is not None:
            self.addr_base = base[1]

    def _layout(self, specs):
        """(total size if every form is fixed-size else None, offset of a
        DW_AT_sibling reference in it, its form)."""
        total, sibling_at, sibling_form = 0, None, None
        for name, form, implicit in specs:
            size = _FIXED.get(form)
            if size is None:
                if form in _OFFSET_SIZED:
                    size = self.offset_size
                elif form == "DW_FORM_addr":
                    size = self.address_size
                elif form == "DW_FORM_ref_addr":
                    size = self.address_size if self.version == 2 else self.offset_size
                else:
                    return None, None, None
            if name == "DW_AT_sibling" and form.startswith("DW_FORM_ref"):
                sibling_at, sibling_form = total, form
            total += size
        return total, sibling_at, sibling_form

    def _abbrev(self, code):
        try:
            return self._abbrevs[code]
        except KeyError:
            raise ValueError(f"DIE with unknown abbreviation code {code}") from None

    def die_at(self, offset, everything=False):
        """Decode the DIE at `offset` (in this unit): the attributes we use,
        or all of them but blocks with `everything`."""
        if self.native is not None:
            return self.native.die_at(offset, everything)
        code, pos = self._uleb(offset)
        tag, has_children, specs = self._abbrev(code)
        attrs = []
        for name, form, implicit in specs:
            if everything or name in WANTED_ATTRS:
                value, pos = self._value(form, pos, implicit)
                attrs.append((name, form, value))
            else:
                pos = self._skip(form, pos)
        return ScannedDIE(offset, tag, attrs, has_children)

    def contains(self, offset):
        return self.cu.cu_offset <= offset < self.end

    def _uleb(self, pos):
        return uleb(self.data, pos)

    def _int(self, pos, size):
        return int.from_bytes(self.data[pos:pos + size], "little" if self.little else "big")

    def _skip(self, form, pos):
        size = _FIXED.get(form)
        if size is not None:
            return pos + size
        if form in _OFFSET_SIZED:
            return pos + self.offset_size
        if form in _LEB:
            while self.data[pos] & 0x80:
                pos += 1
            return pos + 1
        if form == "DW_FORM_addr":
            return pos + self.address_size
        if form == "DW_FORM_ref_addr":
            return pos + (self.address_size if self.version == 2 else self.offset_size)
        if form == "DW_FORM_string":
            return self.data.index(b"\0", pos) + 1
        if form in _BLOCK_LEB:
            length, pos = self._uleb(pos)
            return pos + length
        if form in _BLOCK_N:
            n = _BLOCK_N[form]
            return pos + n + self._int(pos, n)
        if form == "DW_FORM_indirect":
            code, pos = self._uleb(pos)
            return self._skip(_FORMS.get(code, "DW_FORM_unknown"), pos)
        raise ValueError(f"unsupported DWARF form {form}")

    def _value(self, form, pos, implicit):
        """Decode one attribute value we need; returns (value, new pos)."""
        if form == "DW_FORM_implicit_const":
            return implicit, pos
        if form == "DW_FORM_addr":
            return self._int(pos, self.address_size), pos + self.address_size
        if form == "DW_FORM_flag_present":
            return True, pos
        if form == "DW_FORM_flag":
            return self.data[pos] != 0, pos + 1
        if form in ("DW_FORM_data1", "DW_FORM_data2", "DW_FORM_data4", "DW_FORM_data8",
                    "DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8",
                    "DW_FORM_sec_offset", "DW_FORM_strp", "DW_FORM_line_strp",
                    "DW_FORM_strx1", "DW_FORM_strx2", "DW_FORM_strx3", "DW_FORM_strx4",
                    "DW_FORM_addrx1", "DW_FORM_addrx2", "DW_FORM_addrx3", "DW_FORM_addrx4"):
            size = _FIXED.get(form) or self.offset_size
            value = self._int(pos, size)
            if form.startswith("DW_FORM_ref"):
                value += self.cu.cu_offset
            return value, pos + size
        if form in ("DW_FORM_udata", "DW_FORM_ref_udata", "DW_FORM_strx", "DW_FORM_addrx",
                    "DW_FORM_rnglistx", "DW_FORM_GNU_addr_index", "DW_FORM_GNU_str_index"):
            value, new = self._uleb(pos)
            if form == "DW_FORM_ref_udata":
                value += self.cu.cu_offset
            return value, new
        if form == "DW_FORM_sdata":
            return sleb(self.data, pos)
        if form == "DW_FORM_ref_addr":
            size = self.address_size if self.version == 2 else self.offset_size
            return self._int(pos, size), pos + size
        if form == "DW_FORM_string":
            end = self.data.index(b"\0", pos)
            return bytes(self.data[pos:end]).decode("utf-8", "surrogateescape"), end + 1
        return None, self._skip(form, pos)

    def string(self, form, value):
        """Resolve a string attribute's value to text."""
        text = self._string(form, value)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        return text

    def _string(self, form, value):
        if isinstance(value, str) or value is None:
            return value
        if not isinstance(value, int):
            return None
        if form == "DW_FORM_strp":
            return self.sections.string(value)
        if form == "DW_FORM_line_strp":
            return self.sections.line_string(value)
        if form.startswith("DW_FORM_strx") or form == "DW_FORM_GNU_str_index":
            table = self.sections.get(".debug_str_offsets")
            if table is None:
                return None
            at = self.str_offsets_base + value * self.offset_size
            raw = table[at:at + self.offset_size]
            return self.sections.string(int.from_bytes(raw, "little" if self.little else "big"))
        return None

    def address(self, form, value):
        if form.startswith("DW_FORM_addrx") or form == "DW_FORM_GNU_addr_index":
            if self.top.get("DW_AT_addr_base") is None:
                raise ValueError(f"unit at {self.cu.cu_offset:#x}: DW_FORM_addrx without DW_AT_addr_base")
            return self.sections.address(self.addr_base, value, self.address_size)
        return value

    def scan(self, visit, wanted=()):
        """Call visit(die, parent) for every function DIE, where `parent` is
        what visit returned for the enclosing function (None at top level);
        a function's children are scanned only if visit returns something
        other than None for it.

        With the native decoder, `wanted` (the sorted addresses visit looks
        for) lets the C code drop, without calling visit, the functions for
        which visit (dwarf.py's) would return None or its parent: those
        whose low/high pc range holds no wanted address, and those without
        any range."""
        if self.native is not None:
            self._scan_native(visit, wanted)
        else:
            self.scan_python(visit)

    def _scan_native(self, visit, wanted):
        results = {}        # record -> what visit returned (None: subtree pruned)
        for k, die, parent_k in self.native.scan_records(self.cu.cu_die_offset, wanted):
            if parent_k is None:
                results[k] = visit(die, None)
            else:
                parent = results[parent_k]
                results[k] = visit(die, parent) if parent is not None else None

    def scan_python(self, visit):
        """scan() in Python, the reference for the C walk."""
        pos = self.cu.cu_die_offset
        end = self.end
        # Skip the unit DIE itself: its children are what we walk.
        code, pos = self._uleb(pos)
        tag, has_children, specs = self._abbrev(code)
        for name, form, implicit in specs:
            pos = self._skip(form, pos)
        if not has_children:
            return
        # Each stack entry: (mode, function index) where mode is "walk" or
        # "skip" (inside a subtree we do not care about).
        stack = [("walk", None)]
        while pos < end and stack:
            die_offset = pos
            code, pos = self._uleb(pos)
            if code == 0:
                stack.pop()
                continue
            tag, has_children, specs = self._abbrev(code)
            mode, parent = stack[-1]
            if mode == "walk" and tag in FUNCTION_TAGS:
                attrs = []
                for name, form, implicit in specs:
                    if name in WANTED_ATTRS:
                        value, pos = self._value(form, pos, implicit)
                        attrs.append((name, form, value))
                    else:
                        pos = self._skip(form, pos)
                die = ScannedDIE(die_offset, tag, attrs, has_children)
                me = visit(die, parent)
                if has_children:
                    stack.append(("walk", me) if me is not None else ("skip", parent))
                continue
            sibling = None
            layout = self._layouts.get(code)
            if layout is None:
                layout = self._layouts[code] = self._layout(specs)
            fixed, sibling_at, sibling_form = layout
            if fixed is not None:
                # Every attribute has a fixed size: skip them in one step.
                if sibling_at is not None:
                    sibling, _ = self._value(sibling_form, pos + sibling_at, None)
                pos += fixed
            else:
                for name, form, implicit in specs:
                    if name == "DW_AT_sibling" and form.startswith("DW_FORM_ref"):
                        sibling, pos = self._value(form, pos, implicit)
                    else:
                        pos = self._skip(form, pos)
            if not has_children:
                continue
            if mode == "walk" and tag in DESCEND_TAGS:
                stack.append(("walk", parent))
            elif sibling is not None and sibling > pos:
                pos = sibling
            else:
                stack.append(("skip", parent))
