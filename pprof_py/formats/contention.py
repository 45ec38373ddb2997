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
import re

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
    for raw in text.split("\n"):
        line = raw.replace("\r", "")
        m = _WITH_COUNT.match(line)
        if m:
            cycles = int(m.group(1)) / cycles_per_ns * period
            count = int(m.group(2)) * period
            _add(builder, m.group(3), (cycles, count, cycles / count if count else 0.0))
            continue
        m = _CYCLES_ONLY[0].match(line) or _CYCLES_ONLY[1].match(line)
        if m:
            if m.group(1).isdigit():
                # pprof adds the delay whatever the report shows (contentions
                # and mean delay included): a line without a count has only it.
                cycles = int(m.group(1)) / cycles_per_ns * period
                _add(builder, m.group(2), (cycles, cycles, cycles))
            continue
        m = _VARIABLE.match(line)
        if m:
            name, value = m.group(1).strip(), m.group(2).strip()
            try:
                if name == "cycles/second":
                    cycles_per_ns = float(value) / 1e9
                    seen_rate = True
                elif name == "sampling period":
                    period = float(value)
            except ValueError:
                warnings.append(f"Ignoring bad value in contention profile: '{name}' = '{value}'")
            continue
        maps.append(line)
    if not seen_rate:
        warnings.append("No cycles/second entry in profile; Guessing %.1f GHz" % cycles_per_ns)
    return builder.build(mappings=parse_maps("\n".join(maps)), period=period)


def _add(builder, stack_text, values):
    addresses = []
    for i, word in enumerate(stack_text.split()):
        try:
            a = int(word, 16)
        except ValueError:
            return
        addresses.append(a if i == 0 else a - 1)
    builder.add(addresses, values)
