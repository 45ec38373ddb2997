"""Every picture and interchange output is byte-for-byte the same across
runs.  Two separate processes with different PYTHONHASHSEED values render
everything and report digests, so any dependence on set or dict-of-str
hash order would show."""
import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT, localize

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tests/, where helpers.py is
FLAGS = ["collapsed", "raw", "callgrind", "dot", "svg", "pdf", "ps", "png", "gif", "flame", "icicle"]
INPUTS = {
    "cpu": ({}, ["fixtures/bin/cxx", "fixtures/local/profiles/cxx.cpu.prof"]),
    "heap": ({"sample_index": "alloc_space"},
             ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.sampled.heap"]),
    "base": ({"base": "fixtures/local/profiles/chain.cpu.2.prof", "drop_negative": True},
             ["fixtures/bin/chain", "fixtures/local/profiles/chain.cpu.prof"]),
}

_WORKER = r"""
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
from helpers import render
inputs, flags = json.loads(sys.argv[2]), json.loads(sys.argv[3])
result = {}
for name, (options, files) in inputs.items():
    for flag in flags:
        out, _ = render(flag, options, files[0], files[1:])
        if isinstance(out, str):
            out = out.encode("utf-8", "surrogateescape")
        result[name + " " + flag] = [len(out), hashlib.sha256(out).hexdigest()]
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def digests():
    localize()
    procs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", _WORKER, HERE, json.dumps(INPUTS), json.dumps(FLAGS)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    return results


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_same_bytes_every_run(digests, name, flag):
    first, second = digests
    key = name + " " + flag
    assert first[key][0] > 100
    assert first[key] == second[key]
