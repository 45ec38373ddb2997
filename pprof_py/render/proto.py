"""`--proto`: the report as profile.proto (gzip-compressed, as Go pprof
writes it).

What is written: the report's address stacks (after pprof's frame removal
and every filter; for heap profiles all four value columns, each through
the same pipeline), every location's frames, and the combined memory map of
the profiles read (pprof_py/combine.py).  Message types come from
formats/proto.py, which reads the format.
"""
import gzip

from pprof_py.errors import PprofError
from pprof_py.formats.proto import HEAP_TYPES, HEAP_UNITS, messages
from pprof_py.render.escaping import json_text
from pprof_py.report import HEAP_COLUMNS


def _int64(value):
    """A sample value as profile.proto's int64 holds it."""
    if not abs(value) < 2.0 ** 63:
        raise PprofError(f"--proto: value {value:g} does not fit profile.proto's 64-bit integers")
    return int(round(value))


class _Strings:
    def __init__(self):
        self.table = [""]
        self.index = {"": 0}

    def __call__(self, text):
        # profile.proto strings are UTF-8: undecodable bytes become U+FFFD.
        text = json_text(text)
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.table)
            self.table.append(text)
        return i


def _column_profiles(prepared):
    """[(type, unit, {stack: value})] to write."""
    kind = prepared.kind
    if kind.is_heap:
        return [(name, unit, prepared.for_column(HEAP_COLUMNS[name]))
                for name, unit in zip(HEAP_TYPES, HEAP_UNITS)]
    period = prepared.main.period
    if kind == "cpu":
        result = [("samples", "count", prepared.profile)]
        if period:
            result.append(("cpu", "nanoseconds",
                           {k: v * period * 1000 for k, v in prepared.profile.items()}))
        return result
    return [("contentions" if kind == "contention" else "samples", "count", prepared.profile)]


def _split_fileline(fileline):
    if fileline in ("?", "??:0", "", ":0"):
        return "", 0
    head, sep, tail = fileline.rpartition(":")
    if sep and tail.isdigit():
        return head, int(tail)
    return fileline, 0


def build_proto(prepared):
    """The Profile message for a report."""
    M = messages()
    strings = _Strings()
    msg = M["Profile"]()
    columns = _column_profiles(prepared)
    for name, unit, _ in columns:
        msg.sample_type.add(type=strings(name), unit=strings(unit))
    main = prepared.main
    if prepared.kind == "cpu" and main.period:
        msg.period_type.type = strings("cpu")
        msg.period_type.unit = strings("nanoseconds")
        msg.period = int(main.period) * 1000
    elif prepared.kind in ("heap", "growth"):
        msg.period_type.type = strings("space")
        msg.period_type.unit = strings("bytes")
    if prepared.kind in ("heap", "growth"):
        msg.default_sample_type = strings(prepared.options.sample_index)

    mapping_ids = []
    for i, m in enumerate(prepared.inputs.mappings, 1):
        msg.mapping.add(id=i, memory_start=m.start, memory_limit=m.limit, file_offset=m.offset,
                        filename=strings(m.path), build_id=strings(m.build_id or ""),
                        has_functions=True, has_filenames=True, has_line_numbers=True,
                        has_inline_frames=True)
        mapping_ids.append((m.start, m.limit, i))

    functions = {}
    location_ids = {}

    def location_id(address):
        lid = location_ids.get(address)
        if lid is not None:
            return lid
        lid = location_ids[address] = len(location_ids) + 1
        mapping = 0
        for start, limit, mid in mapping_ids:
            if start <= address < limit:
                mapping = mid
                break
        loc = msg.location.add(id=lid, mapping_id=mapping, address=address)
        for short, fileline, full in reversed(prepared.symbols.get(address) or []):
            filename, line = _split_fileline(fileline)
            key = (short, full, filename)
            fid = functions.get(key)
            if fid is None:
                fid = functions[key] = len(functions) + 1
                msg.function.add(id=fid, name=strings(short), system_name=strings(full),
                                 filename=strings(filename))
            loc.line.add(function_id=fid, line=line)
        return lid

    stacks = sorted(set().union(*(c[2].keys() for c in columns)))
    for stack in stacks:
        values = [c[2].get(stack, 0) for c in columns]
        if not any(values):
            continue
        sample = msg.sample.add()
        sample.location_id.extend(location_id(a) for a in stack)
        sample.value.extend(_int64(v) for v in values)
    for comment in main.comments:
        msg.comment.append(strings(comment))
    msg.string_table.extend(strings.table)
    return msg


def render_proto(prepared):
    """`--proto`: the gzip-compressed profile.proto (bytes)."""
    data = build_proto(prepared).SerializeToString()
    return gzip.compress(data, mtime=0)

