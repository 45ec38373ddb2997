"""The README's set-up works on a stock Debian/Ubuntu.

Debian's and Ubuntu's /usr/bin/python3 are PEP 668 "externally managed":
`pip install` outside a virtualenv fails there, so the Makefile creates and
uses a project virtualenv (.venv) when make does not run inside one.  The
main test runs `make demo` from a fresh clone with such an interpreter as
the only python3 on PATH and a bare environment (no HOME, no venv, no
PYTHONPATH), as a new user's first command would.

Where the machine's /usr/bin/python3 is not PEP 668-marked, a wrapper named
python3 stands in for it: it runs the base interpreter but refuses
`-m pip install` outside a virtualenv with pip's own error, which is all
PEP 668 changes for us.

pip reaches PyPI (or the machine's configured index) as a new user's pip
would; only its wheel cache is shared with the caller's, to keep the test
fast.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

from helpers import ROOT

SYSTEM_PYTHON = "/usr/bin/python3"
# The caller's pip cache, read at import: conftest.py points XDG_CACHE_HOME
# at a private directory once the session starts.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pip")


def _is_externally_managed(python):
    """True when `python` is outside a venv and its stdlib carries PEP 668's marker."""
    code = ("import os, sys, sysconfig; "
            "print(int(sys.prefix == sys.base_prefix and "
            "os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30)
    return out.returncode == 0 and out.stdout.strip() == "1"


def _has_venv(python):
    out = subprocess.run([python, "-c", "import venv, ensurepip"], capture_output=True, timeout=30)
    return out.returncode == 0


def _bare_bin(tmp_path):
    """A bin directory whose python3 is a PEP 668-managed interpreter."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if os.path.exists(SYSTEM_PYTHON) and _is_externally_managed(SYSTEM_PYTHON) and _has_venv(SYSTEM_PYTHON):
        os.symlink(SYSTEM_PYTHON, bindir / "python3")
        return bindir, True
    # Simulated: the base interpreter behind the one running the tests,
    # refusing `pip install` outside a virtualenv as PEP 668 makes pip do.
    base = getattr(sys, "_base_executable", sys.executable)
    wrapper = bindir / "python3"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *"-m pip install"*) echo "error: externally-managed-environment" >&2; exit 1;;
        esac
        exec {base} "$@"
        """))
    wrapper.chmod(0o755)
    return bindir, False


def _bare_env(bindir, home):
    env = {"PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    # pip's configuration (index mirrors, certificates, proxies) is the
    # machine's, not the interpreter's state: keep it.
    for key, value in os.environ.items():
        if key.startswith("PIP_") or key.lower() in ("http_proxy", "https_proxy", "no_proxy"):
            env[key] = value
    env["PIP_CACHE_DIR"] = PIP_CACHE
    return env


def _fresh_clone(dest):
    """The committed tree, as `git clone` gives it to a new user."""
    if os.path.isdir(os.path.join(ROOT, ".git")) or os.path.isfile(os.path.join(ROOT, ".git")):
        subprocess.run(["git", "clone", "-q", ROOT, str(dest)], check=True, timeout=120)
    else:  # an exported tree (no git metadata): copy it without build products
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
            ".venv", "build", "out", "*.egg-info", "__pycache__", "_lib*.so", ".hypothesis"))


def test_make_demo_from_fresh_clone_with_externally_managed_python(tmp_path):
    bindir, real = _bare_bin(tmp_path)
    clone = tmp_path / "pprof_py"
    _fresh_clone(clone)
    home = tmp_path / "home"
    home.mkdir()
    env = _bare_env(bindir, home)
    # Before the fix this was pip's "externally-managed-environment", make exit 2.
    run = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (real, run.stdout[-3000:], run.stderr[-3000:])
    lines = run.stdout.splitlines()
    assert lines[0] == "make: creating the project virtualenv .venv (not inside a virtualenv; PYTHON=... overrides)"
    assert "error: externally-managed-environment" not in run.stderr
    assert "== pprof --text out/hotspots out/hotspots.prof" in lines
    total = lines.index("== pprof --text out/hotspots out/hotspots.prof") + 1
    assert lines[total].startswith("Total: ") and lines[total].endswith(" samples")
    assert any(line.endswith("% hash_bytes.constprop.0") for line in lines[total:])
    assert (clone / ".venv" / "bin" / "pprof").exists()
    assert (clone / "out" / "hotspots.flame.svg").read_text().startswith("<?xml")
    # The second run reuses the venv and says so.
    again = subprocess.run(["make", "-n", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and ".venv/bin/python -m pip install -q -e ." in again.stdout


def _dry_run(target, env, *args):
    run = subprocess.run(["make", "-n", target, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_make_inside_a_venv_uses_it(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(tmp_path), "VIRTUAL_ENV": str(venv)}
    out = _dry_run("install", env)
    assert ".venv" not in out
    assert "python3 -m pip install -q -e '.[test]'" in out


def test_make_with_python_given_uses_it(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = _dry_run("demo", env, f"PYTHON={sys.executable}")
    assert f"{sys.executable} -m pip install -q -e ." in out
    scripts = sysconfig.get_path("scripts")
    assert f'PATH="{scripts}:$PATH" bash fixtures/demo.sh' in out
    # No project venv of its own (the given interpreter may itself live in
    # one, as under CI's `make test`).
    assert "-m venv" not in out
    assert ".venv" not in out.replace(sys.executable, "PYTHON").replace(scripts, "SCRIPTS")


def test_failed_venv_creation_is_one_line_and_leaves_no_broken_venv(tmp_path):
    # A python3 whose venv module fails, as Debian's does without python3-venv.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "python3"
    fake.write_text("#!/bin/sh\ncase \"$*\" in *'-m venv'*) mkdir -p .venv/bin; echo 'ensurepip is not available' >&2; "
                    "exit 1;; esac\nexec %s \"$@\"\n" % getattr(sys, "_base_executable", sys.executable))
    fake.chmod(0o755)
    work = tmp_path / "tree"
    work.mkdir()
    shutil.copy(os.path.join(ROOT, "Makefile"), work / "Makefile")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(["make", "install"], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "make: python3 -m venv failed (see .venv.log); on Debian/Ubuntu: apt-get install python3-venv" in run.stderr
    assert not (work / ".venv").exists()
    assert "ensurepip is not available" in (work / ".venv.log").read_text()
