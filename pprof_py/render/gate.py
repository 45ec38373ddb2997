"""The CI regression gate: `--base=old.prof --fail-over=5%`.

With a base profile, the report shows new minus old.  The gate compares
each function's share of its profile's total instead: share_new - share_old
in percentage points, where a share is the function's flat value (or its
cumulative value with --cum) divided by the profile's total.  Functions
whose share grew by more than the threshold are listed on stderr and the
command exits with status 1, after the report has been written as usual.

Shares are computed from each side alone (after pprof's frame removal and
--focus/--ignore), at the report's granularity, named with the one symbol
table of the combined profiles, so the gate agrees with what
`pprof --text new.prof` and `pprof --text old.prof` print.
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


def _shares(prepared, stacks):
    """{key: share of the side's total in %} at the report's granularity."""
    from pprof_py import graph

    opts = prepared.options
    reduced = graph.reduce_profile(stacks, prepared.symbols, opts.granularity, prepared.width,
                                   opts.show_addresses)
    flat, cum = graph.flat_and_cumulative(reduced)
    total = sum(flat.values())
    values = cum if opts.cum else flat
    if total == 0:
        return {}
    return {k: v * 100.0 / total for k, v in values.items()}


def growth(prepared):
    """[(name, old share %, new share %, growth in points)], largest growth
    first, for every function present in either profile.  Both sides come
    from the report's own pipeline (report.Report.side), so the gate names
    and filters exactly as the report beside it does."""
    new_shares = _shares(prepared, prepared.side("new"))
    old_shares = _shares(prepared, prepared.side("base"))
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
