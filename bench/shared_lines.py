"""What a core pays to write memory another core has just read (or written).

    python bench/shared_lines.py [KiB]     # default 440 KiB: the 784-128-64-10 MLP's weights

Two threads pinned to CPUs 0 and 1 (os.sched_setaffinity on the calling thread). The
first times an in-place write of an array (`a *= 1`) after: nothing else touched it, the
second thread read it, the second thread wrote it. A training step makes the second case:
both threads read the weights (packing W) and one then writes them (the optimizer).
Median of 200 rounds each, us. Nothing of fastfc is used: it measures the machine.
"""
import os
import sys
import threading
import time

import numpy as np


def main(kib: int = 440, rounds: int = 200) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two CPUs")
        return
    cpus = sorted(os.sched_getaffinity(0))[:2]
    a = np.ones(kib * 256, np.float32)
    go, done = threading.Event(), threading.Event()
    task = [None]

    def other():
        os.sched_setaffinity(0, {cpus[1]})
        while True:
            go.wait()
            go.clear()
            if task[0] is None:
                return
            task[0]()
            done.set()

    def stop():
        task[0] = None
        go.set()

    def on_other(fn):
        task[0] = fn
        done.clear()
        go.set()
        done.wait()

    t = threading.Thread(target=other, daemon=True)
    t.start()
    os.sched_setaffinity(0, {cpus[0]})
    cases = {"alone": lambda: None,
             "after the other core read it": lambda: on_other(lambda: float(a.sum())),
             "after the other core wrote it": lambda: on_other(lambda: np.multiply(a, 1, out=a))}
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, before in cases.items():
            np.multiply(a, 1, out=a)   # this core owns it
            before()
            t0 = time.perf_counter()
            np.multiply(a, 1, out=a)
            times[name].append(time.perf_counter() - t0)
    stop()
    print(f"in-place write of {kib} KiB on CPU {cpus[0]} (the other thread on CPU {cpus[1]}):")
    for name, ts in times.items():
        print(f"  {name:32s} {np.median(ts) * 1e6:8.1f} us")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 440)
