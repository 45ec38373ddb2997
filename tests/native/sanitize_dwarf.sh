#!/usr/bin/env bash
# The symbolizer's DWARF decoders (pprof_py/native/src/dwarf/) under
# AddressSanitizer + UndefinedBehaviorSanitizer, fuzzed longer than
# `make test` does: tests/native/test_dwarf_fuzz.py with
# DWARF_FUZZ_ITERATIONS mutated inputs per file and seed (default here
# 300,000; the test suite uses 20,000).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root" && DWARF_FUZZ_ITERATIONS="${DWARF_FUZZ_ITERATIONS:-300000}" PYTHONPATH="$root" \
    python3 -m pytest -q -p no:cacheprovider tests/native/test_dwarf_fuzz.py
