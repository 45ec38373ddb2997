"""Bounds on the numbers a text profile may hold.

Counts and byte totals are stored as float64 and written to profile.proto
as int64, addresses as uint64.  A number past those bounds (a 4,301-digit
count, a 65-bit address) is not a profile any tool wrote: it is reported as
one clear ProfileFormatError naming the line, instead of failing later in
a conversion.
"""
from pprof_py.errors import ProfileFormatError

MAX_COUNT = (1 << 63) - 1
MAX_ADDRESS = (1 << 64) - 1
_HEX_DIGITS = "0123456789abcdefABCDEF"


def _shown(text):
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} characters)"


def count(text, path, where):
    """The decimal count `text` (digits only, as the parsers' regular
    expressions match them) as an int, at most MAX_COUNT."""
    digits = text.lstrip("0")
    if len(digits) > 19 or (digits and int(digits) > MAX_COUNT):
        raise ProfileFormatError(path, f"{where}: count {_shown(text)} is too large (more than 2^63-1)")
    return int(digits or "0")


def address(text, path, where):
    """The hexadecimal address `text` (with or without 0x) as an int, at
    most 64 bits; ValueError when it is not hexadecimal."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if not digits or digits.strip(_HEX_DIGITS):
        raise ValueError(f"not a hexadecimal address: {text[:40]!r}")
    digits = digits.lstrip("0")
    if len(digits) > 16:
        raise ProfileFormatError(path, f"{where}: address {_shown(text)} is wider than 64 bits")
    return int(digits or "0", 16)


def caller(address_value):
    """A return address made a call-site address (minus one), as pprof does;
    0 (a broken stack's end) stays 0 rather than becoming -1."""
    return address_value - 1 if address_value > 0 else 0
