"""ctypes bindings of the native DWARF decoders (pprof_py/native/src/dwarf/,
interface in its dwarfscan.h): the line-number state machine and the walk
over a unit's DIEs, the two loops that dominate a cold symbolization when
written in Python.

dwarf.py and dies.py keep the Python implementations: they are the
reference (tests/symbolize/test_dwarf_native.py checks that both give the
same answers) and the fallback when the library is not built, cannot be
loaded, or says a table is outside what it handles (PPD_E_UNSUPPORTED).
Set PPROF_PY_NATIVE_DWARF=0 to use only the Python code.

Damaged input makes the C code return PPD_E_DAMAGED; we raise ValueError,
which the symbolizer handles as damaged debug info (cache.DWARF_DAMAGE).
"""
import ctypes
import os
from array import array

from pprof_py.symbolize.dies import ScannedDIE, enum_names

PPD_OK, PPD_E_DAMAGED, PPD_E_UNSUPPORTED, PPD_E_NOSPACE, PPD_E_NOMEM = 0, -1, -2, -3, -4


class Unsupported(Exception):
    """The native code declines this input; the Python reader handles it."""


class _Unit(ctypes.Structure):
    _fields_ = [("info", ctypes.c_char_p), ("info_len", ctypes.c_size_t),
                ("unit_offset", ctypes.c_uint64), ("end", ctypes.c_uint64),
                ("version", ctypes.c_int), ("address_size", ctypes.c_int),
                ("offset_size", ctypes.c_int), ("little_endian", ctypes.c_int)]


_lib = None
_tried = False


def library():
    """The loaded library, or None (not built, or disabled)."""
    global _lib, _tried
    if not _tried:
        _tried = True
        if os.environ.get("PPROF_PY_NATIVE_DWARF", "1") != "0":
            try:
                from pprof_py.native import libpath
                lib = ctypes.CDLL(libpath("dwarf"))
            except (OSError, RuntimeError):
                lib = None
            if lib is not None:
                _declare(lib)
                _lib = lib
    return _lib


def _declare(lib):
    p, size, u64, i = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_int
    lib.ppd_line_lookup.argtypes = [ctypes.c_char_p, size, i, i, ctypes.c_uint, i, ctypes.c_uint,
                                    ctypes.c_uint, ctypes.c_char_p, p, size, p, p, p]
    lib.ppd_line_lookup.restype = i
    lib.ppd_abbrev_parse.argtypes = [ctypes.c_char_p, size, size, ctypes.POINTER(i)]
    lib.ppd_abbrev_parse.restype = p
    lib.ppd_abbrev_free.argtypes = [p]
    lib.ppd_abbrev_free.restype = None
    lib.ppd_decode_die.argtypes = [ctypes.POINTER(_Unit), p, u64, i, p, size]
    lib.ppd_decode_die.restype = ctypes.c_long
    lib.ppd_scan_unit.argtypes = [ctypes.POINTER(_Unit), p, u64, p, size, p, size]
    lib.ppd_scan_unit.restype = ctypes.c_long


def _check(rc, what):
    if rc >= 0:
        return rc
    if rc == PPD_E_DAMAGED:
        raise ValueError(f"damaged DWARF: {what}")
    if rc == PPD_E_UNSUPPORTED:
        raise Unsupported(what)
    if rc == PPD_E_NOMEM:
        raise MemoryError(what)
    raise ValueError(f"native DWARF decoder error {rc}: {what}")


def _address_of(buf):
    return ctypes.addressof(ctypes.c_char.from_buffer(buf)) if len(buf) else None


def line_lookup(program, version, little_endian, min_inst, line_base, line_range, opcode_base,
                std_lengths, wanted):
    """For each address of the sorted list `wanted`: (file register, line)
    of the row addr2line prints, or None when no sequence holds it."""
    lib = library()
    n = len(wanted)
    want = array("Q", wanted)
    files = array("Q", bytes(8 * n))
    lines = array("q", bytes(8 * n))
    found = bytearray(n)
    lengths = bytes(std_lengths[:max(opcode_base - 1, 0)]).ljust(max(opcode_base - 1, 0), b"\0")
    if not 0 <= line_base + 128 < 256 or not 0 <= min_inst < 256 or not 0 <= line_range < 256:
        raise ValueError("damaged DWARF: line program header")
    rc = lib.ppd_line_lookup(program, len(program), version, 1 if little_endian else 0, min_inst, line_base,
                             line_range, opcode_base, lengths, _address_of(want), n, _address_of(files),
                             _address_of(lines), _address_of(found))
    _check(rc, "line program")
    return [(f, line) if ok else None for f, line, ok in zip(files, lines, found)]


class AbbrevTable:
    """A .debug_abbrev table parsed by the C code (freed with the object)."""

    def __init__(self, data, offset):
        self._lib = library()
        err = ctypes.c_int(0)
        self.handle = self._lib.ppd_abbrev_parse(data, len(data), offset, ctypes.byref(err))
        if not self.handle:
            _check(err.value or PPD_E_DAMAGED, f"abbreviation table at {offset:#x}")

    def __del__(self):
        if getattr(self, "handle", None):
            self._lib.ppd_abbrev_free(self.handle)
            self.handle = None


# form code -> how dies.py's _value presents its value
_SIGNED = {0x0d, 0x21}                          # sdata, implicit_const
_BOOL = {0x0c, 0x19}                            # flag, flag_present
_STRING = 0x08
_NO_VALUE = {0x1d, 0x1f20, 0x1f21, 0x22, 0x20, 0x24, 0x1c, 0x1e, 0x0a, 0x03, 0x04, 0x09, 0x18, 0x16}


class NativeUnit:
    """One unit's .debug_info as the C code reads it."""

    def __init__(self, info, unit_offset, end, version, address_size, offset_size, little_endian, abbrevs):
        self.lib = library()
        self.info = info
        self.unit = _Unit(info, len(info), unit_offset, end, version, address_size, offset_size,
                          1 if little_endian else 0)
        self.abbrevs = abbrevs
        tags, forms, attrs = enum_names()
        self._tags, self._forms, self._attrs = tags, forms, attrs

    def _attr_list(self, words, k, n):
        """n (attribute, form, value) triples from words[k:] as ScannedDIE
        attributes (names as dies.py spells them)."""
        out = []
        attr_names, form_names = self._attrs, self._forms
        for j in range(k, k + 3 * n, 3):
            attr, form, value = words[j], words[j + 1], words[j + 2]
            if form in _NO_VALUE:
                value = None
            elif form in _SIGNED:
                if value >= 1 << 63:
                    value -= 1 << 64
            elif form in _BOOL:
                value = value != 0
            elif form == _STRING:
                end = self.info.index(b"\0", value)
                value = self.info[value:end].decode("utf-8", "surrogateescape")
            out.append((attr_names.get(attr) or "DW_AT_unknown_%#x" % attr,
                        form_names.get(form) or "DW_FORM_unknown_%#x" % form, value))
        return out

    def _tag(self, tag):
        return self._tags.get(tag) or "DW_TAG_unknown_%#x" % tag

    def die_at(self, offset, everything=False):
        cap = 256
        while True:
            buf = array("Q", bytes(8 * cap))
            rc = self.lib.ppd_decode_die(ctypes.byref(self.unit), self.abbrevs.handle, offset,
                                         1 if everything else 0, _address_of(buf), cap)
            if rc != PPD_E_NOSPACE:
                break
            cap *= 4
        n = _check(rc, f"DIE at {offset:#x}")
        words = buf[:n].tolist()
        return ScannedDIE(words[0], self._tag(words[2]), self._attr_list(words, 5, words[4]), bool(words[3]))

    def scan_records(self, die_offset, wanted):
        """ppd_scan_unit's records: [(record index, DIE, parent record index
        or None)], in DIE order."""
        want = array("Q", wanted)
        cap = max(4096, (self.unit.end - die_offset) // 16)     # grown below when short
        while True:
            buf = array("Q", bytes(8 * cap))
            rc = self.lib.ppd_scan_unit(ctypes.byref(self.unit), self.abbrevs.handle, die_offset,
                                        _address_of(want), len(want), _address_of(buf), cap)
            if rc != PPD_E_NOSPACE:
                break
            cap *= 4
        n = _check(rc, f"unit at {self.unit.unit_offset:#x}")
        words = buf[:n].tolist()
        records = []
        k = 0
        while k < n:
            nattrs = words[k + 4]
            parent = words[k + 1]
            die = ScannedDIE(words[k], self._tag(words[k + 2]), self._attr_list(words, k + 5, nattrs),
                             bool(words[k + 3]))
            records.append((k, die, parent - 1 if parent else None))
            k += 5 + 3 * nattrs
        return records

