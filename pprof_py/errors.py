"""Errors a user can cause.  The CLI turns each into one line on stderr and a
non-zero exit code; nothing below the CLI prints or exits."""


class PprofError(Exception):
    """Base class: a problem with the user's input, reported in one line."""

    exit_code = 1


class ProfileFormatError(PprofError):
    """A profile file that cannot be read: names the file, and for binary
    formats the byte offset where parsing stopped."""

    def __init__(self, path, reason, offset=None):
        self.path = path
        self.reason = reason
        self.offset = offset
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"{path}: {reason}{where}")


class SymbolizationError(PprofError):
    """An object file that exists but cannot be used (not ELF, corrupt)."""
