"""The small-batch path (W streamed once, never packed) and batch invariance: a row's result
does not depend on the batch it came in, whichever path (streamed or packed GEMM) that
batch size takes, on every thread count and every ISA path."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastfc
from fastfc import reference as ref
from conftest import LAYOUTS, assert_close, gemm_scale, make

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ACTS = [None, "relu", "leaky_relu", "sigmoid", "tanh"]


def w_view(w, layout):
    """W as (in, out) row-major, or as the transposed view of an (out, in) array (PyTorch)."""
    return w if layout == "in_out" else np.ascontiguousarray(w.T).T


# k across the K blocks of every path (KC 256-512), n across the thread split and with a
# tail that is no whole vector; k = 5 has no full pass of rows; rows of x 8 KiB or more
# apart (k = 2048) are read from a copy at a padded stride.
SHAPES = [(1, 1), (5, 3), (37, 45), (1030, 70), (400, 301), (2048, 40)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wl", ["in_out", "out_in"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_small_batches_match_the_reference(dtype, wl, threads, keep_threads):
    fastfc.set_num_threads(threads)
    rng = np.random.default_rng(3)
    for i, (k, n) in enumerate(SHAPES):
        for m in (1, 2, 3, 8, 15, 16):
            x = make(rng, (m, k), dtype, LAYOUTS[(i + m) % 5])
            w = make(rng, (k, n), dtype)
            b = make(rng, (n,), dtype)
            for act in ACTS:
                y = fastfc.linear(x, w_view(w, wl), b, activation=act)
                assert_close(y, ref.linear(x, w, b, activation=act), gemm_scale(x, w) + abs(b),
                             k + 1, dtype)
            gy = make(rng, (m, n), dtype, LAYOUTS[i % 5])
            y = fastfc.linear(x, w, b, activation="relu")
            gx = fastfc.linear_backward(gy, x, w_view(w, wl), y=y, activation="relu")[0]
            want = ref.linear_backward(gy, x, w, y=y, activation="relu")[0]
            assert_close(gx, want, gemm_scale(abs(gy), abs(w).T), n, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [2, 8, 16])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_crowded_rows_of_x_stream_like_padded_ones(dtype, m, threads, keep_threads):
    """Rows of x 8 or 16 KiB apart, which each thread copies a line apart once per call: the
    bits of the same x at a padded stride, call after call with x changed in place between
    (a copy kept from the call before would be stale), K split at 2 and 8 rows."""
    rng = np.random.default_rng(m)
    k, n = 2048, 1040   # W of 8.5 or 17 MB: a team streams it
    w = make(rng, (k, n), dtype)
    b = make(rng, (n,), dtype)
    x = np.empty((m, k), dtype)
    padded = np.empty((m, k + 16), dtype)[:, :k]
    fastfc.set_num_threads(threads)
    for _ in range(3):
        x[...] = rng.standard_normal((m, k))
        padded[...] = x
        y = fastfc.linear(x, w, b, activation="relu")
        assert np.array_equal(y, fastfc.linear(padded, w, b, activation="relu"))
        assert_close(y, ref.linear(x, w, b, activation="relu"), gemm_scale(x, w) + abs(b),
                     k + 1, dtype)


def test_streamed_weights_are_not_modified_and_nan_propagates():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 300)).astype(np.float32)
    w = rng.standard_normal((300, 50)).astype(np.float32)
    x[1, 7] = np.nan
    x[2, 9] = np.inf
    w0, x0 = w.copy(), x.copy()
    y = fastfc.linear(x, w, activation="relu")
    assert np.array_equal(w, w0) and np.array_equal(x, x0, equal_nan=True)
    assert np.isnan(y[1]).all()
    assert not np.isnan(y[0]).any() and not np.isnan(y[3]).any()
    want = ref.linear(x[2:3], w, activation="relu")
    assert np.array_equal(np.isnan(y[2]), np.isnan(want[0]))


# Runs in a child process under FASTFC_ISA: for every batch size m in 1..300, the rows of
# linear(x[:m]) equal those of linear(x), and so does every single row alone, for each
# dtype, W layout, x layout and thread count. Prints the failures as JSON.
INVARIANCE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import fastfc
from conftest import make

rng = np.random.default_rng(11)
failures, checks = [], 0
CASES = [(np.float32, 530, 37, "in_out", "C", "leaky_relu", True),   # k: 2 K blocks everywhere
         (np.float32, 300, 24, "out_in", "F", "tanh", True),
         (np.float64, 530, 20, "in_out", "sliced", "relu", False),
         (np.float64, 1100, 17, "out_in", "C", None, True),   # fp64 KC 512: 3 K blocks
         (np.float32, 530, 70, "bfloat16", "C", "relu", True),     # bf16, narrow: row-major
         (np.float32, 530, 61, "bfloat16", "F", "tanh", False),    # bf16 panels
         (np.float32, 260, 33, "float32", "sliced", "sigmoid", False),   # packed fp32
         (np.float64, 530, 29, "float64", "F", "leaky_relu", True),     # packed fp64
         (np.float32, 530, 7, "in_out", "C", "relu", True),       # narrow: streamed to m 256
         (np.float64, 260, 3, "out_in", "sliced", "tanh", True),
         # W^T up to 4 rows: tiles of 4 vectors through every K block, then the last columns
         (np.float32, 530, 70, "out_in", "C", "relu", True),
         # one output column: rows of x contiguous and k >= 64 are dot products (lanes
         # summed in a tree), packed weights too; else C^T = w^T.x^T streams x's rows
         (np.float32, 530, 1, "in_out", "C", "relu", True),
         (np.float64, 1100, 1, "float64", "C", "tanh", True),
         (np.float32, 63, 1, "in_out", "C", None, True),
         (np.float64, 1100, 1, "in_out", "F", "leaky_relu", True),
         # one vector of columns, up to 4 rows: several K blocks' sums at once
         (np.float32, 2100, 9, "in_out", "C", "relu", True),
         (np.float64, 4200, 5, "in_out", "sliced", None, False),
         (np.float32, 2100, 16, "bfloat16", "C", "leaky_relu", True)]
for dtype, k, n, wl, xl, act, with_bias in CASES:
    x = make(rng, (300, k), dtype, xl)
    w = make(rng, (k, n), dtype)
    if wl == "out_in":
        w = np.ascontiguousarray(w.T).T
    elif wl != "in_out":
        w = fastfc.pack(w, wl)
    b = make(rng, (n,), dtype) if with_bias else None
    for threads in (1, 2, 3):
        fastfc.set_num_threads(threads)
        full = fastfc.linear(x, w, b, activation=act)
        for m in range(1, 301):
            checks += 2
            part = fastfc.linear(x[:m], w, b, activation=act)
            if not np.array_equal(part, full[:m], equal_nan=True):
                failures.append(f"{dtype.__name__} {k}x{n} {wl} x {xl} {act} threads "
                                f"{threads}: rows of batch {m}")
            one = fastfc.linear(x[m - 1:m], w, b, activation=act)
            if not np.array_equal(one[0], full[m - 1], equal_nan=True):
                failures.append(f"{dtype.__name__} {k}x{n} {wl} x {xl} {act} threads "
                                f"{threads}: row {m - 1} alone")
print(json.dumps({"isa": fastfc.get_config()["isa"], "checks": checks, "cases": len(CASES),
                  "failures": failures[:20]}))
"""

CFG = fastfc.get_config()
ISAS = list(dict.fromkeys(list(CFG["isas_supported"]) + list(CFG["isas_testable"])))


@pytest.mark.parametrize("isa", ISAS)
def test_rows_do_not_depend_on_the_batch(isa):
    r = subprocess.run([sys.executable, "-c", INVARIANCE, TESTS_DIR],
                       env=dict(os.environ, FASTFC_ISA=isa), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["isa"] == isa
    assert res["cases"] >= 16 and res["checks"] == res["cases"] * 3 * 300 * 2
    assert res["failures"] == [], res["failures"]


# The path is a table entry (FASTFC_STREAM_MAX_M): streaming nothing, or up to 64 rows,
# gives the same bits as the default split, since the stream kernel does the GEMM's
# operations in its order; so does streaming twice the rows of a W past B_FROM_MEMORY (0:
# every W). Children print the results' bytes digest.
DIGEST = r"""
import hashlib, sys
import numpy as np
import fastfc
try:
    import ml_dtypes   # an optional extra, as in test_pack.py
except ImportError:
    ml_dtypes = None
rng = np.random.default_rng(4)
h = hashlib.sha256()
for m, k, n in [(1, 300, 70), (5, 530, 33), (16, 260, 130), (24, 530, 70), (32, 300, 33),
                (40, 300, 17), (40, 300, 7), (200, 530, 9)]:
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    gy = rng.standard_normal((m, n)).astype(np.float32)
    bf16_rows = [w.astype(ml_dtypes.bfloat16)] if ml_dtypes else []   # streamed as they are
    for wt in [w, np.ascontiguousarray(w.T).T, fastfc.pack(w, "bfloat16")] + bf16_rows:
        y = fastfc.linear(x, wt, b, activation="relu")
        h.update(y.tobytes())
        if isinstance(wt, np.ndarray) and wt.dtype.kind == "f":   # dX = dZ.W^T streams too
            h.update(fastfc.linear_backward(gy, x, wt, y=y, activation="relu")[0].tobytes())
print(fastfc.get_config()["tuning"]["STREAM_MAX_M"][0], h.hexdigest())
"""


def test_the_stream_threshold_does_not_change_results():
    """Nor does prefetching W (B_FROM_MEMORY 0: every W is from memory, 1G: none is)."""
    digests = set()
    for value, from_memory in (("0", "8M"), ("16", "0"), ("16", "1G"), ("64", "0")):
        env = dict(os.environ, FASTFC_STREAM_MAX_M=value, FASTFC_B_FROM_MEMORY=from_memory)
        r = subprocess.run([sys.executable, "-c", DIGEST], capture_output=True, text=True,
                           env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        got, digest = r.stdout.split()
        assert got == value
        digests.add(digest)
    assert len(digests) == 1


# Rows of W too short for column chunks split K too (STREAM_RUN_BYTES): each K block's sum
# goes to C or a partial sum, added in block order (by the group's last chunk: a group
# of columns per thread at least, where rows span pages). Same bits as one thread and as
# column chunks, for every thread count. The children take a team for small W (a 64 KiB
# L2 and no work threshold) and count the regions a worker took part in.
KSPLIT = r"""
import hashlib, sys
import numpy as np
import fastfc
from fastfc import _core
out = []
for threads in (1, 2, 3):
    fastfc.set_num_threads(threads)
    rng = np.random.default_rng(9)
    h = hashlib.sha256()
    wide = _core._wide_regions()
    for m, k, n, act in [(1, 1100, 70, "relu"), (5, 530, 33, "leaky_relu"),
                         (8, 777, 130, "tanh"), (16, 600, 45, None),
                         (1, 2304, 2064, "relu")]:   # more K blocks than chunks: groups
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal((m, k)).astype(dtype)
            w = rng.standard_normal((k, n)).astype(dtype)
            b = rng.standard_normal(n).astype(dtype)
            ws = [w, np.ascontiguousarray(w.T).T]
            if dtype == np.float32:
                ws.append(fastfc.pack(w, "bfloat16"))
            for wt in ws:
                for bias in (b, None):
                    y = fastfc.linear(x, wt, bias, activation=act)
                    for _ in range(50 if threads > 1 else 0):   # until a worker takes part
                        before = _core._wide_regions()
                        again = fastfc.linear(x, wt, bias, activation=act)
                        assert np.array_equal(again, y, equal_nan=True)
                        if _core._wide_regions() > before:
                            break
                    h.update(y.tobytes())
    out.append(f"{threads}:{h.hexdigest()}:{_core._wide_regions() > wide}")
print(" ".join(out))
"""


@pytest.mark.parametrize("isa", ISAS)
def test_a_k_split_stream_gives_the_same_bits(isa):
    results = set()
    threaded = not fastfc.get_config()["openmp"].startswith("none")   # a serial build: one
    for run_bytes in ("0", "16K", "1G"):
        env = dict(os.environ, FASTFC_ISA=isa, FASTFC_STREAM_RUN_BYTES=run_bytes,
                   FASTFC_L2="64K", FASTFC_MIN_PARALLEL_MNK="0", FASTFC_NAP_SOLO_MNK="0")
        r = subprocess.run([sys.executable, "-c", KSPLIT], capture_output=True, text=True,
                           env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        for part in r.stdout.split():
            threads, digest, wide = part.split(":")
            assert wide == str(threaded and threads != "1"), (run_bytes, part)
            results.add(digest)
    assert len(results) == 1, results


# m < STREAM_READ_COST: W within half of one core's L2 is read by one thread, a larger W
# by the team, each thread keeping its share in its own L2 (a 64 KiB L2 here).
HALF_L2 = r"""
import time
import numpy as np
import fastfc
from fastfc import _core
fastfc.set_num_threads(2)
rng = np.random.default_rng(3)
x = rng.standard_normal((1, 64)).astype(np.float32)
out = []
for n in (96, 160):   # 24 KiB and 40 KiB of float32 weights
    w = rng.standard_normal((64, n)).astype(np.float32)
    for wt in (w, fastfc.pack(w)):
        teamed, end = False, time.perf_counter() + 1
        while not teamed and time.perf_counter() < end:   # until a worker takes part
            before = _core._wide_regions()
            fastfc.linear(x, wt)
            teamed = _core._wide_regions() > before
        out.append(str(teamed))
print(" ".join(out))
"""


def test_one_thread_reads_a_w_within_half_of_l2():
    threaded = not fastfc.get_config()["openmp"].startswith("none")   # a serial build: none
    env = dict(os.environ, FASTFC_L2="64K", FASTFC_MIN_PARALLEL_MNK="0",
               FASTFC_NAP_SOLO_MNK="0")
    r = subprocess.run([sys.executable, "-c", HALF_L2], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False", "False", str(threaded), str(threaded)]


# Rows past the panels kernel's height run in passes over a step of panels at a time
# (stream_driver.h, panel_part); with a 64 KiB L2 and a 64 KiB B_FROM_MEMORY every step is
# one panel, so each pass crosses many step boundaries.
PASSES = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import fastfc
from fastfc import reference as ref
from conftest import gemm_scale, tolerance
rng = np.random.default_rng(8)
fails = []
for dtype, wl, k, n in [(np.float32, None, 530, 70), (np.float64, None, 300, 37),
                        (np.float32, "bfloat16", 530, 70)]:
    x = rng.standard_normal((40, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    pw = fastfc.pack(w, wl)
    want = ref.linear(x.astype(np.float64), w, b, activation="relu")
    tol = (ref.bf16_bound(x, w, b) if wl else
           tolerance(gemm_scale(x, w) + np.abs(b), k, dtype, want=want))
    for threads in (1, 2, 3):
        fastfc.set_num_threads(threads)
        full = fastfc.linear(x, pw, b, activation="relu")
        if not (np.abs(full - want) <= tol).all():
            fails.append(f"{dtype.__name__} {wl} threads {threads}: against the reference")
        for m in range(1, 25):
            if not np.array_equal(fastfc.linear(x[:m], pw, b, activation="relu"), full[:m]):
                fails.append(f"{dtype.__name__} {wl} threads {threads}: batch {m}")
print(json.dumps(fails))
"""


@pytest.mark.parametrize("isa", ISAS)
def test_passes_of_rows_over_steps_of_panels(isa):
    env = dict(os.environ, FASTFC_ISA=isa, FASTFC_L2="64K", FASTFC_B_FROM_MEMORY="64K",
               FASTFC_MIN_PARALLEL_MNK="0", FASTFC_NAP_SOLO_MNK="0")
    r = subprocess.run([sys.executable, "-c", PASSES, TESTS_DIR], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
