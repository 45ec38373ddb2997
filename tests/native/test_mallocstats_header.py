"""MALLOCSTATS=1: each process's report starts with a line naming its pid
and program, so that the reports of a program run through a
wrapper (pyenv's shims, shell scripts: one report per process) can be told
apart."""
import os
import re
import subprocess

from pprof_py.native import libpath


def test_each_report_names_its_process():
    env = dict(os.environ, LD_PRELOAD=libpath("malloc"), MALLOCSTATS="1")
    for name in ("HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER"):
        env.pop(name, None)
    # a shell running two commands: three processes, three reports (bash:
    # dash leaves with _exit, which runs no destructor, so prints none)
    r = subprocess.run(["/bin/bash", "-c", "for i in 1 2; do /bin/true; done"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    headers = [(i, re.match(r"^MALLOCSTATS: pid (\d+) \((.*)\)$", line)) for i, line in enumerate(lines)
               if line.startswith("MALLOCSTATS: ")]
    assert len(headers) == 3 and all(m for _, m in headers), r.stderr
    assert len({m.group(1) for _, m in headers}) == 3                 # three distinct pids
    assert sorted(m.group(2) for _, m in headers) == ["/bin/bash", "/bin/true", "/bin/true"]
    for i, _ in headers:                                                # the report follows its header
        assert lines[i + 1].startswith("-----") and "Bytes in use by application" in lines[i + 2]
