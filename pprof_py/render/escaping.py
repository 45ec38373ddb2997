"""Making hostile names safe for each output.

Frame names come from the inputs (folded stacks, `--raw` and proto profiles
name their frames themselves, ELF symbols and DWARF names are bytes the
compiler or an attacker chose), so they may hold anything: control
characters, terminal escape sequences, bytes that are not UTF-8 (kept as
U+DC80..U+DCFF by the "surrogateescape" error handler) or the quoting
characters of an output format.  Each output makes them safe its own way:

* a terminal (`visible`): control characters are shown as `cat -v` does
  (``^[`` for ESC, ``^?`` for DEL, ``M-^[`` for the C1 control U+009B,
  ``M-x`` for an undecodable byte 0x80 + ord(x)), so a name cannot move the
  cursor, retitle the window or clear the screen.  Files and pipes get the
  exact bytes;
* XML/SVG/HTML (`xml_text`): `visible`, then ``& < > " '`` as entities, so
  every document is well-formed whatever the names (XML 1.0 has no way at
  all to write most control characters, not even as references);
* JSON (`json_text`): undecodable bytes become U+FFFD, so the document is
  valid UTF-8 (json.dumps escapes the control characters itself).

DOT labels are escaped in render/dot.py (dot_string), on top of `visible`.
"""
import re

# Characters a terminal may act on (C0 controls but tab and newline, DEL,
# C1 controls), undecodable bytes kept by surrogateescape (U+DC80..U+DCFF),
# other lone surrogates, and the two noncharacters XML 1.0 forbids.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_UNSAFE_WITH_LAYOUT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_UNDECODABLE = re.compile("[\ud800-\udfff]")


def _caret(code):
    """cat -v's notation for a byte value below 0x100 that is a control."""
    if code >= 0x80:
        return "M-" + _caret(code - 0x80)
    if code == 0x7f:
        return "^?"
    if code < 0x20:
        return "^" + chr(code + 0x40)
    return chr(code)


def _replace(match):
    c = ord(match.group())
    if 0xdc80 <= c <= 0xdcff:           # an undecodable byte, as surrogateescape kept it
        return _caret(c - 0xdc00)
    if c >= 0xd800:                     # other lone surrogates, U+FFFE, U+FFFF
        return "\ufffd"
    return _caret(c)


def visible(text, keep_layout=True):
    """`text` with every control character and undecodable byte written as
    `cat -v` does.  With `keep_layout`, tab and newline stay (whole reports);
    without, they are escaped too (a single name)."""
    pattern = _UNSAFE if keep_layout else _UNSAFE_WITH_LAYOUT
    if pattern.search(text) is None:
        return text
    return pattern.sub(_replace, text)


def visible_bytes(data):
    """`visible` for output bytes (UTF-8 with any invalid bytes)."""
    text = data.decode("utf-8", "surrogateescape")
    if _UNSAFE.search(text) is None:
        return data
    return visible(text).encode("utf-8")


_XML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_XML_SPECIAL = re.compile("[&<>\"']")


def xml_text(text):
    """`text` for XML character data or a quoted attribute value: always
    well-formed.  Newlines and tabs stay (a <title> tooltip uses them)."""
    return _XML_SPECIAL.sub(lambda m: _XML_ENTITIES[m.group()], visible(str(text)))


def json_text(text):
    """`text` as a JSON string may hold it: valid Unicode, undecodable bytes
    as U+FFFD (json.dumps escapes control characters itself)."""
    if _UNDECODABLE.search(text) is None:
        return text
    return _UNDECODABLE.sub("\ufffd", text)
