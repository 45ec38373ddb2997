"""How the web UI writes values: the CLI's own number (`unparse`, so a
table can be checked against `--text`), and a reading for people:

    CPU            535 samples, and the time they stand for (5.35s at the
                   profile's sampling period)
    heap space     bytes with a unit (78.1MB; 1 MB = 1024 kB = 1048576 B,
                   as pprof counts them)
    heap objects   a count
    contention     delays as times (65ms), contentions as a count

With --base every reading of a difference is signed (+12, -3.5MB).
"""
from pprof_py.units import unparse, units


def _trim(text):
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration(seconds):
    """5.35s, 10ms, 150us, 20ns."""
    a = abs(seconds)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if a >= scale:
            return _trim("%.2f" % (seconds / scale)) + unit
    return _trim("%.2f" % (seconds / 1e-9)) + "ns"


def size(nbytes):
    """78.1MB, 512B."""
    a = abs(nbytes)
    for unit, scale in (("GB", 1024.0 ** 3), ("MB", 1024.0 ** 2), ("kB", 1024.0)):
        if a >= scale:
            return _trim("%.2f" % (nbytes / scale)) + unit
    return count(nbytes) + "B"


def count(value):
    if float(value).is_integer():
        return "%d" % value
    return "%.4g" % value


class Values:
    def __init__(self, prepared):
        self.kind, self.opts = prepared.kind, prepared.options
        self.signed = bool(self.opts.base)
        self.unit = units(self.kind, self.opts)
        main = prepared.profiles[0] if prepared.profiles else None
        # CPU profiles record microseconds per sample.
        self.period = (getattr(main, "period", 0) or 0) if self.kind == "cpu" else 0

    def cli(self, value):
        """The number exactly as --text / --list print it."""
        return unparse(value, self.kind, self.opts)

    def _sign(self, value, text):
        return "+" + text if self.signed and value > 0 else text

    def _reading(self, value):
        k, o = self.kind, self.opts
        if k in ("heap", "growth"):
            if o.sample_index in ("inuse_objects", "alloc_objects"):
                return count(value)
            return size(value)
        if k == "contention":
            if o.contention_index == "contentions":
                return count(value)
            return duration(value / 1e9)      # delays are kept in nanoseconds
        return count(value)

    def number(self, value):
        """The value for a table cell (its unit is in the column header
        unless the reading carries one)."""
        return self._sign(value, self._reading(value))

    def extra(self, value):
        """CPU: the time the samples stand for; otherwise (and for 0) ""."""
        if self.period and value:
            return self._sign(value, duration(value * self.period / 1e6))
        return ""

    def label(self, value):
        """The value with its unit, for tooltips and headers: "1 sample",
        "535 samples (5.35s)", "78.1MB", "12 objects"."""
        text = self.number(value)
        if self.kind in ("heap", "growth") and self.unit != "objects":
            return text
        if self.kind == "contention" and self.opts.contention_index != "contentions":
            return text
        unit = self.unit if self.kind != "contention" else "contentions"
        if abs(value) == 1 and unit.endswith("s"):
            unit = unit[:-1]
        text = f"{text} {unit}"
        extra = self.extra(value)
        return f"{text} ({extra})" if extra else text

    def header_unit(self):
        """The unit named in a column header."""
        if self.kind in ("heap", "growth") and self.unit != "objects":
            return "bytes"
        if self.kind == "contention":
            return "contentions" if self.opts.contention_index == "contentions" else "delay"
        return self.unit
