"""The array path for big profiles (pprof_py/bigprofile.py) gives the same
report as the general path: total, notes, flat and cumulative values (in
the same order), and the same address stacks when a renderer asks."""
import dataclasses
import glob
import os
import random

import pytest

from helpers import PROFILES, ROOT, localize
from pprof_py import bigprofile, report
from pprof_py.model import Frame, ProfileBuilder, ValueType
from pprof_py.render.text import render_text
from pprof_py.symbolize import Symbols


def _both_ways(inputs, options, monkeypatch):
    """(array report, general report, their notes)."""
    made = []
    for threshold in (0, 10 ** 12):
        monkeypatch.setattr(bigprofile, "MIN_STACKS", threshold)
        notes = []
        made.append((report.analyze(inputs, options, notes), notes))
    (arrays, array_notes), (general, general_notes) = made
    return arrays, general, array_notes, general_notes


def _whole_values(inputs, options):
    values = inputs.profiles[0].values[:, report.value_column(inputs.kind, options)]
    return all(float(v).is_integer() for v in values)


def _assert_same(arrays, general, array_notes, general_notes):
    # each path was taken (the array path takes only whole-number values)
    assert (arrays.stacks is None) == _whole_values(arrays.inputs, arrays.options)
    assert general.stacks is not None
    assert arrays.total == general.total and type(arrays.total) is type(general.total)
    assert array_notes == general_notes
    assert list(arrays.flat.items()) == list(general.flat.items())
    assert list(arrays.cum.items()) == list(general.cum.items())
    assert all(type(v) is float for v in arrays.cum.values())
    assert arrays.profile == general.profile          # made on demand
    assert render_text(arrays) == render_text(general)


def _fixture_cases():
    localize()
    cases = []
    for path in sorted(glob.glob(os.path.join(ROOT, PROFILES, "*"))):
        name = os.path.basename(path)
        program = os.path.join(ROOT, "fixtures", "bin", name.split(".")[0])
        if name.startswith("shared"):
            program = os.path.join(ROOT, "fixtures", "bin", "shared_main")
        if os.path.exists(program):
            cases.append((program, path))
    return cases


@pytest.mark.parametrize("program,path", _fixture_cases(), ids=lambda v: os.path.basename(v))
def test_fixture_profiles_agree(program, path, monkeypatch):
    inputs = report.load(program, [path], report.Options())
    variants = [dict(granularity=g) for g in ("functions", "lines", "files", "addresses")]
    variants += [dict(show_addresses=True), dict(no_auto_signal_frames=True), dict(cum=True)]
    if inputs.kind.is_heap:
        variants += [dict(sample_index=i) for i in ("inuse_objects", "alloc_space", "alloc_objects")]
    arrays_taken = 0
    for variant in variants:
        options = dataclasses.replace(report.Options(), **variant)
        _assert_same(*_both_ways(inputs, options, monkeypatch))
        arrays_taken += _whole_values(inputs, options)
    assert arrays_taken or ".sampled." in path     # sampled heap profiles scale their counts


def _random_inputs(seed, kind="cpu"):
    """A profile of random stacks over a small address pool whose symbols
    share tuples, hold inlined frames, an empty name, a function pprof
    skips, and addresses pprof leaves out; some runs give every stack the
    same second frame (and the leaf-1 frame pprof also skips)."""
    rng = random.Random(seed)
    pool = [0x400000 + 16 * i for i in range(60)] + [0, 0xffffffffffff0000]
    shared = (Frame("main", "main.c:1", "main"),)
    symbols = Symbols()
    for i, a in enumerate(pool):
        choice = i % 7
        if choice == 0:
            symbols[a] = shared
        elif choice == 1:
            symbols[a] = (Frame("outer", "o.c:3", "outer"), Frame("inner", "i.h:9", "inner"))
        elif choice == 2:
            symbols[a] = (Frame("", "", ""),)
        elif choice == 3 and kind == "cpu":
            symbols[a] = (Frame("__restore", "??:0", "__restore"),)
        elif choice == 4:
            continue                      # unnamed: its address is its key
        else:
            symbols[a] = (Frame("f%d" % (i % 11), "f.c:%d" % i, "f%d(int)" % (i % 11)),)
    common = rng.random() < 0.5
    builder = ProfileBuilder(kind, [ValueType("samples", "count")] if kind == "cpu"
                             else [ValueType(t, "x") for t in ("a", "b", "c", "d")])
    for _ in range(rng.randint(1, 300)):
        leaf = rng.choice(pool)
        stack = [leaf]
        if common:
            stack += [0x4ff000]
            if leaf and rng.random() < 0.5:
                stack.append(leaf - 1)
        stack += [rng.choice(pool) for _ in range(rng.randint(0, 12))]
        n = len(builder._values[0]) if builder._values else (1 if kind == "cpu" else 4)
        builder.add(stack, [rng.randint(0, 5) for _ in range(n)])
    profile = builder.build()
    addresses = [[loc.address for loc in profile.locations]]
    return report.Inputs(program=None, kind=profile.kind, width=16, profiles=[profile], base=None,
                         addresses=addresses, mappings=[], symbols=symbols, notes=[])


@pytest.mark.parametrize("seed", range(40))
def test_random_profiles_agree(seed, monkeypatch):
    inputs = _random_inputs(seed, "cpu" if seed % 4 else "heap")
    for variant in (dict(), dict(granularity="lines"), dict(granularity="files"),
                    dict(granularity="addresses"), dict(show_addresses=True),
                    dict(no_auto_signal_frames=True)):
        options = dataclasses.replace(report.Options(), **variant)
        _assert_same(*_both_ways(inputs, options, monkeypatch))


def test_fractional_values_take_the_general_path(monkeypatch):
    inputs = _random_inputs(1)
    inputs.profiles[0].values[0, 0] = 0.5
    monkeypatch.setattr(bigprofile, "MIN_STACKS", 0)
    assert report.analyze(inputs, report.Options()).stacks is not None


def test_filters_take_the_general_path(monkeypatch):
    inputs = _random_inputs(2)
    monkeypatch.setattr(bigprofile, "MIN_STACKS", 0)
    for variant in (dict(focus="f1"), dict(ignore="f1"), dict(hide="f1"), dict(show="f1"),
                    dict(show_from="f1")):
        options = dataclasses.replace(report.Options(), **variant)
        assert report.analyze(inputs, options).stacks is not None
