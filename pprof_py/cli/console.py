"""Console helpers: all diagnostics go to stderr, data to stdout.  rich (for
progress bars) is used with markup and highlighting off, because symbol
names contain brackets (``[abi:cxx11]``) that rich would otherwise
interpret."""
import sys

from pprof_py.render.escaping import visible, visible_bytes

_stderr = None


def stderr_console():
    global _stderr
    if _stderr is None:
        # rich is imported only when a progress bar is really shown: it is a
        # sixth of pprof's start-up, and most runs never draw one.
        from rich.console import Console
        _stderr = Console(stderr=True, markup=False, highlight=False, emoji=False, soft_wrap=True)
    return _stderr


def for_terminal(stream, text):
    """`text` as it may be written to `stream`: on a terminal, control
    characters (escape sequences in a hostile symbol name) are shown as
    `cat -v` does; files and pipes get it unchanged."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return visible(text) if tty else text


def write_stdout(data):
    """Write a report (bytes) to stdout: exact bytes to a file or pipe,
    `cat -v`-escaped to a terminal."""
    stream = sys.stdout.buffer
    if stream.isatty():
        data = visible_bytes(data)
    stream.write(data)
    stream.flush()


def error(message):
    """One line on stderr, prefixed with the program name."""
    line = " ".join(str(message).split("\n")).strip()
    sys.stderr.write(for_terminal(sys.stderr, f"pprof: {line}\n"))
    sys.stderr.flush()


def note(message):
    sys.stderr.write(for_terminal(sys.stderr, f"{message}\n"))


class DelayedProgress:
    """A rich progress bar on stderr that appears only if the work is still
    going after `delay` seconds, and only when stderr is a terminal."""

    def __init__(self, label, delay=1.0):
        import time
        self._time = time.monotonic
        self._label = label
        self._delay = delay
        self._start = self._time()
        self._progress = None
        self._task = None
        self._enabled = sys.stderr.isatty()

    def update(self, done, total):
        if not self._enabled:
            return
        if self._progress is None:
            if self._time() - self._start < self._delay:
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                      console=stderr_console(), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=total)
        self._progress.update(self._task, completed=done, total=total)

    def close(self):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
