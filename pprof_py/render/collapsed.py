"""`--collapsed`: folded stacks for flame-graph tools.

One line per distinct stack of names, root first, frames joined by ";",
then a space and the stack's value:

    _start;__libc_start_main_impl;main<0000000000401136>;spin 53

Names are the full symbol names pprof uses for this output (the ones
with the function's start address tagged on, e.g. ``main<00000000004011d1>``),
inlined frames carry an ``[inline]`` suffix, frames without a name show
their file, and addresses nobody can name show as hexadecimal.

gperftools' pprof prints one line per *address* stack in hash order, so the
same name stack can appear several times.  We merge those lines (summing
their printed values, which pprof truncates to integers one by one) and sort
the result, so the output is deterministic and each stack appears once.
"""


def name_stack(symbols, address, width):
    """The names one address contributes, innermost (inlined) first."""
    triples = symbols.get(address)
    if not triples:
        return ["%0*x" % (width, address)]
    names = []
    for j in range(len(triples) - 1, -1, -1):
        _short, fileline, full = triples[j]
        if fileline in ("?", ":0"):
            fileline = "??:0"
        name = fileline if full == "??" else full
        names.append(name if j == 0 else name + "[inline]")
    return names


def collapsed_stacks(prepared):
    """{"root;...;leaf": integer value} merged over address stacks."""
    symbols, width = prepared.symbols, prepared.width
    memo = {}
    merged = {}
    for stack, value in prepared.profile.items():
        names = []
        for address in stack:
            part = memo.get(address)
            if part is None:
                part = memo[address] = name_stack(symbols, address, width)
            names.extend(part)
        line = ";".join(reversed(names))
        merged[line] = merged.get(line, 0) + int(value)   # %d truncates toward zero
    return merged


def render_collapsed(prepared):
    merged = collapsed_stacks(prepared)
    out = ["%s %d\n" % (line, merged[line])
           for line in sorted(merged, key=lambda s: s.encode("utf-8", "surrogateescape"))]
    return "".join(out)
