"""LEB128, DWARF's variable-length integers (DWARF 5, section 7.6): seven
bits per byte, low bits first, high bit set on every byte but the last."""


def uleb(data, pos):
    """Unsigned LEB128 at data[pos]: (value, position after it)."""
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7f) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def sleb(data, pos):
    """Signed LEB128 at data[pos]: (value, position after it)."""
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7f) << shift
        shift += 7
        if b < 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos
