import multiprocessing as mp
import os
import threading

import numpy as np
import pytest

import fastfc
from conftest import make


@pytest.fixture
def threads():
    old = fastfc.get_num_threads()
    yield
    fastfc.set_num_threads(old)


def test_set_get_num_threads(threads):
    fastfc.set_num_threads(3)
    assert fastfc.get_num_threads() == 3
    assert fastfc.get_config()["threads"] == 3


@pytest.mark.parametrize("m,k,n", [(300, 500, 400), (64, 784, 128), (2, 3000, 1000)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count(rng, threads, m, k, n, dtype):
    x, w, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype), make(rng, (n,), dtype)
    results = []
    for nt in (1, 2, 3):
        fastfc.set_num_threads(nt)
        y = fastfc.linear(x, w, b, activation="relu")
        gy = np.ones_like(y)
        results.append((y, fastfc.gemm(x, y, trans_a=True),
                        *fastfc.linear_backward(gy, x, w, y=y, activation="relu")))
    for other in results[1:]:
        for r0, r1 in zip(results[0], other):
            np.testing.assert_array_equal(r0, r1)


def test_four_python_threads_at_once(rng, threads):
    fastfc.set_num_threads(2)
    cases = []
    for i in range(4):
        x = make(rng, (200 + i, 300), np.float32)
        w = make(rng, (300, 150), np.float32)
        cases.append((x, w, fastfc.linear(x, w, activation="tanh"), fastfc.dropout(x, 0.5, seed=i)))
    errors, barrier = [], threading.Barrier(4)

    def work(i):
        x, w, y, (yd, md) = cases[i]
        barrier.wait()
        for _ in range(20):
            if not np.array_equal(fastfc.linear(x, w, activation="tanh"), y):
                errors.append(f"linear {i}")
            y2, m2 = fastfc.dropout(x, 0.5, seed=i)
            if not (np.array_equal(y2, yd) and np.array_equal(m2, md)):
                errors.append(f"dropout {i}")

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    assert not errors, errors


def _child(q):
    x = np.ones((300, 300), np.float32)
    q.put(float(fastfc.linear(x, x, activation="relu")[0, 0]))


def test_fork_after_use_does_not_hang(threads):
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    fastfc.set_num_threads(2)
    x = np.ones((500, 500), np.float32)
    fastfc.gemm(x, x)   # the OpenMP pool now exists in the parent
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    p.join(timeout=60)
    hung = p.is_alive()
    if hung:
        p.kill()
    assert not hung, "child forked after fastfc was used hung"
    assert p.exitcode == 0 and q.get(timeout=5) == 300.0
