"""Checks of an installed fastfc wheel, run by .ci/wheel in a fresh venv (never the checkout).

    python wheel_check.py alone              import, vendored libgomp, ISA, kernels, threads
    python wheel_check.py source             the same for a build from the sdist (not
                                             repaired: the system's libgomp, not a vendored one)
    python wheel_check.py no-emulated        FASTFC_ISA=avx512-emulated: a clear warning
    python wheel_check.py torch,fastfc,...   import and use them in that order, then use
                                             each again: fastfc still right and threaded
"""
import sys
import warnings

import numpy as np


def cpu_best_isa():
    """The best path from /proc/cpuinfo's flags, as fastfc's dispatch decides."""
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags):
        return "avx512"
    if {"avx2", "fma"} <= set(flags):
        return "avx2"
    return "generic"


def private_module():
    import fastfc
    try:
        from fastfc import _core as core
    except ImportError:
        from fastfc import _kernels as core
    assert hasattr(core, "_wide_regions"), core
    return fastfc, core


def check_fastfc():
    """Kernels against the reference, and a product that must open a team of 2 threads."""
    fastfc, core = private_module()
    from fastfc import reference as ref
    from fastfc.__main__ import check_kernels
    failures = check_kernels(np.random.default_rng(0))
    assert not failures, failures
    fastfc.set_num_threads(2)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((512, 512)), rng.standard_normal((512, 512))
    b = rng.standard_normal(512)
    before = core._wide_regions()
    y = fastfc.linear(x, w, b, activation="relu")   # 134M multiply-adds: always threaded
    assert core._wide_regions() > before, "set_num_threads(2) opened no parallel region"
    np.testing.assert_allclose(y, ref.linear(x, w, b, activation="relu"), rtol=1e-10,
                               atol=1e-10)
    return fastfc


def check_alone(repaired=True):
    fastfc = check_fastfc()
    assert "site-packages" in fastfc.__file__, fastfc.__file__
    with open("/proc/self/maps") as f:
        gomp = {line.split()[-1] for line in f if "libgomp" in line}
    vendored = {p for p in gomp if "fastfc.libs/libgomp-" in p}
    # auditwheel vendors libgomp into the wheel; pip's build from the sdist links the system's
    assert gomp and (vendored == gomp if repaired else not vendored), gomp
    cfg = fastfc.get_config()
    assert cfg["isa"] == cpu_best_isa(), (cfg["isa"], cpu_best_isa())
    assert "avx512-emulated" not in cfg["isas_testable"], cfg
    print(f"{'wheel' if repaired else 'sdist build'} alone: {fastfc.__file__}, "
          f"isa {cfg['isa']}, {cfg['openmp']}, libgomp {gomp}")


def check_no_emulated():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import fastfc
    text = " ".join(str(w.message) for w in caught)
    assert "avx512-emulated" in text and "without the test-only" in text, text
    assert fastfc.get_config()["isa"] == cpu_best_isa()
    print("emulated path absent, said so:", text)


def use(name):
    if name == "fastfc":
        check_fastfc()
    elif name == "torch":
        import torch
        torch.set_num_threads(2)
        a = torch.randn(512, 512, dtype=torch.float64)
        assert torch.allclose(a @ a, torch.from_numpy(a.numpy() @ a.numpy()))
    elif name == "sklearn":
        from sklearn.cluster import KMeans   # Cython prange: scikit-learn's own libgomp
        X = np.random.default_rng(0).standard_normal((2000, 8))
        KMeans(n_clusters=4, n_init=1, random_state=0).fit(X)
    else:
        raise SystemExit(f"unknown module {name}")


def check_order(order):
    for name in order:
        __import__(name)
        use(name)
    for name in order:   # every runtime again, after all were loaded
        use(name)
    with open("/proc/self/maps") as f:
        gomp = sorted({line.split()[-1] for line in f if "gomp" in line})
    print(f"{' -> '.join(order)}: ok; OpenMP runtimes loaded: {gomp}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "alone":
        check_alone()
    elif mode == "source":
        check_alone(repaired=False)
    elif mode == "no-emulated":
        check_no_emulated()
    else:
        check_order(mode.split(","))
