"""From an address profile to report keys at a granularity, and flat /
cumulative totals per key.

A stack of addresses becomes a stack of keys (pprof's TranslateStack):
each address expands to its frames (inlined callees before callers); a key is
the function name (``--functions``), "name file:line" (``--lines``), the file
(``--files``) or "address name file:line" (``--addresses``).  Frames pprof
cannot name become the zero-padded hexadecimal address.  Each key counts once
per stack (recursion), the leaf key gets the flat value, every key the
cumulative value.
"""
import itertools

from pprof_py.model import UNKNOWN_FUNCTION, UNKNOWN_LINE


def _keys_for_address(address, symbols, granularity, width, show_addresses=False):
    a = "%0*x" % (width, address)
    # Skip large addresses: they show up as fake entries on some kernels.
    if len(a) > 8 and a > "7fffffffffffffff":
        return []
    triples = symbols.get(address) or [(a, "", a)]
    display = getattr(symbols, "display", None)     # symbolize.Symbols: name@address
    keys = []
    for j in range(len(triples) - 1, -1, -1):
        func, fileline, _full = triples[j]
        if display:
            func = display.get(_full, func)
        if j > 0:
            func = f"{func} (inline)"
        if granularity == "addresses":
            keys.append(f"{a} {func} {fileline}")
        elif granularity == "lines":
            if func == UNKNOWN_FUNCTION and fileline == UNKNOWN_LINE:
                keys.append(a)
            elif show_addresses:
                keys.append(f"{func} {fileline} ({a})")
            else:
                keys.append(f"{func} {fileline}")
        elif granularity == "functions":
            if func == UNKNOWN_FUNCTION:
                keys.append(a)
            elif show_addresses:
                keys.append(f"{func} ({a})")
            else:
                keys.append(func)
        elif granularity == "files":
            if fileline in (UNKNOWN_LINE, ""):
                keys.append(a)
            else:
                f = fileline
                idx = f.rfind(":")
                if idx >= 0 and f[idx + 1:].isdigit():
                    f = f[:idx]
                keys.append(f)
        else:
            keys.append(a)
            break
    return keys


def translate_stack(stack, symbols, granularity, width, show_addresses, memo):
    """pprof's TranslateStack: the keys of a stack of addresses (leaf first,
    inlined callees before their callers), not deduplicated; `memo` caches
    each address's keys across calls."""
    keys = []
    for address in stack:
        part = memo.get(address)
        if part is None:
            part = memo[address] = _keys_for_address(address, symbols, granularity, width, show_addresses)
        keys.extend(part)
    return keys


def shared_keys(pairs, symbols, granularity, width, show_addresses):
    """The keys (a tuple) of each (address, its symbol tuple) of `pairs`,
    in order.  Addresses share their symbol tuples (see Symbolizer), and
    the keys of a shared tuple do not depend on the address unless the
    address itself is printed (an unnamed frame, --addresses,
    --show_addresses) or it is one of the large addresses that are left
    out: the others' keys are made once per tuple, and those addresses get
    the same keys object (a 200,000-stack profile has 700,000 addresses and
    110,000 distinct tuples)."""
    by_symbols = {}
    address_free = granularity != "addresses" and not show_addresses
    for address, triples in pairs:
        keys = by_symbols.get(id(triples)) if address_free and triples else None
        if keys is None:
            keys = tuple(_keys_for_address(address, symbols, granularity, width, show_addresses))
            a = "%0*x" % (width, address)
            if address_free and triples and a not in keys and not (len(a) > 8 and a > "7fffffffffffffff"):
                by_symbols[id(triples)] = keys
        yield keys


def _address_keys(symbols, granularity, width, show_addresses):
    """{address: tuple of its keys} for every address `symbols` names
    (shared_keys)."""
    return dict(zip(symbols, shared_keys(symbols.items(), symbols, granularity, width, show_addresses)))


def reduce_profile(profile, symbols, granularity, width, show_addresses=False):
    """pprof's ReduceProfile: {tuple of keys (deduplicated): value}."""
    memo = _address_keys(symbols, granularity, width, show_addresses)
    result = {}
    get = result.get
    fromkeys = dict.fromkeys
    chain = itertools.chain.from_iterable
    for stack, count in profile.items():
        try:
            parts = [memo[a] for a in stack]
        except KeyError:            # an address `symbols` does not name
            for a in stack:
                if a not in memo:
                    memo[a] = tuple(_keys_for_address(a, symbols, granularity, width, show_addresses))
            parts = [memo[a] for a in stack]
        # Each key once per stack (recursion), first occurrence kept, and
        # never the empty key: dict.fromkeys keeps insertion order.
        unique = fromkeys(chain(parts))
        if "" in unique:
            del unique[""]
        path = tuple(unique)
        result[path] = get(path, 0) + count
    return result


def flat_and_cumulative(reduced):
    flat, cum = {}, {}
    for path, count in reduced.items():
        if not path:
            continue
        flat[path[0]] = flat.get(path[0], 0) + count
        for key in path:
            cum[key] = cum.get(key, 0) + count
    return flat, cum
