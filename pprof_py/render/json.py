"""`--json`: the `--text` report as one JSON document, for CI jobs and
dashboards.  The schema is documented in docs/json-schema.md; its version
is SCHEMA_VERSION and changes only when a field changes meaning or goes
away (new optional fields do not change it).

Values are in the profile's own unit ("samples", "bytes", "objects",
"nanoseconds"), not in the rounded form --text prints; percentages are
numbers (null where --text prints "nan"/"inf").  The document is always
strict JSON in valid UTF-8: undecodable bytes in names are replaced by
U+FFFD and non-finite numbers by null.
"""
import json
import math

from pprof_py.render.escaping import json_text
from pprof_py.render.text import text_rows
from pprof_py.units import units

SCHEMA_VERSION = 1


def raw_unit(prepared):
    opts = prepared.options
    if prepared.kind in ("heap", "growth"):
        return "objects" if opts.sample_index in ("inuse_objects", "alloc_objects") else "bytes"
    if prepared.kind == "contention" and opts.contention_index != "contentions":
        return "nanoseconds"
    return "samples"


def _pct(num, tot):
    if tot == 0:
        return None
    value = num * 100.0 / tot
    return value if math.isfinite(value) else None


def _number(v):
    v = float(v)
    return int(v) if v.is_integer() else v


def nearest_exported_addresses(prepared):
    """The sampled addresses whose name is only the nearest exported symbol
    before them: they lie in a stripped object (no .symtab, no DWARF, so
    nm's names come from .dynsym) outside the extent (st_size) of every
    exported function.  In a stripped libz a frame of an internal function
    is then named after whichever exported function precedes it
    (`crc32_combine_op@@ZLIB_1.2.12`): --text keeps that name as
    gperftools' pprof prints it, --json marks it."""
    main = prepared.profiles[0]
    if main.named_by != "elf":
        return set()             # named by the profile itself, not by ELF files
    named = [a for a, frames in prepared.symbols.items()
             if frames and not frames[-1][0].startswith("0x") and frames[-1][0] != "??"]
    return prepared.objtool().named_by_nearest_export(named)


def nearest_exported_names(prepared, nearest=None):
    """The function names that such an address was given (a row or node key
    at function or line granularity starts with one of them); empty at other
    granularities, whose keys are addresses or files."""
    if prepared.options.granularity not in ("functions", "lines"):
        return set()
    if nearest is None:
        nearest = nearest_exported_addresses(prepared)
    return {prepared.symbols[a][-1][0] for a in nearest}


def is_nearest_exported(key, names):
    """Whether the report key (`name` or `name file:line`) is such a name."""
    return bool(names) and key.split(" ", 1)[0] in names


def report_dict(prepared):
    opts = prepared.options
    total = sum(prepared.flat.values())
    nearest = nearest_exported_addresses(prepared)
    # A row is marked when its name is the one such an address was given.
    nearest_names = nearest_exported_names(prepared, nearest)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": prepared.kind,
        "program": prepared.program,
        "unit": raw_unit(prepared),
        "display_unit": units(prepared.kind, opts),
        "sample_index": opts.sample_index if prepared.kind in ("heap", "growth") else None,
        "granularity": opts.granularity,
        "sort": "cum" if opts.cum else "flat",
        "base": opts.base,
        "total": _number(prepared.total),
        "shown_total": _number(total),
        "rows": [
            _marked({"name": name, "flat": _number(f), "flat_percent": _pct(f, total),
                     "sum_percent": _pct(running, total), "cum": _number(c), "cum_percent": _pct(c, total)},
                    is_nearest_exported(name, nearest_names))
            for name, f, c, running in text_rows(prepared)
        ],
    }
    if opts.stacks:
        stacks = []
        for stack, value in sorted(prepared.profile.items(), key=lambda kv: (-kv[1], kv[0])):
            frames = []
            for a in stack:
                triples = prepared.symbols.get(a)
                if triples:
                    short, fileline, _ = triples[0]
                    frames.append(_marked({"address": "%0*x" % (prepared.width, a), "name": short,
                                           "location": fileline}, a in nearest))
                else:
                    frames.append({"address": "%0*x" % (prepared.width, a), "name": None,
                                   "location": None})
            stacks.append({"value": _number(value), "frames": frames})
        doc["stacks"] = stacks
    return doc


def _marked(entry, nearest):
    if nearest:
        entry["name_source"] = "nearest exported symbol"
    return entry


def _valid(value):
    """`value` as strict JSON can hold it, for any input: names with
    undecodable bytes get U+FFFD for them (render/escaping.py), numbers that
    are not finite (an overflowed sum) become null."""
    if isinstance(value, str):
        return json_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_valid(k): _valid(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_valid(v) for v in value]
    return value


def render_json(prepared):
    return json.dumps(_valid(report_dict(prepared)), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
