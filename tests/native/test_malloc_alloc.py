"""pprof_py's allocator under LD_PRELOAD: correctness, bad-use detection,
statistics, and real programs producing the same output as with glibc.

Every native run happens in a subprocess with a timeout, so a crash fails
one test instead of the session.
"""
import os
import shutil
import subprocess
import sys

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")


def lib():
    return libpath("malloc")


def preload_env(**extra):
    env = dict(os.environ)
    env.pop("HEAPPROFILE", None)
    env.pop("HEAPCHECK", None)
    env.pop("TCMALLOC_SAMPLE_PARAMETER", None)
    env["LD_PRELOAD"] = lib()
    env.update(extra)
    return env


def run(cmd, env=None, timeout=120, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def compile_c(src_name, out_dir, extra=()):
    out = os.path.join(str(out_dir), os.path.splitext(src_name)[0])
    subprocess.run(["gcc", "-O1", "-g", "-fno-builtin", "-fno-omit-frame-pointer", "-pthread",
                    os.path.join(PROGRAMS, src_name), "-o", out, "-ldl", *extra],
                   check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def stress(tmp_path_factory):
    return compile_c("malloc_stress.c", tmp_path_factory.mktemp("malloc_stress"))


def run_mode(binary, *args, timeout=120, env=None):
    return run([binary, *map(str, args)], env=env or preload_env(), timeout=timeout)


def test_library_exports_allocation_surface():
    out = run(["nm", "-D", "--defined-only", lib()]).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    for sym in ["malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
                "aligned_alloc", "valloc", "pvalloc", "malloc_usable_size", "cfree",
                "_Znwm", "_Znam", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZnwmRKSt9nothrow_t",
                "_ZnwmSt11align_val_t", "_ZdlPvSt11align_val_t", "_ZdlPvmSt11align_val_t",
                "_ZnamSt11align_val_tRKSt9nothrow_t",
                "HeapProfilerStart", "HeapProfilerStop", "HeapProfilerDump", "GetHeapProfile",
                "IsHeapProfilerRunning", "pprofpy_malloc_stats", "pprofpy_release_free_memory"]:
        assert sym in names, sym


@pytest.mark.parametrize("threads,iters", [(1, 30000), (4, 8000)])
def test_random_mixed_sizes_and_alignments(stress, threads, iters):
    r = run_mode(stress, "stress", threads, iters)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "OK stress"


def test_fork_while_other_threads_allocate(stress):
    r = run_mode(stress, "fork")
    assert r.returncode == 0, r.stderr
    assert "OK fork" in r.stdout


def test_thread_exit_returns_cache(stress):
    r = run_mode(stress, "threadexit")
    assert r.returncode == 0, r.stderr
    assert "OK threadexit" in r.stdout


def test_zero_huge_overflow_and_alignment(stress):
    r = run_mode(stress, "edge")
    assert r.returncode == 0, r.stderr
    assert "OK edge" in r.stdout


def test_cross_thread_free(stress):
    r = run_mode(stress, "xthread")
    assert r.returncode == 0, r.stderr
    assert "OK xthread" in r.stdout


def test_stats_and_release(stress):
    r = run_mode(stress, "stats")
    assert r.returncode == 0, r.stderr
    assert "OK stats" in r.stdout
    fields = dict(kv.split("=") for kv in r.stdout.splitlines()[0].split())
    assert int(fields["heap"]) >= int(fields["unmapped"]) > 0


@pytest.mark.parametrize("mode,message", [
    ("badfree", "free(): invalid pointer (not allocated by this malloc)"),
    ("doublefree", "free(): double free or invalid pointer"),
    ("interior", "free(): invalid pointer (inside a large block)"),
])
def test_bad_free_aborts_with_diagnostic(stress, mode, message):
    r = run_mode(stress, mode, timeout=30)
    assert r.returncode == -6, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.startswith("pprof_py malloc:")]
    assert len(lines) == 1
    assert message in lines[0]
    assert "0x" in lines[0]


def test_mallocstats_summary_at_exit():
    r = run(["true"], env=preload_env(MALLOCSTATS="1"), timeout=30)
    assert r.returncode == 0
    assert "Bytes in use by application" in r.stderr
    assert "Heap size" in r.stderr


def test_cxx_operator_new_delete(tmp_path):
    src = tmp_path / "n.cc"
    src.write_text(r"""
#include <new>
#include <map>
#include <string>
#include <vector>
#include <cstdio>
struct alignas(256) Wide { char c[256]; };
int main() {
    std::vector<std::string> v;
    for (int i = 0; i < 50000; i++) v.push_back(std::string(40, 'a' + i % 26) + std::to_string(i));
    std::map<int, std::string> m;
    for (int i = 0; i < 5000; i++) m[i] = v[i];
    Wide *w = new Wide[3];
    Wide *one = new Wide;
    if ((unsigned long)w % 256 || (unsigned long)one % 256) return 3;
    delete[] w;
    delete one;
    int *nt = new (std::nothrow) int[4];
    delete[] nt;
    if (operator new((size_t)1 << 62, std::nothrow) != nullptr) return 4;
    try {
        char *p = new char[(size_t)1 << 62];
        std::printf("no exception %p\n", (void *)p);
        return 2;
    } catch (const std::bad_alloc &) {
        std::printf("caught bad_alloc\n");
    }
    std::printf("%zu %zu %s\n", v.size(), m.size(), m[4321].c_str());
    return 0;
}
""")
    exe = tmp_path / "n"
    subprocess.run(["g++", "-O1", str(src), "-o", str(exe)], check=True, capture_output=True, timeout=120)
    plain = run([str(exe)], timeout=60)
    ours = run([str(exe)], env=preload_env(), timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert "caught bad_alloc" in ours.stdout


PY_WORKLOAD = r"""
import json, re, zlib, sqlite3, collections
data = [{"id": i, "name": "item%d" % i, "tags": ["t%d" % (i % 7)] * (i % 5)} for i in range(20000)]
text = json.dumps(data)
back = json.loads(text)
words = collections.Counter(re.findall(r"item(\d)", text))
comp = zlib.compress(text.encode() * 3)
db = sqlite3.connect(":memory:")
db.execute("create table t (id integer, name text)")
db.executemany("insert into t values (?, ?)", [(d["id"], d["name"]) for d in back])
total = db.execute("select count(*), sum(id) from t where name like 'item1%'").fetchone()
print(len(back), sorted(words.items())[:3], len(zlib.decompress(comp)), total)
"""


def test_python_workload_same_output():
    plain = run([sys.executable, "-c", PY_WORKLOAD], timeout=120)
    ours = run([sys.executable, "-c", PY_WORKLOAD], env=preload_env(), timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout


def test_python_regression_tests_pass():
    r = run([sys.executable, "-m", "test", "test_list", "test_dict", "test_set", "-q"],
            env=preload_env(), timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "SUCCESS" in r.stdout


def test_python_allocator_module_in_preloaded_process():
    code = r"""
from pprof_py.native import allocator
assert allocator.is_active()
before = allocator.stats()
blocks = [bytearray(3000) for _ in range(5000)]
during = allocator.stats()
assert during["allocated_bytes"] >= before["allocated_bytes"] + 5000 * 3000, (before, during)
del blocks
allocator.release_free_memory()
after = allocator.stats()
assert after["pageheap_free_bytes"] == 0
assert allocator.numeric_property("generic.heap_size") == allocator.stats()["heap_size"]
assert allocator.numeric_property("nope") is None
assert allocator.good_size(1000) >= 1000
assert "Bytes in use by application" in allocator.stats_text()
print("ok")
"""
    r = run([sys.executable, "-c", code], env=preload_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_python_allocator_module_refuses_without_preload():
    code = r"""
from pprof_py.native import allocator
assert not allocator.is_active()
try:
    allocator.stats()
except allocator.AllocatorNotActive as exc:
    print("refused:", "LD_PRELOAD" in str(exc))
"""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    r = run([sys.executable, "-c", code], env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "refused: True"


def _git(args, cwd, env):
    return run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args], env=env, cwd=cwd,
               timeout=60)


def test_git_same_output(tmp_path):
    outputs = []
    for name, env in [("plain", None), ("ours", preload_env())]:
        repo = tmp_path / name
        repo.mkdir()
        genv = dict(env or os.environ)
        genv.update(GIT_AUTHOR_DATE="2020-01-01T00:00:00", GIT_COMMITTER_DATE="2020-01-01T00:00:00")
        assert _git(["init", "-q", "."], repo, genv).returncode == 0
        for i in range(30):
            (repo / f"f{i}.txt").write_text("line %d\n" % i * (i + 1))
        assert _git(["add", "."], repo, genv).returncode == 0
        r = _git(["commit", "-qm", "first"], repo, genv)
        assert r.returncode == 0, r.stderr
        (repo / "f3.txt").write_text("changed\n")
        assert _git(["commit", "-qam", "second"], repo, genv).returncode == 0
        log = _git(["log", "--stat", "--format=%H %s"], repo, genv)
        assert log.returncode == 0, log.stderr
        outputs.append(log.stdout)
    assert outputs[0] == outputs[1]
    assert "second" in outputs[1]


def test_gcc_compiles_under_preload(tmp_path):
    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(void){ for (int i = 0; i < 3; i++) printf("hi %d\\n", i); return 0; }\n')
    exe = tmp_path / "hello"
    r = run(["gcc", "-O2", str(src), "-o", str(exe)], env=preload_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert run([str(exe)], timeout=30).stdout == "hi 0\nhi 1\nhi 2\n"


def test_sqlite3_cli_same_output():
    sqlite = shutil.which("sqlite3")
    assert sqlite, "sqlite3 CLI is required (apt-get install sqlite3)"
    script = ("create table t(a integer, b text);"
              "with recursive c(x) as (select 1 union all select x+1 from c where x < 20000) "
              "insert into t select x, printf('row%05d', x) from c;"
              "create index ib on t(b);"
              "select count(*), sum(a), max(b) from t where b like 'row1%';")
    plain = run([sqlite, ":memory:", script], timeout=60)
    ours = run([sqlite, ":memory:", script], env=preload_env(), timeout=60)
    assert plain.returncode == 0 and ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
