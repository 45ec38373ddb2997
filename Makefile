# pprof_py developer targets.  `make demo` and `make test` are the README's two
# set-up commands.

# Which Python the targets use:
#  * PYTHON=... on the command line or in the environment: that one, as is;
#  * make runs inside a virtualenv (python3 on PATH is a venv's, activated or
#    not, or a conda env is active): that venv's python3;
#  * otherwise a project virtualenv in .venv, created on first use from
#    python3 on PATH.  Debian's and Ubuntu's system python3 refuse
#    `pip install` outside a virtualenv (PEP 668, "externally-managed-environment").
ifeq ($(origin PYTHON),undefined)
  IN_VENV := $(shell python3 -c 'import os, sys; print(int(sys.prefix != sys.base_prefix or bool(os.environ.get("CONDA_PREFIX"))))' 2>/dev/null)
  ifeq ($(IN_VENV),1)
    PYTHON := python3
  else
    VENV := .venv
    PYTHON := $(VENV)/bin/python
  endif
endif

# Where pip puts the interpreter's console scripts (pprof, pprof-run): put
# first on PATH for the recipes that run them.
ifdef VENV
  SCRIPTS = $(CURDIR)/$(VENV)/bin
else
  SCRIPTS = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
endif
WITH_SCRIPTS = PATH="$(SCRIPTS):$$PATH"

.PHONY: deps venv install install-runtime demo test fuzz test-native test-gperftools fixtures images web-screenshot bench bench-text bench-cache bench-sampler bench-malloc bench-heapcheck bench-graphs bench-web clean

# Debian packages the tests compare against or drive: gperftools' pprof and
# libprofiler/tcmalloc, graphviz's dot, binutils (nm/addr2line for the unit
# tests), libc's debug symbols (the references name libc's internal
# functions through them), valgrind (callgrind_annotate), git/sqlite3/g++
# (programs run under our allocator), python3-venv (the project's .venv), Go pprof (proto round trip) and
# Chromium (the flame graph's browser test); jemalloc and mimalloc are the
# allocator bench's peers.
DEBIAN_PACKAGES = python3-venv build-essential g++ binutils graphviz google-perftools libgoogle-perftools-dev \
	libc6-dbg valgrind git sqlite3 golang-go golang-github-google-pprof-dev chromium chromium-driver \
	libjemalloc2 libmimalloc2.0

deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES); \
	else echo "not root: skipping apt-get (needs: $(DEBIAN_PACKAGES))"; fi

# Says which interpreter the targets use; creates .venv when it is the one.
# A failed `python3 -m venv` (Debian without python3-venv) leaves a venv
# without pip: remove it so that the next run tries again.
venv:
ifdef VENV
	@if [ -x $(VENV)/bin/python ]; then echo "make: using the project virtualenv $(VENV) (not inside a virtualenv; PYTHON=... overrides)"; \
	else echo "make: creating the project virtualenv $(VENV) (not inside a virtualenv; PYTHON=... overrides)"; \
	  python3 -m venv $(VENV) >$(VENV).log 2>&1 || { rm -rf $(VENV); \
	    echo "make: python3 -m venv failed (see $(VENV).log); on Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }; \
	  rm -f $(VENV).log; fi
endif

install: venv
	$(PYTHON) -m pip install -q -e '.[test]'

# What `make demo` needs: the package without the test extra.
install-runtime: venv
	$(PYTHON) -m pip install -q -e .

# Build a fixture program, profile it with our sampler, print the report and
# write the flame graph (out/hotspots.flame.svg).
demo: install-runtime
	$(WITH_SCRIPTS) bash fixtures/demo.sh

test: deps install
	$(WITH_SCRIPTS) $(PYTHON) -m pytest -q tests

# The input fuzzer for longer than `make test` runs it (tests/hardening/test_fuzz.py):
# ten minutes, failing cases kept under out/fuzz/ for reproduction.
FUZZ_SECONDS ?= 600
FUZZ_SEED ?= 1
fuzz: install
	$(PYTHON) tests/hardening/fuzz.py --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED) --save out/fuzz

# Native parts under AddressSanitizer / valgrind (not part of `make test`).
test-native:
	bash tests/native/sanitize.sh

# gperftools 2.10's own tests built against our libraries in place of
# libtcmalloc / libprofiler (tests/gperftools_suite.py; docs/gperftools-api.md).
# Not part of `make test`: it downloads gperftools' source from GitHub and
# needs cmake and ninja.
GPERFTOOLS_SUITE_PACKAGES = cmake ninja-build g++
test-gperftools: install-runtime
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(GPERFTOOLS_SUITE_PACKAGES); fi
	$(PYTHON) setup.py build_ext --inplace -q
	$(PYTHON) tests/gperftools_suite.py

# Rebuild fixture binaries, profiles and google-pprof reference outputs.
fixtures:
	$(MAKE) -C fixtures all

# The README's flame graph and call graph, made from the cxx fixture.
images: install-runtime
	$(PYTHON) -c 'import sys; sys.path.insert(0, "fixtures"); import relocate_maps; relocate_maps.localize()'
	$(PYTHON) -m pprof_py --flame fixtures/bin/cxx fixtures/local/profiles/cxx.cpu.prof > docs/images/flame.svg
	$(PYTHON) -m pprof_py --dot fixtures/bin/cxx fixtures/local/profiles/cxx.cpu.prof | dot -Tsvg > docs/images/callgraph.svg

# The README's web UI picture (docs/images/web-ui.png), taken by the browser test.
web-screenshot: install
	PPROF_WEB_SCREENSHOTS=docs/images $(PYTHON) -m pytest -q tests/web/test_browser.py -k flame_click

bench: bench-text bench-cache bench-sampler bench-malloc bench-heapcheck bench-graphs bench-web

bench-text: install-runtime
	$(PYTHON) bench/bench_text.py

# Load time of the symbol cache alone, ours vs the pickle it replaced
# (uses bench-text's synthetic profile).
bench-cache: install-runtime
	$(PYTHON) bench/bench_cache.py

bench-sampler: install-runtime
	$(PYTHON) bench/bench_sampler.py

bench-malloc: install-runtime
	$(PYTHON) bench/bench_malloc.py

# Leak checker: leaks found and run time, ours vs gperftools' HEAPCHECK.
bench-heapcheck: install-runtime
	$(PYTHON) bench/bench_heapcheck.py

bench-graphs: install-runtime
	$(PYTHON) bench/bench_graphs.py

bench-web: install-runtime
	$(PYTHON) bench/bench_web.py

# (.venv is kept: rm -rf .venv to recreate it)
clean:
	rm -rf build out bench/out *.egg-info
