"""The headers of an ELF file, read with struct: file header, section
headers (with their names), program headers and the GNU build-id note.

A warm run (symbol cache filled) needs only these from each object file: its
identity for the cache key, .text's address for pprof's offset adjustment,
the segments and sections for the "is this the profiled binary?" checks.
pyelftools parses its headers through `construct`, which cost more than
the rest of a warm run on a small profile (cc1 has 40 sections: 0.1 s), and
importing it 25 ms; ObjectFile creates its ELFFile only when DWARF, symbol
versions or relocations are read.

Sections and segments are read-only mappings with pyelftools' key names
(``sec["sh_addr"]``), and ``sh_type`` / ``p_type`` use its spellings for
the types pprof_py compares against ("SHT_NOTE", "PT_LOAD"), so code written
against pyelftools' objects reads these the same way.  Raises ValueError
for anything that is not a well-formed ELF header table.
"""
import struct

# The section and segment types our readers compare against, spelled as
# pyelftools spells them; other types stay integers.
SECTION_TYPES = {0: "SHT_NULL", 1: "SHT_PROGBITS", 2: "SHT_SYMTAB", 3: "SHT_STRTAB", 4: "SHT_RELA",
                 5: "SHT_HASH", 6: "SHT_DYNAMIC", 7: "SHT_NOTE", 8: "SHT_NOBITS", 9: "SHT_REL",
                 11: "SHT_DYNSYM", 14: "SHT_INIT_ARRAY", 15: "SHT_FINI_ARRAY", 17: "SHT_GROUP",
                 0x6ffffff6: "SHT_GNU_HASH", 0x6ffffffd: "SHT_GNU_verdef",
                 0x6ffffffe: "SHT_GNU_verneed", 0x6fffffff: "SHT_GNU_versym"}
SEGMENT_TYPES = {0: "PT_NULL", 1: "PT_LOAD", 2: "PT_DYNAMIC", 3: "PT_INTERP", 4: "PT_NOTE", 6: "PT_PHDR",
                 7: "PT_TLS", 0x6474e550: "PT_GNU_EH_FRAME", 0x6474e551: "PT_GNU_STACK",
                 0x6474e552: "PT_GNU_RELRO"}
FILE_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
SHN_XINDEX = 0xffff
NT_GNU_BUILD_ID = 3

# Field names and struct codes, in file order, per ELF class.
_SECTION_FIELDS = {
    64: ("sh_name sh_type sh_flags sh_addr sh_offset sh_size sh_link sh_info sh_addralign sh_entsize",
         "IIQQQQIIQQ"),
    32: ("sh_name sh_type sh_flags sh_addr sh_offset sh_size sh_link sh_info sh_addralign sh_entsize",
         "IIIIIIIIII"),
}
_SEGMENT_FIELDS = {
    64: ("p_type p_flags p_offset p_vaddr p_paddr p_filesz p_memsz p_align", "IIQQQQQQ"),
    32: ("p_type p_offset p_vaddr p_paddr p_filesz p_memsz p_flags p_align", "IIIIIIII"),
}


class Section(dict):
    """One section header: its fields by name, plus `name` and `data()`."""

    def __init__(self, headers, fields):
        super().__init__(fields)
        self._headers = headers
        self.name = ""

    def data(self):
        if self["sh_type"] == "SHT_NOBITS":
            return b""
        return self._headers.read(self["sh_offset"], self["sh_size"])


class ElfHeaders:
    """The headers of the ELF file open as `stream` (a binary file object)."""

    def __init__(self, stream):
        self.stream = stream
        self.size = stream.seek(0, 2)
        ident = self.read(0, 16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise ValueError("magic number does not match")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ValueError(f"unknown ELF class {ident[4]} or data encoding {ident[5]}")
        self.elfclass = 64 if ident[4] == 2 else 32
        self.little_endian = ident[5] == 1
        self._order = "<" if self.little_endian else ">"
        if self.elfclass == 64:
            layout = "HHIQQQIHHHHHH"
        else:
            layout = "HHIIIIIHHHHHH"
        fmt = self._order + layout
        raw = self.read(16, struct.calcsize(fmt))
        (e_type, self.e_machine, _version, self.e_entry, e_phoff, e_shoff, _flags, _ehsize,
         e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx) = struct.unpack(fmt, raw)
        self.e_type = FILE_TYPES.get(e_type, e_type)
        self.e_shoff, self.e_shentsize = e_shoff, e_shentsize
        self.sections = self._read_sections(e_shoff, e_shentsize, e_shnum, e_shstrndx)
        self.e_shnum = len(self.sections)
        self.segments = self._read_table(e_phoff, e_phentsize, e_phnum, _SEGMENT_FIELDS[self.elfclass],
                                         SEGMENT_TYPES, "p_type", dict)

    def read(self, offset, size):
        self.stream.seek(offset)
        return self.stream.read(size)

    def _read_table(self, offset, entsize, count, spec, type_names, type_key, make):
        names, codes = spec
        fmt = self._order + codes
        size = struct.calcsize(fmt)
        if count and entsize < size:
            raise ValueError(f"header table entries of {entsize} bytes, need {size}")
        raw = self.read(offset, entsize * count) if count else b""
        if len(raw) < entsize * count:
            raise ValueError("header table past the end of the file")
        keys = names.split()
        rows = []
        for i in range(count):
            fields = dict(zip(keys, struct.unpack_from(fmt, raw, i * entsize)))
            fields[type_key] = type_names.get(fields[type_key], fields[type_key])
            rows.append(make(fields))
        return rows

    def _read_sections(self, offset, entsize, count, strndx):
        if offset == 0:
            return []
        make = lambda fields: Section(self, fields)      # noqa: E731
        spec = _SECTION_FIELDS[self.elfclass]
        if count == 0 or strndx == SHN_XINDEX:
            # Extended numbering: section 0 holds the real count and index.
            first = self._read_table(offset, entsize, 1, spec, SECTION_TYPES, "sh_type", make)[0]
            count = count or first["sh_size"]
            if strndx == SHN_XINDEX:
                strndx = first["sh_link"]
        if count > 1 << 20:
            raise ValueError(f"{count} sections")
        sections = self._read_table(offset, entsize, count, spec, SECTION_TYPES, "sh_type", make)
        if 0 < strndx < len(sections):
            names = sections[strndx]
            table = b""
            # A damaged size is not read (the caller reports the section).
            if names["sh_type"] != "SHT_NOBITS" and names["sh_offset"] + names["sh_size"] <= self.size:
                table = self.read(names["sh_offset"], names["sh_size"])
            for sec in sections:
                end = table.find(b"\0", sec["sh_name"])
                sec.name = table[sec["sh_name"]:end if end >= 0 else None].decode("utf-8", "replace")
        return sections

    def section_by_name(self, name):
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None

    def build_id(self):
        """The GNU build-id note's bytes in hex, as pyelftools' n_desc, or ""."""
        for sec in self.sections:
            if sec["sh_type"] != "SHT_NOTE":
                continue
            data = sec.data()
            pos = 0
            while pos + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from(self._order + "III", data, pos)
                pos += 12
                name = data[pos:pos + namesz].split(b"\0", 1)[0]
                pos += (namesz + 3) & ~3
                desc = data[pos:pos + descsz]
                pos += (descsz + 3) & ~3
                if ntype == NT_GNU_BUILD_ID and name == b"GNU":
                    return desc.hex()
        return ""
