"""The fuzzer as part of the suite: a fixed seed, about 20 seconds, every
input family through every output, each case in a forked child with a
timeout and a 4 GB address-space limit.  Fails on any traceback ("internal
error"), hang or memory blow-up, naming the cases.  `make fuzz` runs the
same fuzzer for longer (tests/hardening/fuzz.py)."""
from hardening import fuzz

SEED = 16
SECONDS = 20


def test_fuzz_fixed_seed_time_bounded():
    log = []
    counts, failures = fuzz.fuzz(SEED, seconds=SECONDS, timeout=30, log=log.append)
    assert counts["cases"] >= len(fuzz.FAMILIES), counts
    assert all(n > 0 for n in counts["per family"].values()), counts
    assert not failures, "\n".join(log)
