"""Time of one call after an idle spell: `python bench/idle_wake.py [m k n] [--idle S]`.

Sleeping worker threads (and, on a VM, their sleeping vCPUs) can take milliseconds to wake.
For each of fastfc on one and on all threads and NumPy: calls until warm, sleep, time one
call; repeated, then the median, 90th percentile and maximum beside the warm time.
"""
import argparse
import time

import numpy as np

import fastfc
from fastfc.bench import forward_case


def one_call(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", nargs="*", type=int, default=[64, 784, 128])
    ap.add_argument("--idle", type=float, default=0.1, help="seconds asleep before the call")
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args()
    fns = forward_case(*a.shape)
    threads = fastfc.get_num_threads()
    libs = {f"fastfc {threads} threads": (fns["fastfc"], threads),
            "fastfc 1 thread": (fns["fastfc"], 1), "numpy": (fns["numpy"], threads)}
    idle, warm = {name: [] for name in libs}, {name: [] for name in libs}
    for _ in range(a.repeats):
        for name, (fn, nt) in libs.items():
            fastfc.set_num_threads(nt)
            for _ in range(30):
                fn()
            warm[name].append(np.median([one_call(fn) for _ in range(10)]))
            time.sleep(a.idle)
            idle[name].append(one_call(fn))
    fastfc.set_num_threads(threads)
    print(f"forward {'x'.join(map(str, a.shape))}, one call after {a.idle * 1e3:.0f} ms asleep (us)")
    for name, ts in idle.items():
        us = np.array(ts) * 1e6
        print(f"  {name:>18}: median {np.median(us):7.0f}  p90 {np.percentile(us, 90):7.0f}  "
              f"max {us.max():7.0f}   warm {np.median(warm[name]) * 1e6:6.0f}")


if __name__ == "__main__":
    main()
