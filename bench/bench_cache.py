#!/usr/bin/env python3
"""Load time of the symbol cache alone (symbolize/cache.py), against the
pickle it replaced.

Fills a fresh cache for the addresses of a CPU profile (default: the
synthetic profile bench/bench_text.py writes, 200,000 stacks in
libpython), then times, best of --repeat, in this one process:

  ours     _load() of the cache file (reads, checks and builds every fact,
           what `pprof --text` does with a warm cache) and one look at each
           address's fact
  pickle   pickle.loads() of the same store as the previous format held it
           ({"addresses", "ids", "facts"}; made in memory, never written)

CPU seconds (time.process_time), so a busy machine matters less.  Prints
both and the ratio.
"""
import argparse
import os
import pickle
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from pprof_py.formats import read_profile          # noqa: E402
from pprof_py.symbolize import Symbolizer, cache   # noqa: E402


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.realpath(sys.executable))
    ap.add_argument("--profile", default=os.path.join(HERE, "out", "synthetic_200000_1.cpu.prof"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(args.profile):
        sys.exit(f"{args.profile} is missing: run bench/bench_text.py first")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = tmp
        profile = read_profile(args.profile)
        addresses = {loc.address for loc in profile.locations}
        start = time.monotonic()
        Symbolizer(args.binary).symbolize(addresses, profile.mappings,
                                          max(addresses, default=0))
        print(f"filled the cache in {time.monotonic() - start:.1f}s")
        files = sorted(os.listdir(cache.cache_dir()))
        total_ours = total_pickle = 0.0
        for name in files:
            path = os.path.join(cache.cache_dir(), name)
            store = cache._load(path, warn=print)
            ids = store.ids.tolist()

            def ours():
                s = cache._load(path)
                for i in s.ids.tolist():
                    s.facts[i]
            facts = store.facts
            blob = pickle.dumps({"version": 10, "addresses": list(store.addresses),
                                 "ids": list(store.ids), "facts": facts},
                                protocol=pickle.HIGHEST_PROTOCOL)

            def old():
                d = pickle.loads(blob)
                f = d["facts"]
                for i in ids:
                    f[i]
            t_ours, t_old = best(ours, args.repeat), best(old, args.repeat)
            total_ours += t_ours
            total_pickle += t_old
            print(f"{name[:12]}: {len(ids)} addresses, {len(facts)} facts, "
                  f"{os.path.getsize(path) / 1e6:.1f} MB (pickle {len(blob) / 1e6:.1f} MB): "
                  f"ours {t_ours * 1000:.0f} ms, pickle {t_old * 1000:.0f} ms")
        if total_pickle:
            print(f"cache load, all objects: ours {total_ours * 1000:.0f} ms, pickle "
                  f"{total_pickle * 1000:.0f} ms, ratio {total_ours / total_pickle:.2f}x")


if __name__ == "__main__":
    main()
