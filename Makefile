# pprof_py developer targets.  `make demo` and `make test` are the README's two
# set-up commands.
PYTHON ?= python3

.PHONY: deps install demo test fuzz test-native test-gperftools fixtures images web-screenshot bench bench-text bench-cache bench-sampler bench-malloc bench-heapcheck bench-graphs bench-web clean

# Debian packages the tests compare against or drive: gperftools' pprof and
# libprofiler/tcmalloc, graphviz's dot, binutils (nm/addr2line for the unit
# tests), libc's debug symbols (the references name libc's internal
# functions through them), valgrind (callgrind_annotate), git/sqlite3/g++
# (programs run under our allocator), Go pprof (proto round trip) and
# Chromium (the flame graph's browser test); jemalloc and mimalloc are the
# allocator bench's peers.
DEBIAN_PACKAGES = build-essential g++ binutils graphviz google-perftools libgoogle-perftools-dev \
	libc6-dbg valgrind git sqlite3 golang-go golang-github-google-pprof-dev chromium chromium-driver \
	libjemalloc2 libmimalloc2.0

deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES); \
	else echo "not root: skipping apt-get (needs: $(DEBIAN_PACKAGES))"; fi

install:
	$(PYTHON) -m pip install -q -e '.[test]'

# Build a fixture program, profile it with our sampler, print the report and
# write the flame graph (out/hotspots.flame.svg).
demo: install
	bash fixtures/demo.sh

test: deps install
	$(PYTHON) -m pytest -q tests

# The input fuzzer for longer than `make test` runs it (tests/hardening/test_fuzz.py):
# ten minutes, failing cases kept under out/fuzz/ for reproduction.
FUZZ_SECONDS ?= 600
FUZZ_SEED ?= 1
fuzz:
	$(PYTHON) tests/hardening/fuzz.py --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED) --save out/fuzz

# Native parts under AddressSanitizer / valgrind (not part of `make test`).
test-native:
	bash tests/native/sanitize.sh

# gperftools 2.10's own tests built against our libraries in place of
# libtcmalloc / libprofiler (tests/gperftools_suite.py; docs/gperftools-api.md).
# Not part of `make test`: it downloads gperftools' source from GitHub and
# needs cmake and ninja.
GPERFTOOLS_SUITE_PACKAGES = cmake ninja-build g++
test-gperftools:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(GPERFTOOLS_SUITE_PACKAGES); fi
	$(PYTHON) setup.py build_ext --inplace -q
	$(PYTHON) tests/gperftools_suite.py

# Rebuild fixture binaries, profiles and google-pprof reference outputs.
fixtures:
	$(MAKE) -C fixtures all

# The README's flame graph and call graph, made from the cxx fixture.
images:
	$(PYTHON) -c 'import sys; sys.path.insert(0, "fixtures"); import relocate_maps; relocate_maps.localize()'
	$(PYTHON) -m pprof_py --flame fixtures/bin/cxx fixtures/local/profiles/cxx.cpu.prof > docs/images/flame.svg
	$(PYTHON) -m pprof_py --dot fixtures/bin/cxx fixtures/local/profiles/cxx.cpu.prof | dot -Tsvg > docs/images/callgraph.svg

# The README's web UI picture (docs/images/web-ui.png), taken by the browser test.
web-screenshot:
	PPROF_WEB_SCREENSHOTS=docs/images $(PYTHON) -m pytest -q tests/web/test_browser.py -k flame_click

bench: bench-text bench-cache bench-sampler bench-malloc bench-heapcheck bench-graphs bench-web

bench-text:
	$(PYTHON) bench/bench_text.py

# Load time of the symbol cache alone, ours vs the pickle it replaced
# (uses bench-text's synthetic profile).
bench-cache:
	$(PYTHON) bench/bench_cache.py

bench-sampler:
	$(PYTHON) bench/bench_sampler.py

bench-malloc:
	$(PYTHON) bench/bench_malloc.py

# Leak checker: leaks found and run time, ours vs gperftools' HEAPCHECK.
bench-heapcheck:
	$(PYTHON) bench/bench_heapcheck.py

bench-graphs:
	$(PYTHON) bench/bench_graphs.py

bench-web:
	$(PYTHON) bench/bench_web.py

clean:
	rm -rf build out bench/out *.egg-info
