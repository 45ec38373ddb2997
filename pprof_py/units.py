"""How pprof prints values: the unit word and the number format."""


def units(kind, options):
    if kind in ("heap", "growth"):
        if options.sample_index in ("inuse_objects", "alloc_objects"):
            return "objects"
        return "B" if options.show_bytes else "MB"
    if kind == "contention" and options.contention_index != "contentions":
        return "seconds"
    return "samples"


def unparse(value, kind, options):
    """pprof's Unparse: %d truncates toward zero like Perl's sprintf."""
    if kind in ("heap", "growth"):
        if options.sample_index in ("inuse_objects", "alloc_objects") or options.show_bytes:
            return "%d" % int(value)
        return "%.1f" % (value / 1048576.0)
    if kind == "contention" and options.contention_index != "contentions":
        return "%.3f" % (value / 1e9)
    return "%d" % int(value)


def percent(num, tot):
    if tot != 0:
        return "%.1f%%" % (num * 100.0 / tot)
    if num == 0:
        return "nan"
    return "+inf" if num > 0 else "-inf"
