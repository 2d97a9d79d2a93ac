"""`python -m fastfc`: configuration, a check of the gemm, linear, linear_backward, dropout
and dropout_backward kernels against the NumPy reference, and a small timing table.
`python -m fastfc bench [...]`: the benchmark."""
import sys

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
        if not np.array_equal(fastfc.dropout_backward(xd, mask, 0.3),
                              ref.dropout_backward(xd, rmask, 0.3)):
            failures.append(f"dropout_backward {dt.__name__}")
    return failures


def timing_table(shapes=((64, 784, 128), (256, 784, 128), (256, 64, 10), (1024, 1024, 1024))):
    """Forward linear + bias + relu, fastfc vs NumPy (matmul(out=) + add + maximum),
    float32, timed as in `python -m fastfc bench` (alternating blocks, pauses)."""
    from fastfc.bench import compare, forward_case
    print(f"\n{'shape (m x k x n)':>20} {'fastfc ms':>10} {'numpy ms':>10} {'speed-up':>9}")
    for m, k, n in shapes:
        fns = forward_case(m, k, n)
        t = compare({lib: fns[lib] for lib in ("fastfc", "numpy")}, rounds=3)
        print(f"{f'{m}x{k}x{n}':>20} {t['fastfc'] * 1e3:10.3f} {t['numpy'] * 1e3:10.3f} "
              f"{t['numpy'] / t['fastfc']:8.2f}x", flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bench":
        from fastfc.bench import main as bench_main
        return bench_main(argv[1:])
    if argv:   # --help, or a usage error
        asked = argv[0] in ("-h", "--help")
        print(__doc__, file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    fastfc.show_config()
    rng = np.random.default_rng(0)
    failures = check_kernels(rng)
    print("\nkernels vs fastfc.reference:", "all match" if not failures else "MISMATCH")
    for f in failures:
        print("  ", f)
    timing_table()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
