"""gperftools lock-contention profiles (text).

    --- contention
    cycles/second = 2800000000
    sampling period = 1
    <cycles> <count> @ 0xaddr 0xaddr ...        (leaf first)
    <cycles> @ 0xaddr ...                        (older form, no count)
    <the /proc/self/maps lines>

`name = value` lines set the clock rate (cycles per second; 2.8 GHz when
missing, as pprof assumes) and the sampling period, and apply to the stack
lines after them.  Delays are converted to nanoseconds and multiplied by the
sampling period, like pprof does; each stack line yields the total delay,
the number of contentions and their mean delay, and identical stacks are
summed (mean delays too, as in pprof).  A line without a count adds its
delay to all three, as pprof does.  Other lines are memory-map lines.
"""
import math
import re

from pprof_py.errors import ProfileFormatError
from pprof_py.formats import limits
from pprof_py.formats.procmaps import parse_maps
from pprof_py.model import ProfileBuilder, ValueType

CONTENTION_TYPES = [ValueType("delay", "nanoseconds"), ValueType("contentions", "count"),
                    ValueType("mean_delay", "nanoseconds")]
_WITH_COUNT = re.compile(r"^\s*(\d+)\s+(\d+) @\s*(.*?)\s*$")
_CYCLES_ONLY = (re.compile(r"^(slow release).*thread \d+  @\s*(.*?)\s*$"), re.compile(r"^\s*(\d+) @\s*(.*?)\s*$"))
_VARIABLE = re.compile(r"^([a-z][^=]*)=(.*)$")


def parse_contention_profile(text, path, warnings):
    builder = ProfileBuilder("contention", CONTENTION_TYPES)
    cycles_per_ns = 2.8
    seen_rate = False
    period = 1
    maps = []
    for lineno, raw in enumerate(text.split("\n"), 2):
        line = raw.replace("\r", "")
        where = f"line {lineno}"
        m = _WITH_COUNT.match(line)
        if m:
            cycles = limits.count(m.group(1), path, where) / cycles_per_ns * period
            count = limits.count(m.group(2), path, where) * period
            _add(builder, m.group(3), (cycles, count, cycles / count if count else 0.0), path, where)
            continue
        m = _CYCLES_ONLY[0].match(line) or _CYCLES_ONLY[1].match(line)
        if m:
            if m.group(1).isdigit():
                # pprof adds the delay whatever the report shows (contentions
                # and mean delay included): a line without a count has only it.
                cycles = limits.count(m.group(1), path, where) / cycles_per_ns * period
                _add(builder, m.group(2), (cycles, cycles, cycles), path, where)
            continue
        m = _VARIABLE.match(line)
        if m:
            name, value = m.group(1).strip(), m.group(2).strip()
            try:
                if name == "cycles/second":
                    cycles_per_ns = _positive(value, name, path, where) / 1e9
                    seen_rate = True
                elif name == "sampling period":
                    period = _positive(value, name, path, where)
            except ValueError:
                warnings.append(f"Ignoring bad value in contention profile: '{name}' = '{value}'")
            continue
        maps.append(line)
    if not seen_rate:
        warnings.append("No cycles/second entry in profile; Guessing %.1f GHz" % cycles_per_ns)
    return builder.build(mappings=parse_maps("\n".join(maps)), period=period)


def _positive(value, name, path, where):
    """A clock rate or sampling period: a finite number above zero (0 would
    divide by zero, nan and inf would make every value meaningless)."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ProfileFormatError(path, f"{where}: {name} must be a positive number, not {value[:40]!r}")
    return number


def _add(builder, stack_text, values, path, where):
    if not all(math.isfinite(v) for v in values):
        raise ProfileFormatError(path, f"{where}: delay too large")
    addresses = []
    for i, word in enumerate(stack_text.split()):
        try:
            a = limits.address(word, path, where)
        except ValueError:
            return
        addresses.append(a if i == 0 else limits.caller(a))
    builder.add(addresses, values)
