"""The correctness sweep on every kernel path this CPU can run, chosen with FASTFC_ISA in a
fresh interpreter (the path is picked once, at import)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastfc

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# Runs in a child process: imports fastfc under the FASTFC_ISA given, records the warnings
# of the import, then checks gemm / linear / linear_backward / dropout against the
# reference over odd sizes (micro-tile edges, narrow last column tiles, K across KC blocks,
# a narrow layer's dW, M across MC and N across NC blocks on every path, weights and dY
# above 8 MB, which the engine streams from memory), layouts and both dtypes.
SWEEP = r"""
import json, sys, traceback, warnings
sys.path.insert(0, sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import fastfc
import numpy as np
from fastfc import reference as ref
from conftest import LAYOUTS, assert_close, assert_identical, gemm_scale, make
from test_isa_paths import ADAM_SIZES, adam_digest, adam_steps

rng = np.random.default_rng(7)
failures = []
checks = 0

def attempt(label, fn):
    global checks
    checks += 1
    try:
        fn()
    except AssertionError as e:
        failures.append(f"{label}: {str(e)[:200]}")

ACTS = [None, "relu", "leaky_relu", "sigmoid", "tanh"]
SHAPES = [(1, 1, 1), (5, 7, 9), (6, 16, 8), (7, 17, 33), (13, 257, 37), (65, 63, 17),
          (100, 300, 70), (3, 1030, 20), (40, 50, 7),
          (500, 40, 20), (3, 20, 4200), (5, 1100, 2048), (2100, 8, 1024), (32, 70, 129),
          (50, 33, 56), (70, 20, 37)]  # last column tiles of 1-2 vectors: narrow kernels
for dt in (np.float32, np.float64):
    for i, (m, k, n) in enumerate(SHAPES):
        lx, lw = LAYOUTS[i % 5], LAYOUTS[(2 * i + 1) % 5]
        x, w, b = make(rng, (m, k), dt, lx), make(rng, (k, n), dt, lw), make(rng, (n,), dt)
        bound = gemm_scale(x, w) + abs(b)
        for act in ACTS:
            y = fastfc.linear(x, w, b, activation=act)
            attempt(f"linear {act} {dt.__name__} {m}x{k}x{n} {lx}/{lw}", lambda: assert_close(
                y, ref.linear(x, w, b, activation=act), bound, k + 1, dt))
            gy = make(rng, (m, n), dt, LAYOUTS[i % 5])
            got = fastfc.linear_backward(gy, x, w, y=y, activation=act)
            want = ref.linear_backward(gy, x, w, y=y, activation=act)
            for name, g, r, s, kk in zip(("grad_x", "grad_w", "grad_b"), got, want,
                                         (gemm_scale(gy, abs(w).T), gemm_scale(abs(x).T, gy),
                                          abs(gy).sum(0)), (n + 2, m + 2, m + 2)):
                attempt(f"linear_backward {name} {act} {dt.__name__} {m}x{k}x{n} {lx}/{lw}",
                        lambda: assert_close(g, r, s, kk, dt))
        y = fastfc.linear(x, w, activation="relu")
        attempt(f"linear no bias {dt.__name__} {m}x{k}x{n}", lambda: assert_close(
            y, ref.linear(x, w, activation="relu"), gemm_scale(x, w), k, dt))
        for ta in (False, True):
            for tb in (False, True):
                a = make(rng, (k, m) if ta else (m, k), dt, lw)
                bb = make(rng, (n, k) if tb else (k, n), dt, lx)
                out = make(rng, (m, n), dt, LAYOUTS[(i + 3) % 5])
                want = ref.gemm(a, bb, trans_a=ta, trans_b=tb, alpha=0.5, beta=-1.5,
                                out=out.copy())
                scale = 0.5 * gemm_scale(a.T if ta else a, bb.T if tb else bb) + 1.5 * abs(out)
                fastfc.gemm(a, bb, trans_a=ta, trans_b=tb, alpha=0.5, beta=-1.5, out=out)
                attempt(f"gemm {dt.__name__} {m}x{k}x{n} ta={ta} tb={tb}",
                        lambda: assert_close(out, want, scale, k + 1, dt))
    for size in (1, 31, 32, 33, 97, 1000, 100003):
        xd = make(rng, (size,), dt, "sliced")
        for p in (0.0, 0.3, 0.9):
            yd, mask = fastfc.dropout(xd, p, seed=size, stream=2**33 + 1)
            ry, rmask = ref.dropout(xd, p, seed=size, stream=2**33 + 1)
            attempt(f"dropout {dt.__name__} n={size} p={p}", lambda: (
                assert_identical(mask, rmask), assert_identical(yd, ry)))
            attempt(f"dropout_backward {dt.__name__} n={size} p={p}", lambda: assert_identical(
                fastfc.dropout_backward(xd, mask, p), ref.dropout_backward(xd, mask, p)))
for dt in (np.float32, np.float64):
    for size in ADAM_SIZES:
        got, want = adam_steps(size, dt)
        attempt(f"adam {dt.__name__} n={size}", lambda: np.testing.assert_allclose(
            got, want, rtol=20 * np.finfo(dt).eps, atol=20 * np.finfo(dt).eps))
print(json.dumps({
    "isa": fastfc.get_config()["isa"], "cpu_isa": fastfc.get_config()["cpu_isa"],
    "tile": [fastfc.get_config()["blocks_float32"][b] for b in ("MR", "NR")],
    "adam_digest": adam_digest(),
    "warnings": [[w.category.__name__, str(w.message), w.filename] for w in caught
                 if "FASTFC_ISA" in str(w.message)],
    "checks": checks, "failures": failures}))
"""


# Adam runs in the path's ISA (eight lanes on AVX2, compiled without contraction): each
# path must match the NumPy reference and round exactly as every other path.
ADAM_SIZES = (1, 7, 63, 65, 1000, 70001)


def adam_steps(size, dtype, steps=3):
    """(fastfc's parameters after `steps` Adam updates with L2 decay, NumPy's)."""
    from fastfc import _core
    from test_optim import ref_adam
    rng = np.random.default_rng(size)
    p0 = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(steps)]
    p, m, v = p0.copy(), np.zeros(size, dtype), np.zeros(size, dtype)
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.01
    for t, g in enumerate(grads, 1):
        _core._adam_update(p, g, m, v, lr, b1, b2, eps, wd, False, t)
    return p, ref_adam(p0, grads, lr, b1, b2, eps, wd)


def adam_digest():
    import hashlib
    h = hashlib.sha256()
    for dt in (np.float32, np.float64):
        for size in ADAM_SIZES:
            h.update(adam_steps(size, dt)[0].tobytes())
    return h.hexdigest()


def run_with_isa(isa):
    env = dict(os.environ, FASTFC_ISA=isa)
    r = subprocess.run([sys.executable, "-c", SWEEP, TESTS_DIR], env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


CFG = fastfc.get_config()
# every path the CPU runs natively, plus the AVX-512 kernel source compiled for AVX2 where
# the build provides it (isas_testable)
ISAS = list(dict.fromkeys(list(CFG["isas_supported"]) + list(CFG["isas_testable"])))


# float32 micro-tile (MR, NR) of each path's kernels
TILE_OF = {"generic": [4, 8], "avx2": [6, 16], "avx512": [12, 32], "avx512-emulated": [12, 32]}


def test_supported_isas_are_consistent():
    assert CFG["isas_supported"][0] == "generic"
    assert CFG["isas_supported"][-1] == CFG["cpu_isa"]
    assert CFG["isa"] in CFG["isas_testable"]
    assert set(CFG["isas_supported"]) <= set(CFG["isas_testable"])


@pytest.mark.parametrize("isa", ISAS)
def test_every_path_passes_the_sweep(isa):
    res = run_with_isa(isa)
    assert res["isa"] == isa
    assert res["tile"] == TILE_OF[isa]   # the path's own kernels ran, not only its name
    assert res["warnings"] == [], res["warnings"]
    assert res["checks"] > 400
    assert res["failures"] == [], res["failures"][:10]
    assert res["adam_digest"] == adam_digest(), "Adam rounds differently on this path"


def test_avx512_request():
    res = run_with_isa("avx512")
    if "avx512" in CFG["isas_supported"]:     # the CPU has it: it runs, silently
        assert res["isa"] == "avx512" and res["warnings"] == []
    else:                                      # it does not: a warning, then the best path
        assert res["isa"] == CFG["cpu_isa"]
        assert len(res["warnings"]) == 1, res["warnings"]
        category, message, where = res["warnings"][0]
        assert category == "RuntimeWarning"
        assert where == "<string>"   # the child's `import fastfc`, not importlib
        assert "FASTFC_ISA='avx512' is not supported by this CPU" in message
        assert repr(CFG["cpu_isa"]) in message
    assert res["failures"] == [], res["failures"][:10]


@pytest.mark.parametrize("value", ["bogus", "sse9"])
def test_unknown_isa_warns_and_uses_the_best(value):
    res = run_with_isa(value)
    assert res["isa"] == CFG["cpu_isa"]
    assert len(res["warnings"]) == 1, res["warnings"]
    category, message, where = res["warnings"][0]
    assert category == "RuntimeWarning" and where == "<string>"
    assert f"FASTFC_ISA={value!r} is not one of" in message and "'generic'" in message
    assert res["failures"] == [], res["failures"][:10]


def test_isa_name_is_case_and_space_insensitive():
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c",
                          "import fastfc; print(fastfc.get_config()['isa'])"],
                         env=dict(os.environ, FASTFC_ISA="  GENERIC "), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "generic"


def test_show_config_reports_path(capsys):
    fastfc.show_config()
    out = capsys.readouterr().out
    assert f"fastfc {fastfc.__version__}" in out
    assert f"isa in use      : {CFG['isa']}" in out
    assert ", ".join(CFG["isas_supported"]) in out
    assert f"threads         : {fastfc.get_num_threads()}" in out
    assert CFG["openmp"] in out
    for dt in ("float32", "float64"):
        blocks = CFG[f"blocks_{dt}"]
        assert " ".join(f"{k}={v}" for k, v in blocks.items()) in out
