"""Cost of fit's non-finite guard: `python bench/nonfinite_guard.py [--threads 2] [--steps 3000]`.

The 784-128-64-10 MLP, batch 32, float32, Adam. Two measurements in one process:
- per step: steps of one loop run, in a random order, as fit runs them with
  on_nonfinite="raise" (the guard's hook, and the fused C check) or "ignore"; the medians
  over all steps of each kind (a preempted step does not move a median);
- per epoch: `fit` epochs with "raise" and "ignore" in alternating blocks, the median;
- per block: the gradients alone (no optimizer, no hook) in blocks of 100 steps with the
  C check on and off, paired (ABBA), the median of the differences: the C check only.
"""
import argparse
import time

import numpy as np

import fastfc
from fastfc.model import callbacks as callbacks_mod


def model():
    return fastfc.Sequential([fastfc.Dense(784, 128, activation="relu"),
                              fastfc.Dense(128, 64, activation="relu"), fastfc.Dense(64, 10)],
                             optimizer=fastfc.optim.Adam(1e-3), dtype=np.float32)


def per_step(X, y, steps):
    m = model()
    guard = callbacks_mod.NonFiniteGuard("raise")
    callbacks_mod.CallbackList([guard], m, {})
    guard.on_train_begin()
    order = np.random.default_rng(1).integers(0, 2, 2 * steps)
    times = {"raise": [], "ignore": []}
    for i, kind in enumerate(order):
        mode = ("raise", "ignore")[kind]
        m._check_finite = mode == "raise"
        j = i % steps
        xb, yb = X[32 * j:32 * j + 32], y[32 * j:32 * j + 32]
        t0 = time.perf_counter_ns()
        loss, _ = m._gradients(xb, yb, True)
        if mode == "raise" and not guard.on_train_batch_gradients(j, {"loss": loss}):
            raise AssertionError("a finite step refused")
        m._apply_gradients()
        if i >= steps:   # the first pass warms up
            times[mode].append(time.perf_counter_ns() - t0)
    return {k: float(np.median(v)) / 1e3 for k, v in times.items()}


def per_epoch(X, y, rounds, rows):
    m = model()
    X, y = X[:rows], y[:rows]
    times = {"raise": [], "ignore": []}
    for r in range(rounds + 1):
        for mode in ("raise", "ignore") if r % 2 else ("ignore", "raise"):
            t0 = time.perf_counter()
            m.fit(X, y, epochs=1, batch_size=32, shuffle=False, verbose=0, on_nonfinite=mode)
            if r:
                times[mode].append((time.perf_counter() - t0) / (rows // 32) * 1e6)
    return {k: float(np.median(v)) for k, v in times.items()}


def per_block(X, y, pairs=60, steps=100):
    m = model()

    def block(check):
        m._check_finite = check
        t0 = time.perf_counter_ns()
        for j in range(steps):
            m._gradients(X[32 * j:32 * j + 32], y[32 * j:32 * j + 32], True)
        return (time.perf_counter_ns() - t0) / steps / 1e3

    block(True), block(False)   # warm up
    diffs, base = [], []
    for r in range(pairs):   # ABBA: which runs first alternates
        if r % 2:
            on, off = block(True), block(False)
        else:
            off, on = block(False), block(True)
        diffs.append(on - off)
        base.append(off)
    return float(np.median(diffs)), float(np.median(base))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    fastfc.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.steps * 32, 784)).astype(np.float32)
    y = rng.integers(0, 10, args.steps * 32)
    for name, t in (("per step", per_step(X, y, args.steps)),
                    ("per epoch", per_epoch(X, y, args.rounds, min(4096, 32 * args.steps)))):
        print(f"threads={args.threads} {name}: raise {t['raise']:.1f} us, ignore "
              f"{t['ignore']:.1f} us, the check {t['raise'] - t['ignore']:.2f} us = "
              f"{100 * (t['raise'] / t['ignore'] - 1):.2f} % of a step", flush=True)
    d, base = per_block(X, y, steps=min(100, args.steps))
    print(f"threads={args.threads} per block: the C check {d:.2f} us on gradients of "
          f"{base:.1f} us = {100 * d / base:.2f} %", flush=True)


if __name__ == "__main__":
    main()
