"""Who holds the cores while fastfc runs right after a NumPy matmul:
`python bench/blas_spin.py [--shape 1024x1024x1024] [--calls 40]` (Linux: reads /proc).

NumPy's OpenBLAS keeps its worker threads spinning (sched_yield) for a while after each
threaded call. This prints fastfc's time per call and the CPU time each thread of the
process used during those calls, after a NumPy matmul and after a pause, with fastfc on
one and two threads: the share the BLAS's workers take is what the interleaved bench's
fastfc column cannot get back.
"""
import argparse
import os
import time

import numpy as np

import fastfc


def cpu_ns():
    """CPU time of each thread of this process in ns (schedstat), by thread id."""
    ns = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            ns[int(tid)] = int(f.read().split()[0])
    return ns


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="1024x1024x1024")
    ap.add_argument("--calls", type=int, default=40)
    args = ap.parse_args()
    m, k, n = map(int, args.shape.split("x"))
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s, dtype=np.float32) for s in ((256, 512), (512, 256)))
    x, w = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    y = np.empty((m, n), np.float32)
    main_tid = os.getpid()
    for threads in (2, 1):
        fastfc.set_num_threads(threads)
        for before in ("numpy matmul", "0.2 s pause"):
            fastfc.linear(x, w, out=y)
            spent, used = 0.0, {}
            for _ in range(args.calls):
                if before == "numpy matmul":
                    a @ b
                else:
                    time.sleep(0.2)
                start = cpu_ns()   # per call: NumPy's matmul and the pause are not counted
                t0 = time.perf_counter()
                fastfc.linear(x, w, out=y)
                spent += time.perf_counter() - t0
                for t, v in cpu_ns().items():
                    used[t] = used.get(t, 0) + v - start.get(t, v)
            share = ", ".join(f"{'main' if t == main_tid else t}: {100 * u / 1e9 / spent:.0f} %"
                              for t, u in sorted(used.items()) if u)
            print(f"fastfc on {threads} thread(s), after a {before}: {spent / args.calls * 1e3:.2f}"
                  f" ms a call; CPU per thread over the calls' time: {share}", flush=True)


if __name__ == "__main__":
    main()
