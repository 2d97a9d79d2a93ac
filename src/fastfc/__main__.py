"""`python -m fastfc`: configuration, a check of every kernel against the NumPy
reference, and a small timing table. `python -m fastfc bench [...]`: the benchmark."""
import sys
import time

import numpy as np

import fastfc
from fastfc import reference as ref


def _tolerance(dtype, k):
    return 8 * np.finfo(dtype).eps * max(k, 1)


def check_kernels(rng):
    """Each kernel against the reference on a few odd shapes; returns the failures."""
    failures = []
    for dt in (np.float32, np.float64):
        for m, k, n in [(1, 7, 17), (63, 65, 1000), (257, 130, 33)]:
            x = rng.standard_normal((m, k)).astype(dt)
            w = rng.standard_normal((k, n)).astype(dt)
            b = rng.standard_normal(n).astype(dt)
            scale = np.sqrt(k) * 4
            tol = _tolerance(dt, k) * scale
            for act in fastfc.ACTIVATIONS:
                y = fastfc.linear(x, w, b, activation=act)
                if not np.allclose(y, ref.linear(x, w, b, activation=act), rtol=tol, atol=tol):
                    failures.append(f"linear {act} {dt.__name__} {m}x{k}x{n}")
                gy = rng.standard_normal(y.shape).astype(dt)
                got = fastfc.linear_backward(gy, x, w, y=y, activation=act)
                want = ref.linear_backward(gy, x, w, y=y, activation=act)
                red = max(m, n, k)
                for name, g, r in zip(("grad_x", "grad_w", "grad_b"), got, want):
                    t = _tolerance(dt, red) * np.sqrt(red) * 4
                    if not np.allclose(g, r, rtol=t, atol=t):
                        failures.append(f"linear_backward {name} {act} {dt.__name__} {m}x{k}x{n}")
            c = fastfc.gemm(x.T, w[:, ::-1], trans_a=True, alpha=0.5)
            if not np.allclose(c, 0.5 * x @ w[:, ::-1], rtol=tol, atol=tol):
                failures.append(f"gemm {dt.__name__} {m}x{k}x{n}")
        xd = rng.standard_normal(10007).astype(dt)
        y, mask = fastfc.dropout(xd, 0.3, seed=42)
        ry, rmask = ref.dropout(xd, 0.3, seed=42)
        if not (np.array_equal(mask, rmask) and np.array_equal(y, ry)):
            failures.append(f"dropout {dt.__name__}")
    return failures


def _median_time(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def timing_table(rng, shapes=((64, 784, 128), (256, 784, 128), (256, 64, 10), (1024, 1024, 1024))):
    """Forward linear+relu, fastfc vs NumPy (matmul(out=) + add + maximum), float32.
    Blocks of calls per library, alternating, with a pause between them."""
    print(f"\n{'shape (m x k x n)':>20} {'fastfc ms':>10} {'numpy ms':>10} {'speed-up':>9}")
    for m, k, n in shapes:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = rng.standard_normal((k, n)).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32)
        out = np.empty((m, n), np.float32)

        def ours():
            fastfc.linear(x, w, b, activation="relu", out=out)

        def numpy():
            np.matmul(x, w, out=out)
            np.add(out, b, out=out)
            np.maximum(out, 0, out=out)

        reps = max(3, min(200, int(2e8 / (2 * m * n * k))))
        t = {"fastfc": [], "numpy": []}
        for _ in range(5):
            for name, fn in (("fastfc", ours), ("numpy", numpy)):
                fn()
                t[name].append(_median_time(fn, reps))
                time.sleep(0.05)
        tf, tn = np.median(t["fastfc"]), np.median(t["numpy"])
        print(f"{f'{m}x{k}x{n}':>20} {tf * 1e3:10.3f} {tn * 1e3:10.3f} {tn / tf:8.2f}x")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bench":
        from fastfc.bench import main as bench_main
        return bench_main(argv[1:])
    fastfc.show_config()
    rng = np.random.default_rng(0)
    failures = check_kernels(rng)
    print("\nkernels vs fastfc.reference:", "all match" if not failures else "MISMATCH")
    for f in failures:
        print("  ", f)
    timing_table(rng)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
