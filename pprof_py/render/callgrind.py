"""`--callgrind`: the call graph in callgrind's format, for kcachegrind and
callgrind_annotate.

Like gperftools' pprof (ExtractCalls / PrintCallgrind), every stack frame is
a location "file:line:function" (inlined frames get an "[inline]" suffix,
unknown places "??:0"); the leaf location of each stack gets the stack's
value as self cost ("Hits"), and each adjacent (caller, callee) pair gets a
call record carrying the stack's value as the call's inclusive cost:

    events: Hits

    fl=(1) src/chain.c
    fn=(1) main
    cfl=(1)
    cfn=(2) a
    calls=65 29
    37 65

Names of files and functions are compressed the callgrind way: the first
use prints "(n) name", later uses only "(n)" (names of at most 3 characters
are always printed in full, as pprof does).  Records are sorted by caller
file, then line, then the rest, so the output is deterministic.

Difference from pprof: pprof forgets the call record of the outermost pair
of each stack (its loop stops one frame early); we emit every pair, so the
inclusive costs of the outermost callers are complete.
"""


def _split_fileline(fileline):
    if fileline in ("?", ":0", "", "??:0"):
        return "??", 0
    head, sep, tail = fileline.rpartition(":")
    if sep and tail.isdigit():
        return head, int(tail)
    return fileline, 0


def _locations(symbols, address):
    """(file, line, function) per frame at `address`, innermost first."""
    triples = symbols.get(address)
    if not triples:
        return [("??", 0, "unknown")]
    result = []
    for j in range(len(triples) - 1, -1, -1):
        short, fileline, _full = triples[j]
        file, line = _split_fileline(fileline)
        result.append((file, line, short if j == 0 else short + "[inline]"))
    return result


def extract_calls(prepared):
    """{(caller location, callee location or None): value}"""
    calls = {}
    memo = {}
    for stack, value in prepared.profile.items():
        if not stack:
            continue
        locs = []
        for address in stack:
            part = memo.get(address)
            if part is None:
                part = memo[address] = _locations(prepared.symbols, address)
            locs.extend(part)
        key = (locs[0], None)
        calls[key] = calls.get(key, 0) + value
        for i in range(1, len(locs)):
            key = (locs[i], locs[i - 1])
            calls[key] = calls.get(key, 0) + value
    return calls


def _compressed(key, value, table):
    if len(value) <= 3:
        return "%s=%s\n" % (key, value)
    idx = table.get(value)
    if idx is not None:
        return "%s=(%d)\n" % (key, idx)
    idx = table[value] = len(table) + 1
    return "%s=(%d) %s\n" % (key, idx, value)


def _sort_key(item):
    (caller, callee), _ = item
    enc = lambda s: s.encode("utf-8", "surrogateescape")
    rest = (b"", -1, b"") if callee is None else (enc(callee[0]), callee[1], enc(callee[2]))
    return (enc(caller[0]), caller[1], enc(caller[2])) + rest


def render_callgrind(prepared):
    files, functions = {}, {}
    out = ["events: Hits\n\n"]
    for (caller, callee), value in sorted(extract_calls(prepared).items(), key=_sort_key):
        count = int(value)
        out.append(_compressed("fl", caller[0], files))
        out.append(_compressed("fn", caller[2], functions))
        if callee is not None:
            out.append(_compressed("cfl", callee[0], files))
            out.append(_compressed("cfn", callee[2], functions))
            out.append("calls=%d %d\n" % (count, callee[1]))
        out.append("%d %d\n\n" % (caller[1], count))
    return "".join(out)
