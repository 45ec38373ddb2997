"""`--text`: pprof's flat/cumulative table.

    Total: 120 samples
          60  50.0%  50.0%       60  50.0% heavy
    flat  flat%   sum%      cum   cum%  name

Rows are sorted by flat (or cum with --cum) descending, then by name; sum%
is the running flat sum.  Percentages are of the flat total after filters.
With --stacks, CPU profiles first list every stack and its count, heap
profiles every allocation stack ("Leak of ...").
"""
from pprof_py.units import percent, unparse, units


def _location_text(prepared, address):
    triples = prepared.symbols.get(address)
    if not triples:
        return "??:0:unknown"
    short, fileline, _ = triples[0]
    if fileline in ("?", ":0"):
        fileline = "??:0"
    return f"{fileline}:{short}"


def _stacks_section(prepared, out):
    width = prepared.width
    # Each stack with its count, leaf first (pprof prints them in hash order;
    # we sort by count, then by stack, so the output is stable).
    for stack, count in sorted(prepared.profile.items(), key=lambda kv: (-kv[1], kv[0])):
        parts = ["(%0*x) %s" % (width, a, _location_text(prepared, a)) for a in stack]
        out.append("%-8d %s" % (int(count), "\n         ".join(parts)))
        out.append("")
    records = prepared.heap_records
    if prepared.kind in ("heap", "growth") and records:
        # Sorted by in-use bytes, descending; ties keep file order.  pprof
        # prints the leaf address as written in the file (and cannot name
        # it unless the file zero-pads it); callers are adjusted and padded.
        for n1, s1, n2, s2, leaf_text, addrs in sorted(records, key=lambda r: -r[1]):
            out.append("Leak of %s bytes in %s objects allocated from:" % (_perl_num(s1), _perl_num(n1)))
            for i, a in enumerate(addrs):
                text = leaf_text if i == 0 else "%0*x" % (width, a)
                triples = prepared.symbols.get(a) if (i > 0 or len(text) == width) else None
                sym = f"{triples[0][0]} {triples[0][1]}" if triples else "unknown"
                out.append("\t@ %s %s" % (text, sym))
        out.append("")


def _display(key, symbols, width, opts):
    """A key that is a bare address pprof could still look up (a frame whose
    function is "??") is shown as "name file:line", like pprof does."""
    if len(key) == width:
        try:
            address = int(key, 16)
        except ValueError:
            return key
        triples = symbols.get(address)
        if triples and "%0*x" % (width, address) == key:
            sym = f"{triples[0][0]} {triples[0][1]}"
            return f"{key} {sym}" if opts.granularity == "addresses" else sym
    return key


def _perl_num(value):
    """Perl's default stringification of a number (integers print bare)."""
    if float(value).is_integer():
        return "%d" % value
    return "%.15g" % value


def render_text(prepared):
    opts = prepared.options
    kind = prepared.kind
    out = []
    if prepared.total != 0:
        out.append("Total: %s %s" % (unparse(prepared.total, kind, opts), units(kind, opts)))
    if opts.stacks:
        out.append("Stacks:")
        out.append("")
        _stacks_section(prepared, out)
    total = sum(prepared.flat.values())
    for name, f, c, running in text_rows(prepared):
        out.append("%8s %6s %6s %8s %6s %s" % (
            unparse(f, kind, opts), percent(f, total), percent(running, total),
            unparse(c, kind, opts), percent(c, total), name))
    return "\n".join(out) + ("\n" if out else "")


def text_rows(prepared):
    """The rows of --text, in its order: [(name, flat, cum, running flat)].
    Sorted by flat (or cum with --cum) descending, then by name bytes; rows
    with nothing in them are left out."""
    flat, cum = prepared.flat, prepared.cum
    sort_by = cum if prepared.options.cum else flat
    rows = []
    running = 0
    for key in sorted(cum, key=lambda k: (-sort_by.get(k, 0), k.encode("utf-8", "surrogateescape"))):
        f = flat.get(key, 0)
        c = cum.get(key, 0)
        running += f
        if f != 0 or c != 0:
            rows.append((_display(key, prepared.symbols, prepared.width, prepared.options), f, c, running))
    return rows
