# pprof_py developer targets.  `make demo` and `make test` are the README's two
# set-up commands.
PYTHON ?= python3

.PHONY: install demo test test-native fixtures bench bench-text bench-sampler bench-malloc clean

install:
	$(PYTHON) -m pip install -e '.[test]'

# Build a fixture program, profile it with our sampler, print the report and
# write the flame graph (out/demo.flame.svg).
demo: install
	bash bench/demo.sh

test:
	$(PYTHON) -m pytest -q tests

# Native parts under AddressSanitizer / valgrind (not part of `make test`).
test-native:
	bash tests/native/sanitize.sh

# Rebuild fixture binaries, profiles and google-pprof reference outputs.
fixtures:
	$(MAKE) -C fixtures all

bench: bench-text bench-sampler bench-malloc

bench-text:
	$(PYTHON) bench/bench_text.py

bench-sampler:
	$(PYTHON) bench/bench_sampler.py

bench-malloc:
	$(PYTHON) bench/bench_malloc.py

clean:
	rm -rf build out bench/out *.egg-info
