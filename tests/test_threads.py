"""Python threads calling fastfc at once, results independent of the thread count, fork
after use, and set_num_threads argument checks."""
import multiprocessing as mp
import os
import select
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastfc
from fastfc import _core, reference as ref
from conftest import assert_close, assert_identical, gemm_scale, make


def test_set_get_num_threads(keep_threads):
    for n in (1, 3, 2, np.int64(4)):
        fastfc.set_num_threads(n)
        assert fastfc.get_num_threads() == int(n)
        assert type(fastfc.get_num_threads()) is int
        assert fastfc.get_config()["threads"] == int(n)


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-1, ValueError), (-(2**40), ValueError),
                                     (2**31, ValueError), (2**64, ValueError),
                                     (1.0, TypeError), (2.5, TypeError), ("2", TypeError),
                                     (None, TypeError), (True, TypeError), ([2], TypeError)])
def test_set_num_threads_rejects(keep_threads, bad, exc):
    fastfc.set_num_threads(2)
    with pytest.raises(exc, match="set_num_threads: n must be"):
        fastfc.set_num_threads(bad)
    assert fastfc.get_num_threads() == 2


CHECKED_RUN = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, fastfc
from fastfc import reference as ref
from conftest import assert_close, gemm_scale
fastfc.set_num_threads(int(sys.argv[2]))
rng = np.random.default_rng(3)
for _ in range(20):  # until a worker takes part (a new one may start late: pool.h)
    for m, k, n in [(300, 400, 300), (64, 96, 80)]:  # one split product; dX, dW side by side
        x, w = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        gy = rng.standard_normal((m, n))
        assert_close(fastfc.gemm(x, w), x @ w, gemm_scale(x, w), k, np.float64)
        for got, want, s, kk in zip(fastfc.linear_backward(gy, x, w),
                                    ref.linear_backward(gy, x, w),
                                    (gemm_scale(gy, abs(w).T), gemm_scale(abs(x).T, gy),
                                     abs(gy).sum(0)), (n, m, m)):
            assert_close(got, want, s, kk, np.float64)
    if fastfc._core._wide_regions():
        break
print("ok", fastfc._core._wide_regions())
"""


def _checked_run(threads, **env):
    """CHECKED_RUN in a fresh interpreter (OpenMP reads its environment once): products on
    `threads` threads checked against the reference, within 60 s. Returns the number of
    parallel regions that got a team."""
    out = subprocess.run([sys.executable, "-c", CHECKED_RUN, os.path.dirname(__file__),
                          str(threads)], env=dict(os.environ, **env), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split()[0] == "ok", out.stderr[-2000:]
    return int(out.stdout.split()[1])


def test_huge_thread_count():
    # a million threads asked: calls use at most four per processor, start at once and
    # stay correct (calls back to back, so the team is used)
    assert _checked_run(10**6) > 0


def test_team_smaller_than_asked():
    # OpenMP may give fewer threads than asked (OMP_THREAD_LIMIT, nested regions): every
    # block of the split must still be computed, by the one thread there is
    assert _checked_run(2, OMP_THREAD_LIMIT="1") == 0


def _team_calls(rng):
    """Calls big enough to split, one per kind of parallel region, by name."""
    x, w = make(rng, (300, 400), np.float32), make(rng, (400, 300), np.float32)
    xs, ws = make(rng, (64, 96), np.float32), make(rng, (96, 80), np.float32)
    y = fastfc.linear(x, w, activation="relu")
    v = make(rng, (1 << 20,), np.float32)
    mask = fastfc.dropout(v, 0.5, seed=1)[1]
    state = [np.zeros_like(v) for _ in range(3)]
    return {
        "linear": lambda: fastfc.linear(x, w, activation="relu"),
        "backward split": lambda: fastfc.linear_backward(y, x, w, y=y, activation="relu"),
        "backward side by side": lambda: fastfc.linear_backward(xs @ ws, xs, ws),
        "dropout": lambda: fastfc.dropout(v, 0.5, seed=1),
        "dropout_backward": lambda: fastfc.dropout_backward(v, mask, 0.5),
        "all_finite": lambda: _core._all_finite(v),
        "adam": lambda: _core._adam_update(state[0], v, state[1], state[2], 1e-3, 0.9,
                                           0.999, 1e-8, 0.0, False, 1),
    }


@pytest.mark.parametrize("name", ["linear", "backward split", "backward side by side",
                                  "dropout", "dropout_backward", "all_finite", "adam"])
def test_a_team_runs_on_two_threads_and_none_on_one(rng, keep_threads, name):
    """Results equal for any thread count prove nothing if no call ever split: each kind of
    parallel region must get a team of two on 2 threads, and none on 1."""
    call = _team_calls(rng)[name]
    fastfc.set_num_threads(2)
    before = _core._wide_regions()
    for _ in range(100):  # back to back: the first may run alone if the team slept, and a
        call()            # woken worker may come after the caller took every chunk
        if _core._wide_regions() > before:
            break
    assert _core._wide_regions() > before
    fastfc.set_num_threads(1)
    before = _core._wide_regions()
    call()
    call()
    assert _core._wide_regions() == before


def _all_results(x, w, b, gy, act):
    y = fastfc.linear(x, w, b, activation=act)
    return (y, fastfc.linear(x, w, activation=act), fastfc.linear(x, fastfc.pack(w), b, activation=act),
            fastfc.gemm(x, w), fastfc.gemm(x, y, trans_a=True),
            fastfc.gemm(w, x, trans_a=True, trans_b=True),
            *fastfc.linear_backward(gy, x, w, y=y, activation=act),
            *fastfc.linear_backward(gy, np.asfortranarray(x), w, y=y, activation=act))


@pytest.mark.parametrize("m,k,n", [(300, 500, 400), (64, 784, 128), (2, 3000, 1000),
                                   (1000, 40, 30), (37, 300, 41),
                                   # a backward whose row-block threads each get more
                                   # than MC rows past KC (the db sums of every block)
                                   (1100, 300, 64), (2000, 784, 128),
                                   # rows 4 KiB / 8 KiB apart: A packed once for every
                                   # column chunk, m not a multiple of MR, 4 K blocks
                                   (70, 1024, 700)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count(rng, keep_threads, m, k, n, dtype):
    x, w, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype), make(rng, (n,), dtype)
    gy = make(rng, (m, n), dtype)
    act = "relu" if m % 2 == 0 else "tanh"
    results = {}
    for nt in (1, 2, 3):
        fastfc.set_num_threads(nt)
        results[nt] = _all_results(x, w, b, gy, act)
    for nt in (2, 3):
        for r1, rn in zip(results[1], results[nt]):
            assert_identical(rn, r1)
    # and right, not only repeatable
    y = results[1][0]
    assert_close(y, ref.linear(x, w, b, activation=act),
                 gemm_scale(x, w) + np.abs(b), k + 1, dtype)
    assert_identical(results[1][2], y)  # packed weights: the same operations
    assert_close(results[1][3], ref.gemm(x, w), gemm_scale(x, w), k, dtype)


def run_in_threads(work, n):
    """work(0..n-1), each on a Python thread of its own; none may hang."""
    ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts), "a thread hung"


def test_four_python_threads_at_once(rng, keep_threads):
    """4 Python threads (each fanning out to 2 OpenMP threads) on different problems:
    every result equals the one computed alone."""
    fastfc.set_num_threads(2)
    cases = []
    for i in range(4):
        dt = (np.float32, np.float64)[i % 2]
        x = make(rng, (200 + i, 300), dt)
        w = make(rng, (300, 150 + 3 * i), dt)
        b = make(rng, (150 + 3 * i,), dt)
        gy = make(rng, (200 + i, 150 + 3 * i), dt)
        y = fastfc.linear(x, w, b, activation="tanh")
        cases.append(dict(x=x, w=w, b=b, gy=gy, y=y, c=fastfc.gemm(x, w, trans_b=False),
                          ct=fastfc.gemm(w, x, trans_a=True, trans_b=True),
                          back=fastfc.linear_backward(gy, x, w, y=y, activation="tanh"),
                          drop=fastfc.dropout(x, 0.5, seed=i, stream=i)))
    errors, barrier = [], threading.Barrier(4)

    def work(i):
        c = cases[i]
        try:
            barrier.wait(timeout=60)
            for _ in range(15):
                if not np.array_equal(fastfc.linear(c["x"], c["w"], c["b"], activation="tanh"),
                                      c["y"]):
                    errors.append(f"linear {i}")
                if not np.array_equal(fastfc.gemm(c["x"], c["w"]), c["c"]):
                    errors.append(f"gemm {i}")
                if not np.array_equal(fastfc.gemm(c["w"], c["x"], trans_a=True, trans_b=True),
                                      c["ct"]):
                    errors.append(f"gemm transposed {i}")
                back = fastfc.linear_backward(c["gy"], c["x"], c["w"], y=c["y"],
                                              activation="tanh")
                if not all(np.array_equal(g, r) for g, r in zip(back, c["back"])):
                    errors.append(f"linear_backward {i}")
                y2, m2 = fastfc.dropout(c["x"], 0.5, seed=i, stream=i)
                if not (np.array_equal(y2, c["drop"][0]) and np.array_equal(m2, c["drop"][1])):
                    errors.append(f"dropout {i}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {i} raised {e!r}")

    run_in_threads(work, 4)
    assert not errors, errors[:10]
    # the single-threaded results were right in the first place
    for i, c in enumerate(cases):
        dt = c["x"].dtype
        assert_close(c["y"], ref.linear(c["x"], c["w"], c["b"], activation="tanh"),
                     gemm_scale(c["x"], c["w"]) + np.abs(c["b"]), 301, dt)
        assert_identical(c["drop"][1], ref.dropout_mask(c["x"].shape, 0.5, i, i))


@pytest.mark.parametrize("kind", ["c plan", "layer by layer", "frozen", "frozen bf16"])
def test_python_threads_share_one_model(keep_threads, kind):
    """Serving one model from 4 Python threads at once: each predict_proba equals the one
    made alone (the model's buffers hold one call's activations)."""
    fastfc.set_num_threads(2)
    rng = np.random.default_rng(0)
    layers = [fastfc.Dense(300, 128, activation="relu"), fastfc.Dense(128, 5)]
    if kind == "layer by layer":
        layers.insert(1, fastfc.BatchNorm(128))
    model = fastfc.Sequential(layers, loss="softmax_cross_entropy", seed=0)
    model.fit(rng.standard_normal((256, 300)), rng.integers(0, 5, 256), epochs=1, verbose=0)
    if kind.startswith("frozen"):
        model = model.freeze(None if kind == "frozen" else "bfloat16")
    xs = [rng.standard_normal((500, 300)).astype(np.float32) for i in range(4)]
    want = [model.predict_proba(x) for x in xs]
    errors, barrier = [], threading.Barrier(4)

    def work(i):
        try:
            barrier.wait(timeout=60)
            for _ in range(20):
                if not np.array_equal(model.predict_proba(xs[i]), want[i]):
                    errors.append(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {i} raised {e!r}")

    run_in_threads(work, 4)
    assert not errors, f"{len(errors)} of 80 calls differ: {errors[:10]}"


def test_threads_with_different_thread_counts_interleaved(rng, keep_threads):
    """set_num_threads from another Python thread while kernels run: every result still
    equals the single-threaded one (the count is read once per call)."""
    x, w = make(rng, (300, 400), np.float32), make(rng, (400, 300), np.float32)
    fastfc.set_num_threads(1)
    want = fastfc.gemm(x, w)
    stop, errors = threading.Event(), []

    def flip():
        while not stop.is_set():
            for n in (1, 2, 3):
                fastfc.set_num_threads(n)

    def work():
        for _ in range(20):
            if not np.array_equal(fastfc.gemm(x, w), want):
                errors.append("gemm differs")

    f = threading.Thread(target=flip)
    ws = [threading.Thread(target=work) for _ in range(2)]
    f.start()
    for t in ws:
        t.start()
    for t in ws:
        t.join(timeout=120)
    stop.set()
    f.join(timeout=10)
    assert not any(t.is_alive() for t in ws + [f]), "a thread hung"
    assert not errors, errors[:5]


def _child_result():
    """Run in a forked child: linear, backward and dropout on 2 threads, checked, and a
    worker of the child's own pool takes part (fastfc's pool starts anew after a fork)."""
    try:
        before = _core._wide_regions()
        rng = np.random.default_rng(1)
        x = rng.standard_normal((400, 300)).astype(np.float32)
        w = rng.standard_normal((300, 200)).astype(np.float32)
        fastfc.set_num_threads(2)
        y = fastfc.linear(x, w, activation="relu")
        gx, gw, gb = fastfc.linear_backward(np.ones_like(y), x, w, y=y, activation="relu")
        _, mask = fastfc.dropout(x, 0.5, seed=3)
        ok = (np.allclose(y, np.maximum(x.astype(np.float64) @ w, 0), rtol=1e-4, atol=1e-3)
              and np.allclose(gw, x.T.astype(np.float64) @ (y > 0), rtol=1e-4, atol=1e-3)
              and np.array_equal(mask, ref.dropout_mask(x.shape, 0.5, 3)))
        end = time.monotonic() + 5
        while _core._wide_regions() == before and time.monotonic() < end:
            fastfc.linear(x, w)  # a worker may start late on a busy VM
        if _core._wide_regions() == before and (os.cpu_count() or 1) > 1:
            return "no worker took part in the forked child"
        return "ok" if ok else "wrong result"
    except Exception as e:  # noqa: BLE001 - reported to the parent
        return f"raised {e!r}"


def _child(q):
    q.put(_child_result())


@pytest.mark.parametrize("how", ["multiprocessing", "os.fork"])
def test_fork_after_use_does_not_hang(keep_threads, how):
    fastfc.set_num_threads(2)
    x = np.ones((600, 600), np.float32)
    fastfc.gemm(x, x)   # the OpenMP pool now exists in the parent
    fastfc.linear_backward(x, x, x)
    fastfc.dropout(np.ones(1 << 20, np.float32), 0.5, seed=1)
    if how == "multiprocessing":
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(q,))
        p.start()
        p.join(timeout=60)
        hung = p.is_alive()
        if hung:
            p.kill()
            p.join()
        assert not hung, "child forked after fastfc was used hung"
        assert p.exitcode == 0
        assert q.get(timeout=10) == "ok"
    else:
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:   # child: report through the pipe, never return into pytest
            code = 1
            try:
                os.write(wfd, _child_result().encode())
                code = 0
            finally:
                os._exit(code)
        os.close(wfd)
        ready, _, _ = select.select([r], [], [], 60)
        if not ready:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(r)
            pytest.fail("child forked after fastfc was used hung")
        msg = os.read(r, 100).decode()
        os.close(r)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert msg == "ok", msg
    # and the parent still runs on its threads
    np.testing.assert_array_equal(fastfc.gemm(x, x), np.full((600, 600), 600.0, np.float32))


BESIDE_OPENBLAS = r"""
import os, sys
import numpy as np, fastfc
mask = set(sorted(os.sched_getaffinity(0))[:2])  # workers inherit their creator's mask
os.sched_setaffinity(0, mask)
fastfc.set_num_threads(2)
rng = np.random.default_rng(0)
a, b = rng.standard_normal((256, 512)), rng.standard_normal((512, 256))
x = rng.standard_normal((1, 4096)).astype(np.float32)
w = rng.standard_normal((4096, 2048)).astype(np.float32)
first = fastfc.linear(x, w)
for _ in range(300):  # NumPy's BLAS threads spin after each call: workers step off our CPU
    a @ b
    assert np.array_equal(fastfc.linear(x, w), first)
masks = {t: os.sched_getaffinity(int(t)) for t in os.listdir("/proc/self/task")}
assert all(m == mask for m in masks.values()), (mask, masks)
print("ok", fastfc._core._wide_regions())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2
                    if hasattr(os, "sched_getaffinity") else True,
                    reason="Linux CPU affinity with two CPUs")
def test_workers_keep_their_cpu_mask_beside_numpy():
    """A worker woken onto the caller's CPU moves off it (pool.c): it must keep the mask it
    was given, never run outside it, and compute the same bits."""
    out = subprocess.run([sys.executable, "-c", BESIDE_OPENBLAS], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split()[0] == "ok", out.stderr[-2000:]
    assert int(out.stdout.split()[1]) > 0   # a worker took part


def test_config_says_whether_the_build_has_threads(keep_threads):
    """An OpenMP build names its OpenMP; a serial one (FASTFC_OPENMP=OFF, or a compiler
    without OpenMP) says so, keeps set_num_threads as a setting and opens no team."""
    openmp = fastfc.get_config()["openmp"]
    if not openmp.startswith("none"):
        assert openmp.startswith("OpenMP 20"), openmp
        return
    assert "serial" in openmp
    fastfc.set_num_threads(2)
    assert fastfc.get_num_threads() == 2
    x = np.random.default_rng(0).standard_normal((512, 512))
    before = _core._wide_regions()
    assert_close(fastfc.linear(x, x), ref.linear(x, x), gemm_scale(x, x), 512, np.float64)
    assert _core._wide_regions() == before
