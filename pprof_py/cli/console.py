"""Console helpers: all diagnostics go to stderr, data to stdout.  rich is
used with markup and highlighting off, because symbol names contain
brackets (``[abi:cxx11]``) that rich would otherwise interpret."""
import sys

from rich.console import Console

_stderr = None


def stderr_console():
    global _stderr
    if _stderr is None:
        _stderr = Console(stderr=True, markup=False, highlight=False, emoji=False, soft_wrap=True)
    return _stderr


def error(message):
    """One line on stderr, prefixed with the program name."""
    line = " ".join(str(message).split("\n")).strip()
    sys.stderr.write(f"pprof: {line}\n")
    sys.stderr.flush()


def note(message):
    sys.stderr.write(f"{message}\n")
