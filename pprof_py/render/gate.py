"""The CI regression gate: `--base=old.prof --fail-over=5%`.

With a base profile, the report shows new minus old.  The gate compares
each function's share of its profile's total instead: share_new - share_old
in percentage points, where a share is the function's flat value (or its
cumulative value with --cum) divided by the profile's total.  Functions
whose share grew by more than the threshold are listed on stderr and the
command exits with status 1, after the report has been written as usual.

Shares are computed from the profiles as read (after pprof's frame removal
and --focus/--ignore), at the report's granularity, so the gate agrees
with what `pprof --text new.prof` and `pprof --text old.prof` print.
"""
import re

from pprof_py.errors import PprofError


class GateFailed(PprofError):
    """Functions grew more than the threshold (exit status 1)."""

    exit_code = 1


def parse_threshold(text, base):
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*%?\s*", text or "")
    if not m:
        raise PprofError(f"bad --fail-over value {text!r}: expected a percentage such as 5% or 2.5")
    if not base:
        raise PprofError("--fail-over needs --base=<old profile> to compare with")
    return float(m.group(1))


def _shares(stacks, symbols, options, width, kind):
    from pprof_py import graph

    reduced = graph.reduce_profile(stacks, symbols, options.granularity, width, options.show_addresses)
    flat, cum = graph.flat_and_cumulative(reduced)
    total = sum(flat.values())
    values = cum if options.cum else flat
    if total == 0:
        return {}
    return {k: v * 100.0 / total for k, v in values.items()}


def _own_symbols(prepared, profile):
    """Symbols of the base profile from its own memory map (libraries load
    at other addresses from one run to the next, and the report names the
    base's addresses with the new profile's map, as gperftools' pprof
    does)."""
    from pprof_py.symbolize import Symbolizer, symbols_from_names

    opts = prepared.options
    addresses = {loc.address for loc in profile.locations}
    if getattr(profile, "proto_symbols", None) is not None:
        return profile.proto_symbols
    if profile.embedded_symbols is not None:
        return symbols_from_names(addresses, profile.embedded_symbols, prepared.width, opts.strip_templates)
    symbolizer = Symbolizer(prepared.program, opts.lib_prefixes, opts.strip_templates,
                            use_cache=opts.use_cache, width=prepared.width)
    return symbolizer.symbolize(addresses, profile.mappings, max(addresses, default=0))


def growth(prepared):
    """[(name, old share %, new share %, growth in points)], largest growth
    first, for every function present in either profile."""
    from pprof_py import filter as filters
    from pprof_py import report

    opts = prepared.options
    column = report._column(prepared.profiles[0], opts)
    n_new = len(prepared.profiles) - 1
    new = report._address_profile(prepared.profiles[0], column)
    for extra in prepared.profiles[1:n_new]:
        new = filters.add_profiles(new, report._address_profile(extra, column))
    old = report._address_profile(prepared.profiles[-1], column)

    def clean(stacks, symbols):
        stacks = filters.remove_uninteresting_frames(stacks, symbols, prepared.kind, [],
                                                prepared.options.no_auto_signal_frames)
        if opts.focus:
            stacks = filters.focus_profile(stacks, symbols,
                                           report.compile_regex(opts.focus, "focus"), prepared.width)
        if opts.ignore:
            stacks = filters.ignore_profile(stacks, symbols,
                                            report.compile_regex(opts.ignore, "ignore"), prepared.width)
        return stacks

    new_shares = _shares(clean(new, prepared.symbols), prepared.symbols, opts, prepared.width, prepared.kind)
    old_symbols = _own_symbols(prepared, prepared.profiles[-1])
    old_shares = _shares(clean(old, old_symbols), old_symbols, opts, prepared.width, prepared.kind)
    rows = []
    for name in set(new_shares) | set(old_shares):
        o, n = old_shares.get(name, 0.0), new_shares.get(name, 0.0)
        rows.append((name, o, n, n - o))
    rows.sort(key=lambda r: (-r[3], r[0]))
    return rows


def check_gate(prepared):
    """[lines for stderr], empty when no function grew past the threshold."""
    threshold = prepared.options.fail_over
    offenders = [r for r in growth(prepared) if r[3] > threshold]
    if not offenders:
        return []
    what = "cumulative" if prepared.options.cum else "flat"
    lines = [f"Regression: {len(offenders)} function(s) grew by more than {threshold:g} points "
             f"of the total ({what} share, old -> new):"]
    for name, o, n, g in offenders:
        lines.append(f"  {name}: {o:.1f}% -> {n:.1f}% (+{g:.1f})")
    return lines
